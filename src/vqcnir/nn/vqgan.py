"""The stage-1 autoencoder (VQGAN): encoder E, vector quantiser, codebook decoder G, output conv.

Attribute names follow the authors' release so that state-dict keys match theirs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .aiem import EnhanceLayers
from .blocks import ResBlock, conv1x1, conv3x3
from .config import VQCNIRConfig
from .quantizer import VectorQuantizer


class Encoder(nn.Module):
    """3 -> width with a 4x4 conv (the release's kernel 4 / padding 1 makes the map 1 px smaller,
    the first stride-2 conv halves it cleanly again), then three stride-2 stages to 1/8 scale,
    then (stage 2 only) the AIEM stack."""

    def __init__(self, cfg: VQCNIRConfig, with_aiem: bool):
        super().__init__()
        w = cfg.width
        self.in_conv = nn.Conv2d(cfg.in_channels, w, 4, stride=1, padding=1)
        stages = [(w, 2 * w, 2), (2 * w, 4 * w, 2), (4 * w, 4 * w, 2 if cfg.quant_scale == 8 else 1)]
        blocks = [
            nn.Sequential(
                conv3x3(c_in, c_out, stride=stride),
                ResBlock(c_out, cfg.norm_groups),
                ResBlock(c_out, cfg.norm_groups),
            )
            for c_in, c_out, stride in stages
        ]
        if with_aiem:
            blocks.append(EnhanceLayers(4 * w, cfg.num_aiem, cfg.aiem_splits, cfg.aiem_curves))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward_with_skips(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(the deepest feature, the features at 1/4, 1/2 and full scale) for ``encoder_skips``
        (a separate path: keeping the finer features alive costs memory the paper's network does
        not need). The 4x4 in-conv's map is 1 px short of full scale; its last row and column are
        repeated."""
        x = self.in_conv(x)
        skips = [F.pad(x, (0, 1, 0, 1), mode="replicate")]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < 2:
                skips.append(x)
        return x, skips[::-1]


def upsample2x(mode: str, active: bool = True) -> nn.Module:
    """The parameter-free x2 upsampling of G and D (``VQCNIRConfig.upsample``); the identity
    where a codebook at 1/4 scale skips a step."""
    if not active:
        return nn.Identity()
    return nn.Upsample(scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))


class DecoderBlock(nn.Module):
    """x2 upsample, 3x3 conv, two ResBlocks (``block.0`` is the parameter-free upsample;
    ``upsample=False`` makes it the identity, for a codebook at 1/4 scale)."""

    def __init__(self, in_ch: int, out_ch: int, norm_groups: int, upsample: bool = True, mode: str = "nearest"):
        super().__init__()
        self.block = nn.Sequential(
            upsample2x(mode, upsample),
            conv3x3(in_ch, out_ch),
            ResBlock(out_ch, norm_groups),
            ResBlock(out_ch, norm_groups),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class CombineQuantBlock(nn.Module):
    """Post-quantisation 3x3 conv from code space back to feature space (key ``conv``)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = conv3x3(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class VQGAN(nn.Module):
    """Stage 1: reconstructs sharp, well-lit images through the learnt codebook."""

    def __init__(self, cfg: VQCNIRConfig):
        super().__init__()
        self.config = cfg
        self.multiscale_encoder = Encoder(cfg, with_aiem=False)
        self._build_codebook_decoder(cfg)

    def _build_codebook_decoder(self, cfg: VQCNIRConfig) -> None:
        w = cfg.width
        self.decoder_group = nn.ModuleList(
            DecoderBlock(c_in, c_out, cfg.norm_groups, upsample, cfg.upsample)
            for c_in, c_out, upsample in [(4 * w, 4 * w, cfg.quant_scale == 8), (4 * w, 2 * w, True), (2 * w, w, True)]
        )
        self.out_conv = conv3x3(w, cfg.in_channels)
        self.quantize_group = nn.ModuleList([VectorQuantizer(cfg.codebook_size, cfg.code_dim, cfg.commitment_beta)])
        self.before_quant_group = nn.ModuleList([conv1x1(4 * w, cfg.code_dim)])
        self.after_quant_group = nn.ModuleList([CombineQuantBlock(cfg.code_dim, 4 * w)])

    @property
    def quantizer(self) -> VectorQuantizer:
        return self.quantize_group[0]

    def quantize(self, feat: torch.Tensor, gt_indices: torch.Tensor | None = None):
        """1/8-scale encoder feature -> (quantised codes, codebook loss, indices)."""
        return self.quantizer(self.before_quant_group[0](feat), gt_indices)

    def decode_codebook(self, z_q: torch.Tensor) -> list[torch.Tensor]:
        """Run G; returns its features at 1/8 (1/4 with ``quant_scale`` 4), 1/4, 1/2 and full scale."""
        feats = [self.after_quant_group[0](z_q)]
        for block in self.decoder_group:
            feats.append(block(feats[-1]))
        return feats

    @torch.no_grad()
    def code_indices(self, image: torch.Tensor) -> torch.Tensor:
        """Codebook indices (B, 1, H/s, W/s), s = ``quant_scale``: the stage-2 code-alignment targets."""
        feat = self.multiscale_encoder(image)
        return self.quantizer.nearest_indices(self.before_quant_group[0](feat))

    def forward_train(self, image: torch.Tensor):
        """Returns (reconstruction, codebook loss, indices)."""
        z_q, loss, indices = self.quantize(self.multiscale_encoder(image.detach()))
        return self.out_conv(self.decode_codebook(z_q)[-1]), loss, indices

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.forward_train(image)[0]
