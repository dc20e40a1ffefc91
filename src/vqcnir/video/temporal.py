"""Temporal consistency for frame-by-frame restoration, without learning and without look-ahead.

A restorer that sees one frame at a time flickers in two ways (measured in docs/video.md):

1. **Tone.** Each frame's global brightness and colour are re-estimated from its own noise and
   blur, so they jump between frames although the scene's light does not change.
2. **Texture.** Codebook textures and leftover noise are re-drawn on every frame.

``Stabilizer`` removes both, causally, with a state of one frame (so a resumed job continues
exactly where it stopped):

1. **Tone tracking.** The restored frame's per-channel mean is pulled towards a running value
   that follows the *night input's* own brightness changes: a light switched on, or a pan into
   a brighter street, changes the input and passes through; a jump that only the restorer made
   is smoothed away. ``m_ref = a * m_ref_prev * (n_t / n_prev) + (1 - a) * m_t``, then the frame's
   channels are scaled by ``m_ref / m_t``.
2. **Motion-compensated blending.** The previous *output* is warped onto the current frame and
   blended in with weight up to 0.99: a recursive average over many frames, which cancels the
   re-drawn texture. The flow (OpenCV's DIS) is found on a *guide*: the night input's luma,
   brightened to a fixed mean, low-passed and averaged along the flow. It has the scene's true
   motion and none of the restorer's texture, which pulls a flow found on restored frames. Where
   the flow agrees with a homography fitted to it (the camera's motion), it snaps to it.
   The weight falls to zero where the forward-backward check fails (occlusion, new content), near
   flow edges (an independently moving object, whose smoothed flow is wrong in a band around it),
   and where the output drifts from the current frame at low spatial frequency (a disagreement
   averaged along the flow, so that re-drawn texture cancels and a slow object's lag shows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..imagefiles import luma, to_uint
from .flow import PairWarp, make_dis

GUIDE_MEAN = 0.4    # the night luma is scaled to this mean before the flow sees it
DETAIL_SIGMA = 12.0  # px: the flow sees the guide minus this blur of it (its detail), amplified


@dataclass(frozen=True)
class TemporalSettings:
    tone_memory: float = 0.8     # weight of the running tone (0: off); ~5 frames to settle
    tone_dead_zone: float = 0.05  # night-brightness changes within +-5 % per frame are noise and blur
    blend: float = 0.99          # weight of the warped previous output where it agrees (0: off)
    tolerance: float = 0.1       # low-pass disagreement (0-1 scale) at which the blend weight is 1/e
    smooth_sigma: float = 4.0    # Gaussian sigma (px) of the low-pass used to judge disagreement
    drift_memory: float = 0.7    # the disagreement is averaged along the flow (0: this frame's only)
    shear_tolerance: float = 0.06  # flow change (px of flow per px) at which the blend weight is 1/e
    shear_reach: int = 4         # px around a flow edge where the flow is not trusted
    global_tolerance: float = 1.0  # px: the flow snaps to the camera's motion where it agrees (0: off)
    flow_source: str = "night"   # "night": the flow follows the night input's guide; "restored": the output
    guide_sigma: float = 3.0     # Gaussian sigma (px) that takes the noise out of the night guide
    guide_memory: float = 0.8    # the guide is averaged along the flow too (0: raw frame pairs)
    guide_detail: float = 4.0    # gain of the guide's detail in the flow's 8-bit image (0: the guide as is)
    flow_preset: str = "fast"    # DIS preset, then a larger patch and more variational smoothing:
    flow_tuning: tuple[tuple[str, float], ...] = (
        ("PatchSize", 12), ("PatchStride", 3), ("VariationalRefinementAlpha", 60.0),
        ("VariationalRefinementIterations", 20))


class Stabilizer:
    """Call once per frame, in order: ``out = stabilizer(night, restored)`` on H x W x 3 float32
    arrays in [0, 1]; ``state()`` / ``load_state()`` carry it across a resumed job."""

    def __init__(self, settings: TemporalSettings | None = None):
        self.settings = settings or TemporalSettings()
        self.reference: np.ndarray | None = None   # running per-channel mean of the output
        self.night_mean: float | None = None       # previous night frame's mean luma
        self.previous: np.ndarray | None = None    # previous output frame
        self.guide: np.ndarray | None = None       # previous frame's flow guide (H x W float32)
        self.drift: np.ndarray | None = None       # running signed low-pass disagreement (H x W x 3)
        self._light_step = np.float32(1.0)         # the light's change since the previous frame
        self._dis = None

    def state(self) -> dict[str, np.ndarray]:
        if self.previous is None:
            return {}
        return {"reference": self.reference, "night_mean": np.float64(self.night_mean),
                "previous": self.previous, "guide": self.guide,
                **({"drift": self.drift} if self.drift is not None else {})}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        if "previous" in state:
            self.reference = np.asarray(state["reference"], dtype=np.float64)
            self.night_mean = float(state["night_mean"])
            self.previous = np.asarray(state["previous"], dtype=np.float32)
            self.guide = np.asarray(state["guide"], dtype=np.float32)
            self.drift = np.asarray(state["drift"], dtype=np.float32) if "drift" in state else None

    def __call__(self, night: np.ndarray, restored: np.ndarray) -> np.ndarray:
        restored = np.clip(restored, 0.0, 1.0).astype(np.float32, copy=False)
        out = self._tone(night, restored)
        guide = self._guide(night, out)
        if self.previous is not None and self.previous.shape == out.shape and self.settings.blend > 0:
            out, guide = self._blend(out, guide)
        self.previous, self.guide = out, guide
        return out

    def _tone(self, night: np.ndarray, restored: np.ndarray) -> np.ndarray:
        s = self.settings
        means = restored.reshape(-1, 3).mean(axis=0).astype(np.float64)
        night_mean = float(luma(night).mean())
        if self.reference is None:
            self.reference, self.night_mean = means, night_mean
            return restored
        # The input's own change passes through beyond a dead zone; within it, it is the jitter that
        # per-frame noise and shake blur give a night frame's mean (measured: up to ~3 % per frame).
        ratio = night_mean / self.night_mean if self.night_mean > 1e-4 else 1.0
        follow = ratio / min(max(ratio, 1 - s.tone_dead_zone), 1 + s.tone_dead_zone)
        self._light_step = np.float32(follow)
        self.night_mean = night_mean
        if s.tone_memory <= 0:
            return restored
        self.reference = s.tone_memory * self.reference * follow + (1 - s.tone_memory) * means
        gain = (self.reference / np.maximum(means, 1e-4)).astype(np.float32)
        return np.clip(restored * gain, 0.0, 1.0)

    def _guide(self, night: np.ndarray, restored: np.ndarray) -> np.ndarray:
        """What the flow is found on: the night input's luma, brightened to a fixed mean and
        low-passed (it has the scene's true motion and none of the restorer's re-drawn texture),
        or the restored frame's luma."""
        import cv2

        s = self.settings
        if s.flow_source == "restored":
            return luma(restored)
        grey = luma(night)
        grey *= np.float32(GUIDE_MEAN / max(float(grey.mean()), 1e-4))
        return cv2.GaussianBlur(grey, (0, 0), s.guide_sigma) if s.guide_sigma > 0 else grey

    def _flow_image(self, guide: np.ndarray) -> np.ndarray:
        """The 8-bit image DIS sees: the guide's detail amplified around mid-grey, so that a soft
        guide's gentle gradients are not lost to 8-bit steps and slow shading does not pull the flow."""
        import cv2

        if not self.settings.guide_detail:
            return to_uint(guide, 8)
        detail = guide - cv2.GaussianBlur(guide, (0, 0), DETAIL_SIGMA)
        return to_uint(0.5 + self.settings.guide_detail * detail, 8)

    def _blend(self, current: np.ndarray, guide: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        s = self.settings
        if self._dis is None:
            self._dis = make_dis(s.flow_preset, s.flow_tuning)
        pair = PairWarp(self._flow_image(self.guide), self._flow_image(guide), dis=self._dis)
        if s.global_tolerance > 0:
            pair.follow_global_motion(s.global_tolerance)
        # The previous output was lit as the previous frame: a light switched on brightens it too.
        warped = pair.warp(self.previous) * self._light_step
        low = lambda x: cv2.GaussianBlur(x, (0, 0), s.smooth_sigma)  # noqa: E731
        # The disagreement is averaged along the flow: the restorer's re-drawn texture changes sign
        # from frame to frame and cancels, while the drift of an output that lags behind a slowly
        # moving object keeps its sign and stays.
        drift = low(current) - low(warped)
        if self.drift is not None and s.drift_memory > 0:
            drift += np.float32(s.drift_memory) * (pair.warp(self.drift) - drift)
        self.drift = drift
        disagreement = np.abs(drift).mean(axis=2)
        weight = np.float32(s.blend) * pair.mask * _falloff(disagreement, s.tolerance)
        weight *= _falloff(_shear(pair, s.shear_reach), s.shear_tolerance)
        out = np.clip(current + weight[..., None] * (warped - current), 0.0, 1.0)
        if s.flow_source == "night" and s.guide_memory > 0:
            # A guide averaged along the flow is nearly noise-free on the previous frame's side,
            # which lowers the noise that the flow of the next pair sees.
            guide = guide + (np.float32(s.guide_memory) * pair.mask) * (pair.warp(self.guide) - guide)
        return out, guide


def _falloff(x: np.ndarray, tolerance: float) -> np.ndarray:
    """1 well below ``tolerance``, 1/e at it, nearly 0 at 1.5x: small disagreements (re-drawn
    texture, a zoom's gentle shear) keep the full blend weight, large ones remove it."""
    return np.exp(-np.power(x / np.float32(tolerance), 4))


def _shear(pair: PairWarp, reach: int) -> np.ndarray:
    """How fast the flow changes across the image (px of flow per px), spread ``reach`` px: small
    under camera motion (a pan is uniform, a 1 % zoom changes by 0.01 px/px), large at the edges
    of an independently moving object, where a smoothed flow is wrong in a band around it."""
    import cv2

    h, w = pair.map_x.shape
    flow = (pair.map_x - np.arange(w, dtype=np.float32)[None], pair.map_y - np.arange(h, dtype=np.float32)[:, None])
    shear = np.sqrt(sum(np.square(cv2.Sobel(f, cv2.CV_32F, dx, 1 - dx, ksize=3) / 8) for f in flow for dx in (0, 1)))
    return cv2.dilate(shear, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) if reach else shear
