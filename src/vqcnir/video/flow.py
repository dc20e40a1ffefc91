"""Backward warping between consecutive frames with OpenCV's DIS optical flow and a
forward-backward occlusion mask: the one place both the temporal stabiliser and the temporal
metrics get their motion from."""

from __future__ import annotations

import numpy as np

from ..imagefiles import luma, to_uint
from . import require_cv2

PRESETS = ("ultrafast", "fast", "medium")


def grey8(rgb: np.ndarray) -> np.ndarray:
    """8-bit BT.601 luma of an H x W x 3 float image in [0, 1]: what DIS works on."""
    return to_uint(luma(rgb), 8)


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

    def follow_global_motion(self, tolerance: float) -> None:
        """Replace the flow by the camera's motion where they agree. A homography fitted (RANSAC)
        to the flow every 8 px is the motion of a camera panning, zooming and shaking over a
        distant scene; where the dense flow is within about ``tolerance`` px of it, the dense
        flow's own noise is dropped for it (the weight falls as exp(-(distance / tolerance)^2));
        moving objects and near objects keep their dense flow and its ``mask``."""
        cv2 = self._cv2
        h, w = self.map_x.shape
        ys, xs = np.mgrid[4:h:8, 4:w:8]
        src = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
        dst = np.stack([self.map_x[ys, xs].ravel(), self.map_y[ys, xs].ravel()], axis=1)
        if len(src) < 8:
            return
        homography, _ = cv2.findHomography(src, dst, cv2.RANSAC, 0.5)
        if homography is None:
            return
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        camera = cv2.perspectiveTransform(np.stack([gx, gy], axis=-1).reshape(-1, 1, 2), homography)
        cam_x, cam_y = (c.astype(np.float32) for c in camera.reshape(h, w, 2).transpose(2, 0, 1))
        agree = np.exp(-(np.square(cam_x - self.map_x) + np.square(cam_y - self.map_y)) / np.float32(tolerance) ** 2)
        self.map_x += agree * (cam_x - self.map_x)
        self.map_y += agree * (cam_y - self.map_y)
        # The camera's motion is consistent both ways by construction: where the flow snaps to it,
        # a failed forward-backward check was the dense flow's noise (flat, noisy regions), not an
        # occlusion; what leaves the frame still fails.
        inside = (self.map_x >= 0) & (self.map_x <= w - 1) & (self.map_y >= 0) & (self.map_y <= h - 1)
        self.mask = (self.mask | (agree > 0.5)) & inside

    def warp(self, before: np.ndarray) -> np.ndarray:
        """``before`` (frame t-1, or anything aligned with it) moved onto frame t, bilinearly."""
        return self._cv2.remap(before, self.map_x, self.map_y, self._cv2.INTER_LINEAR,
                               borderMode=self._cv2.BORDER_REPLICATE)
