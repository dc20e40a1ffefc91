"""`vqcnir synth --video`: night+blur clips with ground truth, from sharp photos and a camera path.

A clip is a virtual camera moving over one photo: a pan from a start to an end point, a zoom,
and a small hand shake (a smoothed random walk), eased in and out. As in LOL-Blur's videos, the
darkening is fixed per clip (one exposure and one curve, fitted on the first frame) and so are
the noise model and its level; the shake blur kernel and the noise itself are drawn per frame.
Every frame goes through `Degrader.apply`, the same degradation as the photo pairs.

OUT/synth_video.json          settings (resume guard)
OUT/night/clip_NNNN.<ext>     the input clip
OUT/gt/clip_NNNN.<ext>        the ground-truth clip (the sharp frames dimmed by the gt factor)
OUT/params/clip_NNNN.json     the camera path and every drawn parameter; written last, so a
                              clip whose record exists is finished and a re-run skips it
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import VQCNIRError
from ..imagefiles import images_under, read_rgb, to_uint, write_text
from .degrade import DegradeConfig, Degrader, sample_seed
from .synth import _check_settings

FORMAT = 1


@dataclass
class CameraConfig:
    pan: float = 0.25        # largest pan, as a fraction of the frame's width / height
    zoom: float = 0.25       # largest zoom in or out over a clip (0.25: scale from 1 to 1.25)
    shake: float = 1.5       # hand shake, standard deviation of the jitter in pixels


@dataclass
class ClipSettings:
    seed: int = 0
    size: tuple[int, int] = (320, 180)  # (width, height)
    frames: int = 24
    fps: int = 30
    codec: str = "ffv1"                   # lossless by default: metrics see exact pixels
    crf: int = 18
    camera: CameraConfig = field(default_factory=CameraConfig)
    config: DegradeConfig = field(default_factory=DegradeConfig)

    def to_json(self, photos: list[str]) -> dict[str, Any]:
        return {"format": FORMAT, "seed": self.seed, "size": list(self.size), "frames": self.frames,
                "fps": self.fps, "codec": self.codec, "crf": self.crf,
                "camera": vars(self.camera), "config": self.config.to_dict(), "photos": photos}


def camera_path(rng: np.random.Generator, frames: int, camera: CameraConfig) -> list[tuple[float, ...]]:
    """Per frame (dx, dy, zoom, shake_x, shake_y): the view's centre offset from the photo's
    centre in frame widths/heights, its magnification (1 = the base view) and the shake in px."""
    start, end = rng.uniform(-camera.pan / 2, camera.pan / 2, (2, 2))
    zoom_from, zoom_to = 1.0, 1.0 + rng.uniform(-camera.zoom, camera.zoom)
    # smooth hand shake: an AR(1) walk in pixels, later turned into a fraction of the frame
    shake = np.zeros((frames, 2))
    for t in range(1, frames):
        shake[t] = 0.7 * shake[t - 1] + rng.normal(0.0, camera.shake, 2)
    path = []
    for t in range(frames):
        u = t / max(1, frames - 1)
        ease = u * u * (3 - 2 * u)
        centre = start + (end - start) * ease
        path.append((float(centre[0]), float(centre[1]), float(zoom_from + (zoom_to - zoom_from) * ease),
                     float(shake[t, 0]), float(shake[t, 1])))
    return path


def view(photo: np.ndarray, size: tuple[int, int], margin: int, step: tuple[float, ...]) -> np.ndarray:
    """The camera's frame (plus ``margin`` px of context on every side) for one path step."""
    import cv2

    w, h = size
    ph, pw = photo.shape[:2]
    dx, dy, zoom, sx, sy = step
    # base view: the largest frame-shaped window that leaves room for the pan and a zoom-out
    reach = 1.0 + 2 * max(abs(dx), abs(dy)) + 0.5
    base = min(pw / (w * reach), ph / (h * reach))
    scale = base / zoom  # photo pixels per frame pixel
    cx = pw / 2 + dx * w * scale + sx * scale
    cy = ph / 2 + dy * h * scale + sy * scale
    # frame pixel (u, v) of the enlarged frame looks at photo (cx + (u - cu) * scale, ...)
    cu, cv = (w + 2 * margin - 1) / 2, (h + 2 * margin - 1) / 2
    matrix = np.array([[scale, 0, cx - cu * scale], [0, scale, cy - cv * scale]], dtype=np.float64)
    flags = (cv2.INTER_AREA if scale > 1.5 else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(photo, matrix, (w + 2 * margin, h + 2 * margin), flags=flags,
                          borderMode=cv2.BORDER_REFLECT101)


def make_clip(photo: np.ndarray, degrader: Degrader, settings: ClipSettings, clip_seed: int):
    """(night frames, gt frames, record) for one clip, frames as H x W x 3 float32."""
    rng = np.random.default_rng(sample_seed(clip_seed, 0))
    path = camera_path(rng, settings.frames, settings.camera)
    base = degrader.sample_params(sample_seed(clip_seed, 1))  # darkening, noise model, gt factor
    margin = degrader.margin
    w, h = settings.size
    night, gt, per_frame = [], [], []
    for t, step in enumerate(path):
        own = degrader.sample_params(sample_seed(clip_seed, 2, t))
        params = {"seed": own["seed"], "darken": dict(base["darken"]), "blur": own["blur"],
                  "noise": {**base["noise"], "noise_seed": own["noise"]["noise_seed"]}, "gt": base["gt"]}
        sample = degrader.apply(view(photo, settings.size, margin, step), params, roi=(margin, margin, h, w))
        base["darken"]["curve_r"] = sample.params["darken"]["curve_r"]  # fitted on frame 0, then fixed
        if "levels" in sample.params["noise"]:
            base["noise"]["levels"] = sample.params["noise"]["levels"]
        night.append(sample.night)
        gt.append(sample.gt)
        per_frame.append({"camera": dict(zip(("dx", "dy", "zoom", "shake_x", "shake_y"), step)),
                          "blur": sample.params["blur"], "noise_seed": params["noise"]["noise_seed"]})
    record = {"darken": base["darken"], "noise": {k: v for k, v in base["noise"].items() if k != "noise_seed"},
              "gt": base["gt"], "frames": per_frame}
    return night, gt, record


def write_clip(path: Path, frames: list[np.ndarray], settings: ClipSettings) -> None:
    from ..video.io import EncodeSettings, VideoInfo, container_format, encode_video

    h, w = frames[0].shape[:2]
    tb = Fraction(1, settings.fps)
    info = VideoInfo(path, w, h, len(frames), tb, Fraction(settings.fps), 0, ())
    encode_video(path, ((t, to_uint(f, 8)) for t, f in enumerate(frames)), info,
                 EncodeSettings(settings.codec, settings.crf), container_format(path.suffix))


def synthesize_clips(sharp_dir: str | Path, out_dir: str | Path, *, clips: int,
                     settings: ClipSettings | None = None, progress: bool = True) -> dict[str, int]:
    """Write ``clips`` night/gt clip pairs; returns counts made and skipped (a re-run resumes)."""
    from ..video.io import CODECS, EncodeSettings

    st = settings or ClipSettings()
    EncodeSettings(st.codec, st.crf).validate()
    st.config.validate()
    sharp_dir, out_dir = Path(sharp_dir), Path(out_dir)
    if clips < 1 or st.frames < 2 or min(st.size) < 8 or st.fps < 1:
        raise VQCNIRError("a video needs at least 1 clip of 2 frames, 8x8 pixels or more, at 1 fps or more")
    photos = [p.relative_to(sharp_dir).as_posix() for p in images_under(sharp_dir)]
    if not photos:
        raise VQCNIRError(f"no images in the sharp-photo folder {sharp_dir}")
    _check_settings(out_dir, st.to_json(photos), record="synth_video.json")
    suffix = ".mkv" if CODECS[st.codec][2] else ".mp4"
    degrader = Degrader(st.config)
    made = skipped = 0
    for i in tqdm(range(clips), desc="synth clips", unit="clip", disable=not progress):
        name = f"clip_{i:04d}"
        record_path = out_dir / "params" / f"{name}.json"
        if record_path.exists():
            skipped += 1
            continue
        clip_seed = sample_seed(st.seed, 2, i)
        photo_rel = photos[int(np.random.default_rng(clip_seed).integers(0, len(photos)))]
        night, gt, record = make_clip(read_rgb(sharp_dir / photo_rel), degrader, st, clip_seed)
        write_clip(out_dir / "night" / f"{name}{suffix}", night, st)
        write_clip(out_dir / "gt" / f"{name}{suffix}", gt, st)
        write_text(record_path, json.dumps({"name": name, "photo": photo_rel, "seed": clip_seed,
                                                   **record}, indent=1))
        made += 1
    return {"made": made, "skipped": skipped}
