"""NIQE (Mittal, Soundararajan & Bovik, IEEE SPL 2013), following the original MATLAB release.

Protocol, step by step (each step as in the MATLAB code):

1. Luma Y = round(255·(0.299 R + 0.587 G + 0.114 B)) (``rgb2gray`` of 8-bit RGB; pyiqa's
   ``niqe`` uses the same), as float64; optional border crop.
2. Crop to whole 96×96 blocks (top-left anchored).
3. At two scales (the image, then MATLAB ``imresize(·, 0.5)`` bicubic with antialiasing):
   local mean μ and deviation σ with the 7×7 Gaussian window (σ = 7/6, "replicate" borders),
   MSCN coefficients (Y − μ)/(σ + 1), and per block (96×96, then 48×48) 18 features: the
   generalised-Gaussian fit of the coefficients (shape, variance) and asymmetric-GGD fits of
   the products with the four neighbours (shape, mean, left and right variance).
4. Mean of the block features (ignoring NaN) and their covariance (rows with NaN dropped),
   compared with the pristine model: sqrt(d · pinv((Σ_pris + Σ) / 2) · dᵀ).

The pristine model (``data/niqe_pris_params.npz``) is MATLAB's ``modelparameters.mat`` as
shipped by BasicSR (Apache-2.0); see ``data/NOTICE.md``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from .color import cpu_single_thread, luma_255
from .full_reference import as_batch, filter_valid
from .matlab_resize import imresize

BLOCK = 96
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
_FLAT = 1e-6  # |Y − μ| below this (on the 0–255 scale) is rounding noise, not signal


@lru_cache(maxsize=1)
def _pristine() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with resources.files("vqcnir.metrics").joinpath("data/niqe_pris_params.npz").open("rb") as f:
        d = np.load(f)
        return d["mu_pris_param"].reshape(-1), d["cov_pris_param"], d["gaussian_window"]


@lru_cache(maxsize=4)
def _gamma_table(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    # MATLAB: gam = 0.2:0.001:10; r_gam = gamma(2./gam).^2 ./ (gamma(1./gam) .* gamma(3./gam))
    gam = 0.2 + 0.001 * torch.arange(9801, dtype=torch.float64, device=device)
    r = torch.exp(2 * torch.lgamma(2 / gam) - torch.lgamma(1 / gam) - torch.lgamma(3 / gam))
    return gam, r


def _aggd(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric generalised Gaussian fit of each row of ``v`` (…×P): shape α, left/right β."""
    neg = v < 0
    v2 = v * v
    sq_all = v2.sum(-1)
    sq_neg = torch.where(neg, v2, 0.0).sum(-1)
    n_neg = neg.sum(-1)
    n_pos = (v > 0).sum(-1)
    # mean over an empty set is NaN, as MATLAB's mean([]) (0/0 here)
    left = torch.sqrt(sq_neg / n_neg)
    right = torch.sqrt((sq_all - sq_neg) / n_pos)
    g = left / right
    p = v.shape[-1]
    rhat = (v.abs().sum(-1) / p) ** 2 / (sq_all / p)
    rnorm = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    gam, r_gam = _gamma_table(str(v.device))
    flat = rnorm.reshape(-1)
    idx = torch.empty(flat.shape, dtype=torch.long, device=v.device)
    for i in range(0, flat.numel(), 4096):  # bounded memory: 4096 × 9801 doubles at most
        part = flat[i : i + 4096]
        idx[i : i + 4096] = ((r_gam[None, :] - part[:, None]) ** 2).argmin(dim=1)
    idx = torch.where(torch.isnan(flat), torch.zeros_like(idx), idx)  # MATLAB min([NaN..]) -> 1
    alpha = gam[idx].reshape(rnorm.shape)
    ratio = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    return alpha, left * ratio, right * ratio


def _block_features(blocks: torch.Tensor) -> torch.Tensor:
    """18 NSS features per block; ``blocks`` is N×B×s×s, result N×B×18."""
    flat = blocks.flatten(-2)
    a, bl, br = _aggd(flat)
    feats = [a, (bl + br) / 2]
    for dy, dx in _SHIFTS:
        prod = (blocks * torch.roll(blocks, shifts=(dy, dx), dims=(-2, -1))).flatten(-2)
        a, bl, br = _aggd(prod)
        mean = (br - bl) * torch.exp(torch.lgamma(2 / a) - torch.lgamma(1 / a))
        feats += [a, mean, bl, br]
    return torch.stack(feats, dim=-1)


def _to_blocks(x: torch.Tensor, size: int) -> torch.Tensor:
    n, _, h, w = x.shape
    x = x.reshape(n, h // size, size, w // size, size).permute(0, 1, 3, 2, 4)
    return x.reshape(n, -1, size, size)


def niqe_features(y: torch.Tensor) -> torch.Tensor:
    """Block features (N×B×36) of float64 luma images N×1×H×W on a 0–255 scale."""
    _, _, win = _pristine()
    # The window is a normalised outer product g⊗g, so g is its row sums; filter separably.
    g = torch.from_numpy(win.sum(axis=1)).to(y.device)
    pad = g.numel() // 2
    h, w = y.shape[-2:]
    hb, wb = h // BLOCK, w // BLOCK
    if hb * wb < 2:
        raise ValueError(
            f"NIQE needs at least two {BLOCK}×{BLOCK} blocks; the image is {h}×{w} pixels"
        )
    img = y[..., : hb * BLOCK, : wb * BLOCK]
    feats = []
    for scale in (1, 2):
        both = F.pad(torch.cat([img, img * img], dim=1), (pad,) * 4, mode="replicate")
        both = filter_valid(both, g)  # MATLAB imfilter(·, window, 'replicate')
        mu, sq = both[:, :1], both[:, 1:]
        sigma = torch.sqrt((sq - mu * mu).abs())
        diff = img - mu
        # In a flat neighbourhood Y − μ is 0 up to rounding noise (~1e-13) whose sign depends on
        # the filter's summation order; snap it to the exact 0 so results are deterministic.
        diff = torch.where(diff.abs() < _FLAT, torch.zeros_like(diff), diff)
        mscn = diff / (sigma + 1)
        feats.append(_block_features(_to_blocks(mscn, BLOCK // scale)))
        if scale == 1:
            img = imresize(img, 0.5)
    return torch.cat(feats, dim=-1)


def _quality(feats: np.ndarray) -> float:
    mu_p, cov_p, _ = _pristine()
    rows = feats[~np.isnan(feats).any(axis=1)]
    if rows.shape[0] < 2:  # fewer than two textured blocks (a flat image): undefined
        return float("nan")
    mu = np.nanmean(feats, axis=0)
    cov = np.cov(rows, rowvar=False)
    d = mu_p - mu
    return float(np.sqrt(d @ np.linalg.pinv((cov_p + cov) / 2) @ d))


def niqe(restored: torch.Tensor, gt: torch.Tensor | None = None, *, crop: int = 0) -> torch.Tensor:
    """NIQE of each image in an N×3×H×W RGB batch in [0, 1] (lower is better). ``gt`` is ignored."""
    x = as_batch(restored, "restored")
    if crop:
        x = x[..., crop:-crop, crop:-crop]
    with cpu_single_thread(x):
        feats = niqe_features(luma_255(x)).cpu().numpy()
        return torch.tensor([_quality(f) for f in feats], dtype=torch.float64)
