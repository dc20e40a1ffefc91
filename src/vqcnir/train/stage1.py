"""Stage 1: the VQGAN autoencoder learns its codebook by reconstructing sharp images (L1 +
perceptual + hinge GAN + codebook / commitment), with optional dead-code restarts."""

from __future__ import annotations

import torch
from torch import nn

from ..nn import VQCNIRConfig, VQGAN
from ..weights import check_fits, read_checkpoint
from . import distributed as D
from .config import TrainConfig


class Stage1:
    number = 1

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.restarts = cfg.codebook.restart_dead_codes
        self.notes: tuple[str, ...] = ()  # logged when a fresh run starts from stage1.init_from

    def network_config(self) -> VQCNIRConfig:
        return self.cfg.model.network_config()

    def build_network(self, config: VQCNIRConfig, device: torch.device) -> nn.Module:
        net = VQGAN(config)
        source = self.cfg.stage1.init_from
        if source:  # the weights of an earlier stage 1 of this size, e.g. after its state was lost
            state, _ = read_checkpoint(source)
            check_fits(net, state, source)
            net.load_state_dict(state, strict=True)
            self.notes = (f"weights initialised from {source}",)
        return net

    def inputs(self, batch: dict, gt: torch.Tensor, move) -> torch.Tensor:
        """What the network sees: the sharp image itself, which it reconstructs."""
        return gt

    def generate(self, g_step: nn.Module, x: torch.Tensor, gt: torch.Tensor):
        return g_step(x)

    def count_codes(self, trainer, used: torch.Tensor) -> None:
        if self.restarts:
            trainer.restart_counts += used

    def after_iteration(self, trainer, it: int, batch: dict) -> None:
        if self.restarts and it % self.cfg.codebook.restart_every == 0:
            restart_dead_codes(trainer, it, batch)


def restart_dead_codes(trainer, it: int, batch: dict) -> None:
    """Move codes unused in the last window onto encoder vectors of the current batch."""
    t, cfg = trainer, trainer.cfg
    counts = D.all_reduce_sum(t.restart_counts.clone(), t.dist)
    dead = (counts == 0).nonzero().flatten()
    t.restart_counts.zero_()
    if dead.numel() == 0:
        return
    emb = t.net.quantizer.embedding.weight
    if t.dist.is_main:
        with torch.no_grad():
            gt = batch["gt"].to(t.device)
            z = t.net.before_quant_group[0](t.net.multiscale_encoder(gt)).float()
            z = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + it)
            pick = torch.randint(0, z.shape[0], (dead.numel(),), generator=g).to(z.device)
            noise = torch.randn(dead.numel(), z.shape[1], generator=g).to(z.device)
            new = z[pick] + cfg.codebook.restart_noise * z.std() * noise
            emb.data[dead] = new.to(emb.dtype)
    D.broadcast(emb.data, t.dist)
    if t.ema is not None:
        t.ema.quantizer.embedding.weight.data[dead] = emb.data[dead]
    t.log(f"iteration {it}: restarted {dead.numel()} unused codes")
