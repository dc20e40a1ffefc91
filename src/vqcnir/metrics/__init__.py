"""Image-quality metrics, each named by its exact protocol (see docs/evaluation.md).

    >>> from vqcnir import metrics
    >>> metrics.compute("psnr", restored, gt)        # float64 tensor, one value per image
    >>> metrics.available()                           # {"psnr": None, "lpips_alex": "<reason>", ...}

Images are N×3×H×W (or 3×H×W) float RGB in [0, 1], on any device.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .blockiness import blockiness4, blockiness8
from .errors import MetricUnavailable
from .full_reference import psnr, psnr_y, ssim, ssim_rgb
from .lpips import STLPIPS, load_stlpips
from .niqe import niqe
from .registry import SPECS, MetricSpec, build, check, spec

__all__ = [
    "SPECS", "STLPIPS", "blockiness4", "blockiness8", "MetricSpec", "MetricUnavailable", "available", "compute", "load_stlpips",
    "niqe", "psnr", "psnr_y", "spec", "ssim", "ssim_rgb",
]


@lru_cache(maxsize=16)
def _scorer(name: str, device: str):
    return build(name, device)


def compute(name: str, restored: torch.Tensor, gt: torch.Tensor | None = None, *,
            crop: int = 0, device: str | torch.device | None = None) -> torch.Tensor:
    """Score ``restored`` (against ``gt`` for full-reference metrics): float64 tensor (N,) on CPU.

    ``crop`` removes that many pixels at every border of both images first. Networks are built
    once per (metric, device) and reused. Raises MetricUnavailable when the metric cannot run.
    """
    s = spec(name)
    if s.reference and gt is None:
        raise ValueError(f"{name} is a full-reference metric: pass gt")
    if restored.ndim == 3:
        restored = restored.unsqueeze(0)
    if gt is not None and gt.ndim == 3:
        gt = gt.unsqueeze(0)
    if gt is not None and restored.shape != gt.shape:
        raise ValueError(f"restored {tuple(restored.shape)} and gt {tuple(gt.shape)} differ in shape")
    if crop:
        restored = restored[..., crop:-crop, crop:-crop]
        gt = gt[..., crop:-crop, crop:-crop] if gt is not None else None
    dev = str(device if device is not None else restored.device)
    return _scorer(name, dev)(restored, gt if s.reference else None)


def available() -> dict[str, str | None]:
    """Every metric name → None if it can run here, else the reason it cannot."""
    out: dict[str, str | None] = {}
    for name in SPECS:
        try:
            check(name)
        except MetricUnavailable as error:
            out[name] = str(error)
        else:
            out[name] = None
    return out
