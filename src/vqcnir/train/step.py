"""One training iteration, the same for both stages: the generator's losses and update (with
EMA), then the discriminator's. What the network sees and produces comes from the stage
(``stage1.py``, ``stage2.py``); a step whose loss or gradient is not finite on any process is
skipped by all of them, and logged."""

from __future__ import annotations

import warnings

import torch

from . import distributed as D
from .losses import frequency_loss, grid_step_loss, hinge_d_loss, hinge_g_loss, pixel_loss


def ema_update(t) -> None:
    if t.ema is None:
        return
    d = t.cfg.train.ema_decay
    with torch.no_grad():
        for e, p in zip(t.ema.parameters(), t.net.parameters()):
            if p.requires_grad:
                e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(t.ema.buffers(), t.net.buffers()):
            e.copy_(b)


def finite_everywhere(t, *values: torch.Tensor) -> bool:
    """Whether every value is finite on every process (so that all of them skip together)."""
    bad = torch.zeros(1, device=t.device)
    for v in values:
        if not torch.isfinite(v).all():
            bad += 1
    return bool(D.all_reduce_sum(bad, t.dist).item() == 0)


def clip_gradients(t, params) -> torch.Tensor:
    clip = t.cfg.train.grad_clip
    return torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else float("inf"))


def _generator_losses(t, out, gt, l_code, gan_on: bool) -> dict[str, torch.Tensor]:
    w = t.cfg.train.losses
    logs: dict[str, torch.Tensor] = {}
    if w.pixel:
        logs["l_pix"] = w.pixel * pixel_loss(out, gt, w.pixel_kind)
    if w.frequency:
        logs["l_fft"] = w.frequency * frequency_loss(out, gt)
    if w.grid:
        logs["l_grid"] = w.grid * grid_step_loss(out, gt, t.net_config.quant_scale)
    if w.codebook:
        logs["l_code"] = w.codebook * l_code.float()
    if t.perceptual is not None:
        logs["l_per"] = w.perceptual * t.perceptual(out, gt)
    if gan_on:
        t.net_d.requires_grad_(False)
        logs["l_g_adv"] = w.adversarial * hinge_g_loss(t.net_d(out))
    return logs


def _discriminator_step(t, gt, out, it: int) -> torch.Tensor:
    """Real and (detached) fake in one pass."""
    t.net_d.requires_grad_(True)
    with t.autocast():
        logits = t.d_step(torch.cat([gt, out.detach().to(gt.dtype)])).float()
        l_d = hinge_d_loss(logits[: gt.shape[0]], logits[gt.shape[0]:])
    l_d.backward()
    d_norm = clip_gradients(t, list(t.net_d.parameters()))
    if finite_everywhere(t, l_d, d_norm):
        t.opt_d.step()
    else:
        t.skipped += 1
        t.log(f"iteration {it + 1}: non-finite discriminator loss or gradient; step skipped")
    t.opt_d.zero_grad(set_to_none=True)
    return l_d.detach()


def train_step(t, batch: dict, it: int) -> dict[str, float]:
    """Iteration ``it`` on ``batch``; returns each loss term (and their total) as a float."""
    w = t.cfg.train.losses
    gt = batch["gt"].to(t.device, non_blocking=True)
    x = t.stage.inputs(batch, gt, lambda v: v.to(t.device, non_blocking=True))
    gan_on = t.use_gan and it >= w.gan_start_iter
    with t.autocast():
        out, l_code, indices = t.stage.generate(t.g_step, x, gt)
        out = out.float()
        total = out.new_zeros(())
        logs = _generator_losses(t, out, gt, l_code, gan_on)
        for v in logs.values():
            total = total + v
    total.backward()
    norm = clip_gradients(t, [p for p in t.net.parameters() if p.requires_grad])
    if finite_everywhere(t, total, norm):
        t.opt_g.step()
        ema_update(t)
    else:
        t.skipped += 1
        t.log(f"iteration {it + 1}: non-finite generator loss or gradient "
              f"({', '.join(f'{k}={v.item():.4g}' for k, v in logs.items())}); step skipped")
    t.opt_g.zero_grad(set_to_none=True)
    used = torch.bincount(indices.flatten(), minlength=t.code_counts.numel()).to(t.code_counts)
    t.code_counts += used
    t.stage.count_codes(t, used)
    if gan_on:
        logs["l_d"] = _discriminator_step(t, gt, out, it)
    with warnings.catch_warnings():  # after a skipped step torch warns the order looks wrong
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        t.sched_g.step()
        if t.sched_d is not None:
            t.sched_d.step()
    logs["total"] = total.detach()
    return {k: float(v.detach()) for k, v in logs.items()}
