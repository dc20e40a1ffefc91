"""Blur kernels: random camera-shake trajectories, defocus, and an FFT convolution.

A hand-held night exposure integrates the scene along the path the camera shook through, so a
kernel is that path rasterised with equal time per step: where the camera lingered the kernel is
brighter. The kernel is centred on its centre of mass so that the blurry image stays aligned with
the sharp ground truth (no global shift for the network to learn).
"""

from __future__ import annotations

import math

import numpy as np


def shake_trajectory(rng: np.random.Generator, steps: int = 48, momentum: float = 0.8,
                     jerk_p: float = 0.05) -> np.ndarray:
    """A continuous random walk with momentum: `steps + 1` points in arbitrary units."""
    angle = rng.random() * 2.0 * math.pi
    v = np.array([math.cos(angle), math.sin(angle)])
    pts = np.zeros((steps + 1, 2))
    for t in range(steps):
        noise = rng.standard_normal(2)
        v = momentum * v + (1.0 - momentum) * noise
        if rng.random() < jerk_p:  # an occasional twitch of the hand
            v = v + rng.standard_normal(2)
        pts[t + 1] = pts[t] + v
    return pts


def rasterise(points: np.ndarray, length: float, samples_per_step: int = 8) -> np.ndarray:
    """Scale a trajectory so its larger extent is `length - 1` px and splat it into a kernel."""
    pts = np.asarray(points, dtype=np.float64)
    extent = float(np.ptp(pts, axis=0).max()) if len(pts) > 1 else 0.0
    if length <= 1.0 or extent < 1e-9:
        return np.ones((1, 1), dtype=np.float32)
    pts = pts * ((length - 1.0) / extent)
    # Equal time per step (not equal arc length): slow parts of the shake get more weight.
    t = np.arange(samples_per_step) / samples_per_step
    a, b = pts[:-1, None, :], pts[1:, None, :]
    dense = (a + (b - a) * t[None, :, None]).reshape(-1, 2)
    dense = np.vstack([dense, pts[-1:]])
    dense -= dense.mean(axis=0)  # centre of mass at the kernel centre
    half = int(math.ceil(np.abs(dense).max())) + 1
    size = 2 * half + 1
    xy = dense + half
    x0 = np.floor(xy[:, 0]).astype(int)
    y0 = np.floor(xy[:, 1]).astype(int)
    fx, fy = xy[:, 0] - x0, xy[:, 1] - y0
    k = np.zeros((size, size), dtype=np.float64)
    for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                      (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), w)
    return (k / k.sum()).astype(np.float32)


def gaussian_1d(sigma: float) -> np.ndarray:
    r = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def add_defocus(kernel: np.ndarray, sigma: float) -> np.ndarray:
    """Convolve a kernel with a small Gaussian (a slightly missed focus)."""
    if sigma <= 0:
        return kernel
    g = gaussian_1d(sigma)
    r = len(g) // 2
    k = np.pad(kernel.astype(np.float64), r)
    k = np.apply_along_axis(lambda row: np.convolve(row, g, mode="same"), 1, k)
    k = np.apply_along_axis(lambda col: np.convolve(col, g, mode="same"), 0, k)
    k = np.clip(k, 0.0, None)
    return (k / k.sum()).astype(np.float32)


def shake_kernel(seed: int, length: float, defocus_sigma: float = 0.0, *, steps: int = 48,
                 momentum: float = 0.8) -> np.ndarray:
    """The whole camera kernel for one sample, fully determined by its arguments."""
    rng = np.random.default_rng(seed)
    k = rasterise(shake_trajectory(rng, steps=steps, momentum=momentum), length)
    return add_defocus(k, defocus_sigma)


def kernel_spread(kernel: np.ndarray) -> float:
    """Root-mean-square radius of a kernel around its centre of mass, in pixels."""
    k = kernel / kernel.sum()
    ys, xs = np.mgrid[: k.shape[0], : k.shape[1]]
    cy, cx = (k * ys).sum(), (k * xs).sum()
    return float(np.sqrt((k * ((ys - cy) ** 2 + (xs - cx) ** 2)).sum()))


def _fast_len(n: int) -> int:
    """Smallest 2^a·3^b·5^c ≥ n: sizes pocketfft handles quickly."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def convolve(image: np.ndarray, kernel: np.ndarray,
             pads: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Convolve H×W×C (or H×W) with a small kernel.

    `pads` = (top, bottom, left, right) rows/columns of reflected border to add; the default,
    the kernel radius on every side, gives a same-size output. Where the caller already has real
    context around the part it wants, smaller pads give a smaller output and a cheaper FFT."""
    kh, kw = kernel.shape
    ry, rx = kh // 2, kw // 2
    pt, pb, pl, pr = pads if pads is not None else (ry, ry, rx, rx)
    squeeze = image.ndim == 2
    img = image[..., None] if squeeze else image
    if kernel.shape == (1, 1):
        out = img[ry - pt: img.shape[0] - (ry - pb), rx - pl: img.shape[1] - (rx - pr)]
        out = out * float(kernel[0, 0])
        return out[..., 0] if squeeze else out
    widths = ((pt, pb), (pl, pr), (0, 0))
    small = min(img.shape[0], img.shape[1]) <= max(pt, pb, pl, pr)
    padded = np.pad(img, widths, mode="wrap" if small else "reflect")  # wrap: tiny images only
    hp, wp = padded.shape[:2]
    fh, fw = _fast_len(hp + kh - 1), _fast_len(wp + kw - 1)
    spec = np.fft.rfft2(padded, s=(fh, fw), axes=(0, 1))
    kspec = np.fft.rfft2(kernel.astype(np.float64), s=(fh, fw))
    full = np.fft.irfft2(spec * kspec[..., None], s=(fh, fw), axes=(0, 1))
    h, w = hp - kh + 1, wp - kw + 1
    out = full[kh - 1: kh - 1 + h, kw - 1: kw - 1 + w].astype(np.float32)
    return out[..., 0] if squeeze else out
