"""MATLAB ``imresize`` (bicubic, with antialiasing when shrinking), written as matrices.

MATLAB computes, for each output index, a handful of input indices and weights from the cubic
kernel (stretched by 1/scale when shrinking, which is its antialiasing), mirrors indices that
fall outside the image ("symmetric" boundary) and normalises the weights to sum to one. Here
those weights are gathered into a dense out×in matrix per axis, so resizing is two matmuls.
"""

from __future__ import annotations

import math

import torch


def _cubic(x: torch.Tensor) -> torch.Tensor:
    a = x.abs()
    a2, a3 = a * a, a * a * a
    near = (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
    far = (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))
    return near + far


def resize_matrix(in_len: int, out_len: int, scale: float, *, antialias: bool = True,
                  device=None) -> torch.Tensor:
    """The out_len×in_len float64 matrix MATLAB's bicubic ``imresize`` applies along one axis."""
    width = 4.0
    if scale < 1 and antialias:
        width /= scale
    x = torch.arange(1, out_len + 1, dtype=torch.float64, device=device)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64, device=device)[None, :]
    dist = u[:, None] - idx
    if scale < 1 and antialias:
        w = scale * _cubic(scale * dist)
    else:
        w = _cubic(dist)
    w = w / w.sum(dim=1, keepdim=True)
    # Mirror out-of-range indices the way MATLAB does: aux = [1..n, n..1], 1-based.
    aux = torch.cat([torch.arange(in_len, device=device), torch.arange(in_len - 1, -1, -1, device=device)])
    src = aux[torch.remainder(idx.long() - 1, 2 * in_len)]
    m = torch.zeros(out_len, in_len, dtype=torch.float64, device=device)
    m.scatter_add_(1, src, w)
    return m


def imresize(x: torch.Tensor, scale: float, *, antialias: bool = True) -> torch.Tensor:
    """Resize the last two axes of ``x`` (float64) by ``scale`` like MATLAB ``imresize(x, scale)``."""
    h, w = x.shape[-2:]
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    mh = resize_matrix(h, oh, scale, antialias=antialias, device=x.device)
    mw = resize_matrix(w, ow, scale, antialias=antialias, device=x.device)
    x = x.to(torch.float64)
    return mh @ x @ mw.T
