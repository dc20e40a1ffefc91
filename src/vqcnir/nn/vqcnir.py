"""The stage-2 restorer: encoder with AIEM, frozen codebook + G, and the main decoder D with DBCA."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResnetBlock, conv1x1, conv3x3
from .config import VQCNIRConfig
from .dbca import BidirectionalCrossAttention, DeformableAlignment
from .vqgan import Encoder, VQGAN, upsample2x

# D's levels, coarse to fine, named by their downscale factor as in the release.
LEVELS = ("Level_8", "Level_4", "Level_2", "Level_1")
_LEVEL_MULTIPLIERS = (4, 4, 2, 1)


class MainDecoder(nn.Module):
    """Decoder D: starts from the enhanced encoder feature and, at each of 4 scales, meets G's
    feature of that scale through DBCA (or, with ``use_dbca`` off or at the scales finer than
    ``dbca_levels``, simply concatenates it)."""

    def __init__(self, cfg: VQCNIRConfig):
        super().__init__()
        self.dbca_levels = LEVELS[:cfg.dbca_levels] if cfg.use_dbca else ()
        # with the codebook at 1/4 scale the two coarsest levels share a resolution
        self.first_step = 2 if cfg.quant_scale == 8 else 1
        widths = [cfg.width * m for m in _LEVEL_MULTIPLIERS]
        self.decoder_dict = nn.ModuleDict()
        self.pre_upsample_dict = nn.ModuleDict()
        for level, prev, ch in zip(LEVELS[1:], widths[:-1], widths[1:]):
            self.decoder_dict[level] = ResnetBlock(2 * ch, ch, cfg.norm_groups)
            upsample = level != LEVELS[1] or self.first_step == 2
            self.pre_upsample_dict[level] = nn.Sequential(
                upsample2x(cfg.upsample, upsample), conv3x3(prev, ch)
            )
        if cfg.encoder_skips:
            # the encoder's widths at 1/4, 1/2, 1 are D's; zero weights: no skip until trained
            self.skip_dict = nn.ModuleDict({level: conv1x1(ch, ch) for level, ch in zip(LEVELS[1:], widths[1:])})
            for conv in self.skip_dict.values():
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        if self.dbca_levels:
            self.align_func_dict = nn.ModuleDict()
            self.attn = nn.ModuleDict()
            prev_offset = [0] + widths[:-1]
            for level, ch, prev in zip(self.dbca_levels, widths, prev_offset):
                self.align_func_dict[level] = DeformableAlignment(ch, prev, cfg.deform_groups, cfg.norm_groups)
            for level, ch, heads in zip(self.dbca_levels, widths, _LEVEL_MULTIPLIERS):
                self.attn[level] = BidirectionalCrossAttention(ch, heads)

    def forward(self, feat_e: torch.Tensor, g_feats: list[torch.Tensor],
                skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``g_feats``: G's features at 1/8, 1/4, 1/2, 1 scale; ``skips``: the encoder's at 1/4,
        1/2, 1 (used with ``encoder_skips``). Returns g1 + D's output."""
        d = feat_e
        offset_feat = None
        for i, level in enumerate(LEVELS):
            g = g_feats[i]
            if i > 0:
                d = self.pre_upsample_dict[level](d)
                if hasattr(self, "skip_dict"):
                    d = d + self.skip_dict[level](skips[i - 1])
            if level not in self.dbca_levels:
                if i > 0:
                    d = self.decoder_dict[level](torch.cat((d, g), dim=1))
                continue
            d, g = self.attn[level](d, g)
            if i == 0:
                d, offset_feat = self.align_func_dict[level](d, g)
                continue
            # The offset feature is scaled like a flow field when upsampled (a release quirk we keep).
            prev = offset_feat
            if i > 1 or self.first_step == 2:
                prev = F.interpolate(offset_feat, scale_factor=2, mode="bilinear", align_corners=False) * 2
            warped, offset_feat = self.align_func_dict[level](d, g, prev)
            d = self.decoder_dict[level](torch.cat((d, warped), dim=1))
        return g_feats[-1] + d


class VQCNIR(VQGAN):
    """The restorer (the release's ``VQLOL`` in its LQ stage). ``forward`` maps a night image
    (B, 3, H, W) in [0, 1] to the restored image, unclamped. H and W should be multiples of 8;
    ``vqcnir.restore`` pads for you."""

    def __init__(self, cfg: VQCNIRConfig | None = None):
        nn.Module.__init__(self)
        cfg = cfg or VQCNIRConfig()
        self.config = cfg
        # registration order = the release's state-dict order
        self.multiscale_encoder = Encoder(cfg, with_aiem=cfg.use_aiem)
        self.main_decode = MainDecoder(cfg)
        self._build_codebook_decoder(cfg)

    def forward_train(self, night: torch.Tensor, gt_indices: torch.Tensor | None = None):
        """Returns (restored, code-alignment loss, the night image's own code indices)."""
        if self.config.encoder_skips:
            feat_e, skips = self.multiscale_encoder.forward_with_skips(night.detach())
        else:
            feat_e, skips = self.multiscale_encoder(night.detach()), None
        z_q, code_loss, indices = self.quantize(feat_e, gt_indices)
        g_feats = self.decode_codebook(z_q)
        restored = self.out_conv(self.main_decode(feat_e, g_feats, skips))
        return restored, code_loss, indices
