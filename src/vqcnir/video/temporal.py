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
2. **Motion-compensated blending.** The previous *output* is warped onto the current frame with
   OpenCV's DIS optical flow and blended in with a per-pixel weight that falls to zero where the
   two disagree at low spatial frequency (occlusions, new content, wrong flow) or where the flow
   leaves the frame. Moving content is therefore taken from the current frame and stays sharp;
   static and well-tracked content is averaged over a few frames, which cancels the re-drawn
   texture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..imagefiles import LUMA_WEIGHTS
from .flow import PairWarp

_LUMA = np.array(LUMA_WEIGHTS, dtype=np.float32)


@dataclass(frozen=True)
class TemporalSettings:
    tone_memory: float = 0.8     # weight of the running tone (0: off); ~5 frames to settle
    tone_dead_zone: float = 0.05  # night-brightness changes within +-5 % per frame are noise and blur
    blend: float = 0.95          # weight of the warped previous output where it agrees (0: off)
    tolerance: float = 0.08      # low-pass disagreement (0-1 scale) at which the blend weight is 1/e
    smooth_sigma: float = 2.0    # Gaussian sigma (px) of the low-pass used to judge disagreement
    flow_preset: str = "fast"    # DIS preset: a smoother flow follows the restorer's texture less


class Stabilizer:
    """Call once per frame, in order: ``out = stabilizer(night, restored)`` on H x W x 3 float32
    arrays in [0, 1]; ``state()`` / ``load_state()`` carry it across a resumed job."""

    def __init__(self, settings: TemporalSettings | None = None):
        self.settings = settings or TemporalSettings()
        self.reference: np.ndarray | None = None   # running per-channel mean of the output
        self.night_mean: float | None = None       # previous night frame's mean luma
        self.previous: np.ndarray | None = None    # previous output frame

    def state(self) -> dict[str, np.ndarray]:
        if self.previous is None:
            return {}
        return {"reference": self.reference, "night_mean": np.float64(self.night_mean), "previous": self.previous}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        if "previous" in state:
            self.reference = np.asarray(state["reference"], dtype=np.float64)
            self.night_mean = float(state["night_mean"])
            self.previous = np.asarray(state["previous"], dtype=np.float32)

    def __call__(self, night: np.ndarray, restored: np.ndarray) -> np.ndarray:
        restored = np.clip(restored, 0.0, 1.0).astype(np.float32, copy=False)
        out = self._tone(night, restored)
        if self.previous is not None and self.previous.shape == out.shape and self.settings.blend > 0:
            out = self._blend(out)
        self.previous = out
        return out

    def _tone(self, night: np.ndarray, restored: np.ndarray) -> np.ndarray:
        s = self.settings
        means = restored.reshape(-1, 3).mean(axis=0).astype(np.float64)
        night_mean = float((night.reshape(-1, 3) @ _LUMA).mean())
        if self.reference is None or s.tone_memory <= 0:
            self.reference, self.night_mean = means, night_mean
            return restored
        # The input's own change passes through beyond a dead zone; within it, it is the jitter that
        # per-frame noise and shake blur give a night frame's mean (measured: up to ~3 % per frame).
        ratio = night_mean / self.night_mean if self.night_mean > 1e-4 else 1.0
        follow = ratio / min(max(ratio, 1 - s.tone_dead_zone), 1 + s.tone_dead_zone)
        self.reference = s.tone_memory * self.reference * follow + (1 - s.tone_memory) * means
        self.night_mean = night_mean
        gain = (self.reference / np.maximum(means, 1e-4)).astype(np.float32)
        return np.clip(restored * gain, 0.0, 1.0)

    def _blend(self, current: np.ndarray) -> np.ndarray:
        import cv2

        s = self.settings
        pair = PairWarp(self.previous, current, s.flow_preset)
        warped = pair.warp(self.previous)
        disagreement = cv2.GaussianBlur(np.abs(current - warped).mean(axis=2), (0, 0), s.smooth_sigma)
        weight = s.blend * np.exp(-np.square(disagreement / s.tolerance)) * pair.mask
        return current + weight[..., None] * (warped - current)
