"""Classical night-photo "restorers", so that a metric value has something to be compared with.

Each baseline maps an H×W×3 float RGB image in [0, 1] to the same; none is learned.

* ``identity`` — the night input itself (the floor every method must beat).
* ``gamma``    — auto-exposure: one global gamma chosen so the mean luma becomes 0.4.
* ``clahe``    — CLAHE on CIELAB lightness (8×8 tiles, clip 0.01), then total-variation denoising.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from ..errors import VQCNIRError
from ..imagefiles import LUMA_WEIGHTS

TARGET_MEAN_LUMA = 0.4
_LUMA = np.array(LUMA_WEIGHTS)


def identity(night: np.ndarray) -> np.ndarray:
    return np.asarray(night, dtype=np.float32).copy()


def gamma(night: np.ndarray, target: float = TARGET_MEAN_LUMA) -> np.ndarray:
    """Global power curve x**g with g such that the mean luma maps to ``target`` (g in [0.1, 1])."""
    x = np.clip(np.asarray(night, dtype=np.float64), 0.0, 1.0)
    mean = float((x @ _LUMA).mean())
    if mean <= 1e-4:
        g = 0.1
    else:
        g = float(np.clip(np.log(target) / np.log(mean), 0.1, 1.0)) if mean < 1.0 else 1.0
    return (x**g).astype(np.float32)


def _skimage():
    try:
        from skimage import color, exposure, restoration
    except ImportError:
        raise VQCNIRError("the 'clahe' baseline needs scikit-image: pip install scikit-image") from None
    return color, exposure, restoration


def clahe(night: np.ndarray, clip_limit: float = 0.01, denoise_weight: float = 0.04) -> np.ndarray:
    """CLAHE on L* of CIELAB (chroma kept), then TV (Chambolle) denoising of the RGB result."""
    color, exposure, restoration = _skimage()
    x = np.clip(np.asarray(night, dtype=np.float64), 0.0, 1.0)
    lab = color.rgb2lab(x)
    lightness = np.clip(lab[..., 0] / 100.0, 0.0, 1.0)
    lab[..., 0] = exposure.equalize_adapthist(lightness, clip_limit=clip_limit) * 100.0
    with warnings.catch_warnings():  # out-of-gamut colours are clipped on purpose, right here
        warnings.filterwarnings("ignore", message="Conversion from CIE-LAB")
        out = np.clip(color.lab2rgb(lab), 0.0, 1.0)
    out = restoration.denoise_tv_chambolle(out, weight=denoise_weight, channel_axis=-1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": identity,
    "gamma": gamma,
    "clahe": clahe,
}

DESCRIPTIONS = {
    "identity": "the night input, unchanged",
    "gamma": f"global gamma so the mean luma is {TARGET_MEAN_LUMA} (exponent clipped to [0.1, 1])",
    "clahe": "CLAHE on CIELAB L* (clip 0.01, 8x8 tiles) + TV-Chambolle denoise (weight 0.04)",
}


def get(name: str) -> Callable[[np.ndarray], np.ndarray]:
    try:
        return BASELINES[name]
    except KeyError:
        raise VQCNIRError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}") from None
