"""Validation during training: metrics on the validation set and a night | restored | gt picture."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def validate(t, it: int) -> dict[str, float]:
    """Mean of each ``val.metrics`` over trainer ``t``'s validation set (EMA weights if asked);
    saves ``visualization/val_<it>.png``."""
    from .. import metrics

    cfg = t.cfg.val
    net = t.ema if (cfg.use_ema and t.ema is not None) else t.net
    was_training = net.training
    net.eval()
    scores: dict[str, list[float]] = {m: [] for m in cfg.metrics}
    rows = []
    for i in range(len(t.val_set)):
        item = t.val_set[i]
        gt = item["gt"][None].to(t.device)
        x = t.stage.inputs(item, gt, lambda v: v[None].to(t.device))
        if cfg.crop is not None:
            x, gt = _centre_crop(x, cfg.crop), _centre_crop(gt, cfg.crop)
        with t.autocast():
            out = _run_padded(net, x).float().clamp(0, 1)
        for m in scores:
            scores[m].append(float(metrics.compute(m, out, gt)[0]))
        if len(rows) < cfg.grid_images:
            rows.append((x.float().clamp(0, 1), out, gt.float()))
    net.train(was_training)
    result = {m: sum(v) / len(v) for m, v in scores.items() if v}
    if rows:
        _save_grid(t, rows, it)
    return result


def _save_grid(t, rows, it: int) -> None:
    from torchvision.utils import make_grid

    from ..imagefiles import write_image

    h = min(r[0].shape[-2] for r in rows)
    w = min(r[0].shape[-1] for r in rows)
    tiles = [v[0, :, :h, :w].cpu() for row in rows for v in row]
    grid = make_grid(tiles, nrow=3, padding=2, pad_value=1.0)
    write_image(t.exp_dir / "visualization" / f"val_{it:08d}.png", grid.permute(1, 2, 0).numpy())
    if t.tb is not None:
        t.tb.add_image("val/night_restored_gt", grid, it)


def _centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ch, cw = min(size, h - h % 8), min(size, w - w % 8)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top:top + ch, left:left + cw]


def _run_padded(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward with reflect-padding to a multiple of 8, cropped back."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % 8, (-w) % 8
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return net(x)[..., :h, :w]
