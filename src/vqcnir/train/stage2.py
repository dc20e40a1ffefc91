"""Stage 2: the restorer starts from a stage-1 checkpoint, keeps its codebook and decoder G frozen,
and trains the rest (L1 + code alignment to the codes the frozen stage-1 model gives the GT +
perceptual + GAN)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import VQCNIRError
from ..nn import VQCNIR, VQCNIRConfig, VQGAN
from ..weights import check_fits, checkpoint_config, is_stage1, mismatches, read_checkpoint
from .config import TrainConfig

# Names frozen in stage 2: the codebook and decoder G (spec 5.2; `main_decode` stays trainable).
FROZEN_STAGE2 = ("quantize_group.", "after_quant_group.", "decoder_group.")
# What this config may choose; the widths and the codebook are stage 1's.
STAGE2_FIELDS = ("num_aiem", "aiem_splits", "aiem_curves", "deform_groups", "use_aiem", "use_dbca",
                 "dbca_levels", "encoder_skips", "commitment_beta")


def frozen_names(cfg: TrainConfig) -> tuple[str, ...]:
    return FROZEN_STAGE2 + (("out_conv.",) if cfg.stage2.freeze_out_conv else ())


class Stage2:
    number = 2
    hq: VQGAN  # the frozen stage-1 model: the GT's codes, for code alignment

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.notes: tuple[str, ...] = ()  # logged when a fresh run starts from stage2.init_from

    def network_config(self) -> VQCNIRConfig:
        cfg, source = self.cfg, self.cfg.stage2.stage1_checkpoint
        wanted = cfg.model.network_config()
        state, stored = read_checkpoint(source)
        base = checkpoint_config(state, stored, source)
        self._stage1_state, self._stage1_config = state, base
        differ = [f"{k}={getattr(wanted, k)} (the checkpoint has {v})" for k, v in base.to_dict().items()
                  if k not in STAGE2_FIELDS and getattr(wanted, k) != v]
        if differ:
            raise VQCNIRError(f"{source}: the model section asks for "
                              f"{'; '.join(differ)}; stage 2 keeps stage 1's widths and codebook")
        return base.with_(**{k: getattr(wanted, k) for k in STAGE2_FIELDS})

    def build_network(self, config: VQCNIRConfig, device: torch.device) -> nn.Module:
        """The restorer with every stage-1 tensor copied in (only the AIEM stack and D start fresh)."""
        source, state = self.cfg.stage2.stage1_checkpoint, self._stage1_state
        net = VQCNIR(config)
        self.hq = VQGAN(self._stage1_config)
        if not is_stage1(state):
            raise VQCNIRError(f"{source}: this is a stage-2 checkpoint; "
                              "stage 2 starts from a stage-1 (codebook autoencoder) checkpoint")
        check_fits(self.hq, state, source)
        self.hq.load_state_dict(state, strict=True)
        self.hq.requires_grad_(False).eval().to(device)
        net.load_state_dict(state, strict=False)  # a stage-1 state fits the restorer's shared part
        del self._stage1_state
        if self.cfg.stage2.init_from:
            self._init_from(net, self.cfg.stage2.init_from)
        for name, p in net.named_parameters():
            if name.startswith(frozen_names(self.cfg)):
                p.requires_grad_(False)
        return net

    def _init_from(self, net: nn.Module, path: str) -> None:
        """Start the trained parts from an earlier stage-2 checkpoint; the frozen codebook and
        decoder G stay those of stage1_checkpoint (they are what this run restores against)."""
        state, _ = read_checkpoint(path)
        expected = net.state_dict()
        trained = [k for k in expected if not k.startswith(FROZEN_STAGE2)]
        missing, wrong = mismatches(expected, state, trained)
        if missing or wrong:
            what = "is not a stage-2 checkpoint of this network size" if missing else "has other widths"
            raise VQCNIRError(f"stage2.init_from {path}: {what} (e.g. {', '.join((missing + wrong)[:3])})")
        net.load_state_dict({k: state[k] for k in trained}, strict=False)
        self.notes = (f"trained parts initialised from {path}; codebook and G from stage 1",)

    def inputs(self, batch: dict, gt: torch.Tensor, move) -> torch.Tensor:
        """What the network sees: the night image, put on the device by ``move``."""
        return move(batch["night"])

    def generate(self, g_step: nn.Module, x: torch.Tensor, gt: torch.Tensor):
        return g_step(x, self.hq.code_indices(gt))

    def count_codes(self, trainer, used: torch.Tensor) -> None:
        pass  # no restarts: the codebook is frozen

    def after_iteration(self, trainer, it: int, batch: dict) -> None:
        pass
