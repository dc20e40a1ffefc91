"""What a Trainer is built from: its run folder, networks, losses, optimisers and data.

Each function fills in attributes of the trainer ``t`` (as ``resume.py`` and ``validation.py``
read them); ``Trainer.__init__`` calls them in order, which fixes the order random numbers are
drawn in, so an exact resume stays exact.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from ..engine import effective_precision
from ..errors import VQCNIRError
from ..nn.discriminator import UNetDiscriminatorSN
from . import distributed as D
from .data import EpochIndexed, GlobalBatchSampler, build_datasets
from .losses import PerceptualLoss, resolve_perceptual
from .resume import list_states, newest_state
from .signals import leave_stop_signals_to_the_trainer


class _Generator(nn.Module):
    """Puts ``forward_train`` behind ``forward`` so DDP can wrap it."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, gt_indices=None):
        if gt_indices is None:
            return self.net.forward_train(x)
        return self.net.forward_train(x, gt_indices)


def choose_precision(t) -> None:
    """``train.precision`` on this device: bf16 autocast on GPU (auto), fp32 elsewhere."""
    cfg = t.cfg
    precision = cfg.train.precision
    if precision == "auto":
        precision = "bf16" if t.device.type == "cuda" else "fp32"
    precision, note = effective_precision(precision, t.device)
    t.precision_note = f"train.precision={cfg.train.precision}: {note}" if note else note
    t.precision = precision
    t.autocast_dtype = torch.bfloat16 if precision == "bf16" else None


def prepare_dir(t, resume: bool):
    """Make the run folder, or find the state to resume from (returned; None for a fresh run)."""
    exp = t.exp_dir
    t.fresh_note = ""
    t.broken_states = []
    if resume and list_states(exp):
        state, t.resumed_from, t.broken_states = newest_state(exp)
        return state
    if resume:  # nothing saved yet, e.g. a run killed before its first save: start it
        if any((exp / "models").glob("[!.]*")):
            raise VQCNIRError(f"nothing to resume in {exp}: it has saved models but no training state; "
                              f"move it away, or choose another name (--opt name=...)")
        t.fresh_note = f"nothing to resume in {exp} (no training state was saved): starting at iteration 0"
    elif exp.exists() and any(exp.iterdir()):
        raise VQCNIRError(f"{exp} already exists: pass --resume to continue it, or choose "
                          f"another name (--opt name=...)")
    D.barrier(t.dist)
    if t.dist.is_main:
        for sub in ("models", "training_states", "visualization"):
            (exp / sub).mkdir(parents=True, exist_ok=True)
    D.barrier(t.dist)
    return None


def build_networks(t) -> None:
    """The stage's network, its EMA copy, the discriminator (when the GAN loss is on), DDP."""
    cfg, dev = t.cfg, t.device
    t.net_config = t.stage.network_config()
    t.net = t.stage.build_network(t.net_config, dev)
    t.net.to(dev).train()
    t.ema = None
    if cfg.train.ema_decay > 0:
        t.ema = copy.deepcopy(t.net).requires_grad_(False).eval()
    t.use_gan = cfg.train.losses.adversarial > 0
    t.net_d = None
    if t.use_gan:
        t.net_d = UNetDiscriminatorSN(t.net_config.in_channels, cfg.train.disc_width).to(dev).train()
    gen = _Generator(t.net)
    if t.dist.enabled:
        ids = [dev.index] if dev.type == "cuda" else None
        t.g_step = DDP(gen, device_ids=ids)
        t.d_step = DDP(t.net_d, device_ids=ids) if t.net_d is not None else None
    else:
        t.g_step, t.d_step = gen, t.net_d


def build_losses(t) -> None:
    w = t.cfg.train.losses
    t.perceptual_kind = resolve_perceptual(w.perceptual_net) if w.perceptual > 0 else "none"
    t.perceptual = PerceptualLoss(t.perceptual_kind).to(t.device) if t.perceptual_kind != "none" else None


def build_optimizers(t) -> None:
    """Adam and a multi-step schedule for G (and D), and the code-usage counters."""
    tr = t.cfg.train
    params = [p for p in t.net.parameters() if p.requires_grad]
    t.opt_g = torch.optim.Adam(params, lr=tr.optim_g.lr, betas=tuple(tr.optim_g.betas),
                               weight_decay=tr.optim_g.weight_decay)
    t.sched_g = torch.optim.lr_scheduler.MultiStepLR(t.opt_g, tr.scheduler.milestones, tr.scheduler.gamma)
    t.opt_d = t.sched_d = None
    if t.net_d is not None:
        t.opt_d = torch.optim.Adam(t.net_d.parameters(), lr=tr.optim_d.lr, betas=tuple(tr.optim_d.betas),
                                   weight_decay=tr.optim_d.weight_decay)
        t.sched_d = torch.optim.lr_scheduler.MultiStepLR(t.opt_d, tr.scheduler.milestones, tr.scheduler.gamma)
    k = t.net_config.codebook_size
    # code usage since the last log line, and since the last dead-code restart
    t.code_counts = torch.zeros(k, dtype=torch.float64, device=t.device)
    t.restart_counts = torch.zeros(k, dtype=torch.float64, device=t.device)


def build_data(t) -> None:
    """The datasets and a loader whose global batches continue where ``t.start_iter`` left off."""
    cfg = t.cfg
    t.train_set, t.val_set = build_datasets(cfg)
    sampler = GlobalBatchSampler(len(t.train_set), cfg.data.batch_size, t.dist.rank, t.dist.world,
                                 cfg.seed, t.start_iter)
    workers = cfg.data.num_workers
    t.loader = DataLoader(EpochIndexed(t.train_set), batch_sampler=sampler, num_workers=workers,
                          pin_memory=t.device.type == "cuda", persistent_workers=workers > 0,
                          prefetch_factor=4 if workers > 0 else None,
                          worker_init_fn=leave_stop_signals_to_the_trainer)
