"""Backward warping between consecutive frames with OpenCV's DIS optical flow and a
forward-backward occlusion mask: the one place both the temporal stabiliser and the temporal
metrics get their motion from."""

from __future__ import annotations

import numpy as np

from ..imageio import LUMA_WEIGHTS, to_uint
from . import require_cv2

_LUMA = np.array(LUMA_WEIGHTS, dtype=np.float32)
PRESETS = ("ultrafast", "fast", "medium")


def grey8(rgb: np.ndarray) -> np.ndarray:
    """8-bit BT.601 luma of an H x W x 3 float image in [0, 1]: what DIS works on."""
    return to_uint(rgb @ _LUMA, 8)


def make_dis(preset: str = "medium", tuning: tuple[tuple[str, float], ...] = ()):
    """A DIS flow of ``preset`` with some of its parameters changed, e.g. ``(("PatchSize", 12),)``
    calls ``setPatchSize(12)``."""
    cv2 = require_cv2()
    dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
    for name, value in tuning:
        getattr(dis, f"set{name}")(value)
    return dis


class PairWarp:
    """Maps frame t-1 onto frame t. ``mask`` keeps the pixels of frame t that the flow tracks
    both ways (Sundaram et al. 2010: |b(x) + f(x + b(x))|^2 < 0.01 (|b|^2 + |f(x + b(x))|^2) + 0.5)
    and that come from inside frame t-1; occluded, disoccluded and badly tracked pixels fail it.

    ``before`` and ``now`` are H x W x 3 float RGB in [0, 1] (the flow is found on their luma) or
    H x W uint8 images that the flow is found on as they are."""

    def __init__(self, before: np.ndarray, now: np.ndarray, preset: str = "medium", dis=None):
        cv2 = require_cv2()
        self._cv2 = cv2
        dis = dis if dis is not None else make_dis(preset)
        g0, g1 = (x if x.ndim == 2 else grey8(x) for x in (before, now))
        back = dis.calc(g1, g0, None)   # now(x) ~ before(x + back(x))
        fwd = dis.calc(g0, g1, None)    # before(y) ~ now(y + fwd(y))
        h, w = g0.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.map_x, self.map_y = gx + back[..., 0], gy + back[..., 1]
        fwd_at = cv2.remap(fwd, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        loop = np.square(back + fwd_at).sum(axis=2)
        scale = np.square(back).sum(axis=2) + np.square(fwd_at).sum(axis=2)
        inside = (self.map_x >= 0) & (self.map_x <= w - 1) & (self.map_y >= 0) & (self.map_y <= h - 1)
        self.mask = (loop < 0.01 * scale + 0.5) & inside

    def warp(self, before: np.ndarray) -> np.ndarray:
        """``before`` (frame t-1, or anything aligned with it) moved onto frame t, bilinearly."""
        return self._cv2.remap(before, self.map_x, self.map_y, self._cv2.INTER_LINEAR,
                               borderMode=self._cv2.BORDER_REPLICATE)
