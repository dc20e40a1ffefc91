"""Full-reference metrics: PSNR and SSIM, each in the protocol its name says.

All functions take ``restored`` and ``gt`` as N×3×H×W float RGB in [0, 1] (a single 3×H×W image
is accepted too), on any device, and return one float64 value per image (shape N). Arithmetic is
done in float64 so results do not depend on the device or the input dtype.

Protocols (see docs/evaluation.md):

* ``psnr``     — RGB, peak 1.0, mean over all pixels and channels. Identical images give ``inf``.
* ``psnr_y``   — Y of BT.601 YCbCr (MATLAB ``rgb2ycbcr``, Y in [16, 235]/255), peak 1.0.
* ``ssim``     — pyiqa's ``ssim``: luma Y = round(255·(0.299 R + 0.587 G + 0.114 B)), data range
  255, 11×11 Gaussian window σ = 1.5, "valid" filtering (no padding), no downsampling, the
  contrast-structure term clamped at 0 (as pyiqa does), mean of the SSIM map.
* ``ssim_rgb`` — pyiqa's ``ssimc``: the same on R, G and B (each ×255 and rounded), mean of the
  three channel maps.

``crop`` removes that many pixels from every border before anything else (default 0, as the
VQCNIR authors evaluated).
"""

from __future__ import annotations


import torch

from .color import cpu_single_thread, luma_255, ycbcr_y

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def as_batch(x: torch.Tensor, name: str = "image") -> torch.Tensor:
    """Return ``x`` as an N×3×H×W float64 tensor, or raise ValueError with a clear message."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be N×3×H×W RGB, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}")
    return x.to(torch.float64)


def _pair(restored: torch.Tensor, gt: torch.Tensor, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = as_batch(restored, "restored"), as_batch(gt, "gt")
    if x.shape != y.shape:
        raise ValueError(f"restored {tuple(x.shape)} and gt {tuple(y.shape)} differ in shape")
    if crop < 0:
        raise ValueError(f"crop must be >= 0, got {crop}")
    if crop:
        if min(x.shape[-2:]) <= 2 * crop:
            raise ValueError(f"crop {crop} leaves nothing of a {x.shape[-2]}×{x.shape[-1]} image")
        x = x[..., crop:-crop, crop:-crop]
        y = y[..., crop:-crop, crop:-crop]
    return x, y


def _psnr(x: torch.Tensor, y: torch.Tensor, peak: float) -> torch.Tensor:
    mse = ((x - y) ** 2).flatten(1).mean(dim=1)
    # mse == 0 gives +inf, which is the honest answer for identical images.
    return 10.0 * torch.log10(peak**2 / mse)


def psnr(restored: torch.Tensor, gt: torch.Tensor, *, crop: int = 0) -> torch.Tensor:
    """PSNR on RGB in [0, 1] (peak 1)."""
    x, y = _pair(restored, gt, crop)
    with cpu_single_thread(x):
        return _psnr(x, y, 1.0)


def psnr_y(restored: torch.Tensor, gt: torch.Tensor, *, crop: int = 0) -> torch.Tensor:
    """PSNR on the Y of BT.601 YCbCr (MATLAB ``rgb2ycbcr``), peak 1."""
    x, y = _pair(restored, gt, crop)
    with cpu_single_thread(x):
        return _psnr(ycbcr_y(x), ycbcr_y(y), 1.0)


def gaussian_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, **kw) -> torch.Tensor:
    """Normalised 1-D Gaussian; its outer product is MATLAB's ``fspecial('gaussian', size, sigma)``."""
    r = torch.arange(size, dtype=torch.float64, **kw) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' correlation of every channel of ``x`` with the window g⊗g.

    Written as a sum of shifted slices: on CPU this is several times faster than a float64
    ``conv2d``, and the summation order is fixed (tap 0 first) on every device.
    """
    taps = [float(v) for v in g]
    k = len(taps)
    h = x.shape[-2] - k + 1
    rows = x[..., 0:h, :] * taps[0]
    for i in range(1, k):  # in place: no full-size temporaries
        rows.add_(x[..., i : i + h, :], alpha=taps[i])
    w = x.shape[-1] - k + 1
    out = rows[..., 0:w] * taps[0]
    for i in range(1, k):
        out.add_(rows[..., i : i + w], alpha=taps[i])
    return out


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """SSIM map (N×C×h×w) of float64 images on a 0..data_range scale, Gaussian 11/1.5, valid."""
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, got "
            f"{x.shape[-2]}×{x.shape[-1]}"
        )
    g = gaussian_1d(device=x.device)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = filter_valid(x, g), filter_valid(y, g)
    sxx = filter_valid(x * x, g) - mu_x**2
    syy = filter_valid(y * y, g) - mu_y**2
    sxy = filter_valid(x * y, g) - mu_x * mu_y
    cs = ((2 * sxy + c2) / (sxx + syy + c2)).clamp_min(0.0)
    return (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs


def ssim(restored: torch.Tensor, gt: torch.Tensor, *, crop: int = 0) -> torch.Tensor:
    """SSIM on 8-bit luma, as pyiqa's ``ssim`` (see the module docstring)."""
    x, y = _pair(restored, gt, crop)
    with cpu_single_thread(x):
        return ssim_map(luma_255(x), luma_255(y), 255.0).flatten(1).mean(dim=1)


def ssim_rgb(restored: torch.Tensor, gt: torch.Tensor, *, crop: int = 0) -> torch.Tensor:
    """SSIM on R, G, B (each rounded to 8-bit levels), averaged, as pyiqa's ``ssimc``."""
    x, y = _pair(restored, gt, crop)
    with cpu_single_thread(x):
        return ssim_map((x * 255.0).round(), (y * 255.0).round(), 255.0).flatten(1).mean(dim=1)
