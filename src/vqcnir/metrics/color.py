"""Colour conversions used by the metrics, each named after the convention it follows.

Every function takes N×3×H×W RGB in [0, 1] (any float dtype) and returns N×1×H×W.
"""

from __future__ import annotations

import torch

from ..imagefiles import LUMA_WEIGHTS  # BT.601: MATLAB ``rgb2gray``, the Y of YIQ (pyiqa's default "Y")

# ITU-R BT.601 YCbCr (studio swing, Y in [16, 235]): MATLAB ``rgb2ycbcr``, BasicSR.
_YCBCR_Y = (65.481, 128.553, 24.966)


def _check_rgb(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an N×3×H×W RGB tensor, got shape {tuple(x.shape)}")


def luma_255(x: torch.Tensor, *, quantize: bool = True) -> torch.Tensor:
    """BT.601 luma (0.299 R + 0.587 G + 0.114 B) on a 0–255 scale, rounded to 8-bit levels.

    This is the Y pyiqa uses by default (``color_space='yiq'``, ``data_range=255``), and what
    MATLAB's ``rgb2gray`` gives for uint8 input.
    """
    _check_rgb(x)
    w = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    y = (x * w).sum(dim=1, keepdim=True) * 255.0
    return y.round() if quantize else y


def ycbcr_y(x: torch.Tensor) -> torch.Tensor:
    """Y of BT.601 YCbCr in [16/255, 235/255] (MATLAB ``rgb2ycbcr``; BasicSR ``test_y_channel``)."""
    _check_rgb(x)
    w = torch.tensor(_YCBCR_Y, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * w).sum(dim=1, keepdim=True) + 16.0) / 255.0


class cpu_single_thread:
    """Run a block single-threaded when its tensors are on the CPU.

    PSNR, SSIM and NIQE are chains of many small element-wise float64 operations; intra-op
    threading gains little on them and, on a busy machine, the threads' synchronisation at each
    operation can cost more than the work (measured: 10–20× slower with 2 threads under load).
    """

    def __init__(self, x: torch.Tensor):
        self.active = x.device.type == "cpu"
        self.saved = 1

    def __enter__(self):
        if self.active:
            self.saved = torch.get_num_threads()
            if self.saved != 1:
                torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if self.active and self.saved != 1:
            torch.set_num_threads(self.saved)
        return False
