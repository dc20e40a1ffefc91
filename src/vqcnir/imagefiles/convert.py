"""Pixel value conversions at the file edge: uint8/uint16 <-> float32 in [0, 1], luma, tensors."""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma weights, the one copy in the project: Pillow's "L", MATLAB's rgb2gray, the Y of
# YIQ. A tuple of Python floats, so that each user builds its array in its own dtype.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_LUMA_WEIGHTS = np.array(LUMA_WEIGHTS, dtype=np.float32)


def check_bit_depth(bit_depth: int) -> int:
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, not {bit_depth!r}")
    return int(bit_depth)


def to_uint(rgb_float: np.ndarray, bit_depth: int) -> np.ndarray:
    """Clip to [0, 1], scale to the full range of ``bit_depth`` and round to uint8 / uint16.

    NaN becomes 0. An array that is already uint8 or uint16 is converted exactly between the two
    depths (``v * 257`` up, rounded ``v / 257`` down) and returned as is when the depth matches.
    """
    bit_depth = check_bit_depth(bit_depth)
    out_dtype = np.uint8 if bit_depth == 8 else np.uint16
    array = np.asarray(rgb_float)
    if array.dtype == np.uint8 or array.dtype == np.uint16:
        if array.dtype == out_dtype:
            return array
        if out_dtype == np.uint16:
            return array.astype(np.uint16) * np.uint16(257)
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if array.dtype == np.bool_:
        return array.astype(out_dtype) * out_dtype(np.iinfo(out_dtype).max)
    if array.dtype.kind != "f":  # other integers have no agreed range: refuse to guess
        raise TypeError(f"to_uint expects floats in [0, 1] or uint8/uint16, not {array.dtype}")
    scale = np.float32(np.iinfo(out_dtype).max)
    values = np.array(array, dtype=np.float32)  # a copy, so the caller's array is never changed
    np.nan_to_num(values, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(values, 0.0, 1.0, out=values)
    values *= scale
    np.rint(values, out=values)
    return values.astype(out_dtype)


def from_uint(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 (or bool) image values to float32 in [0, 1]."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255)
    if array.dtype == np.uint16:
        return array.astype(np.float32) / np.float32(65535)
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    raise TypeError(f"from_uint expects uint8 or uint16 values, not {array.dtype}")


def luma(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 RGB (float, or uint8/uint16) to H×W float32 Rec. 601 luma."""
    values = from_uint(rgb) if rgb.dtype in (np.uint8, np.uint16) else rgb.astype(np.float32, copy=False)
    return values @ _LUMA_WEIGHTS


def to_tensor(rgb: np.ndarray):
    """H×W×3 float RGB to a 1×3×H×W float32 torch tensor (torch imported here: only the callers
    that run a network need it, and ``vqcnir --help`` must not wait for it)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
