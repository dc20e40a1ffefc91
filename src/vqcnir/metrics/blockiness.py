"""``blockiness8``: how much stronger luma steps are across an 8-px grid than between its lines.

VQCNIR's codebook decoder works at 1/8 resolution, and a weak one leaves an 8-px mosaic; JPEG's
8×8 DCT blocks leave the same kind of grid. ``blockiness4`` is the same with a 4-px grid, for a
codebook at 1/4 scale (``quant_scale=4``). For each image:

1. luma Y = 0.299 R + 0.587 G + 0.114 B on a 0–255 scale (not rounded);
2. absolute steps between horizontal neighbours, |Y[:, x+1] − Y[:, x]|, and vertical ones;
3. a step *crosses the grid* when it goes from pixel 8k−1 to 8k (the grid starts at the top-left
   corner, where both the network's padding and JPEG's blocks start); the other 7 of every 8
   steps are *inside* blocks;
4. blockiness8 = (mean crossing step + ε) / (mean inside step + ε), horizontal and vertical steps
   pooled, ε = 0.01 levels (a flat image scores 1.0, never NaN).

1.0 means no grid; a photo scores about 1.0 whatever its content, because natural edges fall on
grid lines no more often than elsewhere. Lower is better down to the ground truth's own value.
"""

from __future__ import annotations

import torch

from .color import luma_255

EPSILON = 0.01  # in 8-bit levels: keeps a flat image at 1.0 instead of 0/0


def blockiness8(images: torch.Tensor) -> torch.Tensor:
    """blockiness8 of N×3×H×W RGB in [0, 1]: float64 tensor (N,). Needs H, W ≥ 2·8."""
    return blockiness(images, 8)


def blockiness4(images: torch.Tensor) -> torch.Tensor:
    """blockiness4 (a 4-px grid) of N×3×H×W RGB in [0, 1]: float64 tensor (N,). Needs H, W ≥ 2·4."""
    return blockiness(images, 4)


def blockiness(images: torch.Tensor, grid: int) -> torch.Tensor:
    """Steps across a ``grid``-px grid against those inside its blocks (the module's protocol)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected an N×3×H×W RGB tensor, got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if min(h, w) < 2 * grid:
        raise ValueError(f"blockiness{grid} needs images of at least {2 * grid}×{2 * grid}, got {w}×{h}")
    y = luma_255(images.to(torch.float64), quantize=False)[:, 0]
    across_x = (y[:, :, 1:] - y[:, :, :-1]).abs()   # step from column x to x+1
    across_y = (y[:, 1:, :] - y[:, :-1, :]).abs()   # step from row y to y+1
    on_x = (torch.arange(w - 1, device=y.device) % grid) == grid - 1
    on_y = (torch.arange(h - 1, device=y.device) % grid) == grid - 1
    crossing_sum = across_x[:, :, on_x].sum((1, 2)) + across_y[:, on_y, :].sum((1, 2))
    inside_sum = across_x[:, :, ~on_x].sum((1, 2)) + across_y[:, ~on_y, :].sum((1, 2))
    crossing_n = int(on_x.sum()) * h + int(on_y.sum()) * w
    inside_n = int((~on_x).sum()) * h + int((~on_y).sum()) * w
    return (crossing_sum / crossing_n + EPSILON) / (inside_sum / inside_n + EPSILON)
