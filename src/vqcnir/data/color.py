"""Colour helpers: sRGB transfer curves and CIE lightness, all on float arrays in [0, 1]."""

from __future__ import annotations

import numpy as np

# Rec.709 / sRGB primaries, D65: the luminance row of the RGB→XYZ matrix.
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_EPS_LAB = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, None)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def luminance(linear_rgb: np.ndarray) -> np.ndarray:
    return (linear_rgb @ LUMA).astype(np.float32)


def lightness_from_luminance(y: np.ndarray) -> np.ndarray:
    """CIE L*/100 from relative luminance Y in [0, 1]."""
    y = np.clip(y, 0.0, None)
    f = np.where(y > _EPS_LAB, np.cbrt(y), (_KAPPA * y + 16.0) / 116.0)
    return ((116.0 * f - 16.0) / 100.0).astype(np.float32)


def luminance_from_lightness(lightness: np.ndarray) -> np.ndarray:
    l100 = np.asarray(lightness, dtype=np.float32) * 100.0
    f = (l100 + 16.0) / 116.0
    return np.where(l100 > _KAPPA * _EPS_LAB, f ** 3, l100 / _KAPPA).astype(np.float32)


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L*/100 (in [0, 1]) of an sRGB image H×W×3."""
    return lightness_from_luminance(luminance(srgb_to_linear(rgb)))
