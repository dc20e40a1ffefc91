"""Weight-free temporal metrics of a video: how much it flickers.

* ``warp_error``: the previous frame is warped onto the current one with OpenCV's DIS optical
  flow; the mean absolute difference over the pixels that the flow tracks (not occluded, not
  leaving the frame) is averaged over all consecutive pairs. A perfectly steady video scores
  what the flow and interpolation themselves leave (the ground truth's own value shows it).
* ``flicker``: the mean absolute change of mean brightness between consecutive frames.

Both are in 8-bit levels (0-255) on RGB in [0, 1] x 255, lower is better. The flow comes from the
ground truth when there is one, so a restored video and its ground truth are warped alike and
their values compare; without ground truth it comes from the video itself.
"""

from __future__ import annotations

import numpy as np

from ..imagefiles import luma


FLOW = ("OpenCV DIS optical flow, PRESET_MEDIUM, on 8-bit BT.601 luma; computed on the ground truth "
        "when given, else on the video itself")
OCCLUSION = ("forward-backward check (Sundaram et al. 2010): pixel x of frame t is kept when "
             "|b(x) + f(x + b(x))|^2 < 0.01 (|b(x)|^2 + |f(x + b(x))|^2) + 0.5 and x + b(x) lies inside "
             "frame t-1, with b the flow t -> t-1 and f the flow t-1 -> t")
PROTOCOLS = {
    "warp_error": {
        "definition": "mean over consecutive pairs of sum_x M(x) mean_c |V_t(x) - V_{t-1}(x + b(x))| / sum_x M(x), "
                      "x 255 (8-bit levels); bilinear warping",
        "flow": FLOW, "mask": OCCLUSION, "pairs": "frames (t-1, t) for t = 1 .. T-1"},
    "flicker": {
        "definition": "mean over consecutive pairs of |mean luma(V_t) - mean luma(V_{t-1})| x 255, BT.601 luma "
                      "(0.299 R + 0.587 G + 0.114 B)",
        "pairs": "frames (t-1, t) for t = 1 .. T-1"},
}
TEMPORAL = tuple(PROTOCOLS)


def mean_luma(rgb: np.ndarray) -> float:
    return float(luma(rgb).mean())


def pair_warp(before: np.ndarray, now: np.ndarray):
    """The flow of the protocol (DIS medium, with its occlusion mask) between two source frames."""
    from ..video.flow import PairWarp

    return PairWarp(before, now, preset="medium")


def warp_error(before: np.ndarray, now: np.ndarray, warp) -> float:
    """Masked mean absolute difference of ``now`` and warped ``before``, in 8-bit levels."""
    if not warp.mask.any():
        return float("nan")
    diff = np.abs(now - warp.warp(before)).mean(axis=2)
    return float(diff[warp.mask].mean() * 255.0)


def pair_values(before: np.ndarray, now: np.ndarray, warp) -> dict[str, float]:
    """warp_error and flicker of one pair of consecutive H x W x 3 float frames."""
    return {"warp_error": warp_error(before, now, warp),
            "flicker": abs(mean_luma(now) - mean_luma(before)) * 255.0}
