"""Score a restored video (a video file or a folder of frames) frame by frame and over time.

Frames are streamed: only the current and the previous frame of each video are in memory. Each
row of the result is one frame (its per-frame metrics, and the temporal values of the pair that
ends at it); the temporal metrics are also computed on the ground truth (``<name>_gt``), so how
much flicker there is to remove is visible next to how much is left.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from ..errors import VQCNIRError
from ..imagefiles import list_images, read_rgb, to_tensor
from . import registry, temporal
from .evaluate import Evaluation, _mean, _package_versions, build_scorers
from .gt_mean import match_gt_mean

DEFAULT = ("psnr", "ssim", "warp_error", "flicker")


def is_video_request(restored: Path | None, gt: Path | None, names: list[str] | None) -> bool:
    """Whether ``vqcnir evaluate`` should score a video: a video file given, or a temporal metric asked."""
    from ..video import is_video_path

    files = [p for p in (restored, gt) if p is not None and not Path(p).is_dir()]
    return any(is_video_path(p) for p in files) or any(n in temporal.TEMPORAL for n in names or ())


def read_sequence(path: Path, role: str) -> Iterator[np.ndarray]:
    """Frames as H x W x 3 float32 in [0, 1]: decoded from a video file, or the images of a folder
    in order of their relative paths."""
    path = Path(path)
    if path.is_dir():
        files = list_images([path], recursive=True)
        if not files:
            raise VQCNIRError(f"--{role} {path}: no frames found")
        for file, _ in files:
            yield read_rgb(file)
        return
    if not path.exists():
        raise VQCNIRError(f"--{role} {path}: no such file or folder")
    from ..video.io import read_frames

    for frame in read_frames(path):
        yield frame.rgb.astype(np.float32) / 255.0


def resolve_video_metrics(names: list[str] | None, has_gt: bool) -> list[str]:
    """The metrics to compute: per-frame ones need ground truth; each temporal one asked for is
    also computed on the ground truth when there is one."""
    names = list(names or (DEFAULT if has_gt else temporal.TEMPORAL))
    out: list[str] = []
    for name in names:
        if name not in registry.SPECS:
            raise VQCNIRError(f"unknown metric {name!r}; known: {', '.join(registry.SPECS)}")
        if name.endswith("_gt") or (registry.SPECS[name].reference and not has_gt):
            raise VQCNIRError(f"{name} needs --gt (a video or a frame folder)" if not name.endswith("_gt")
                              else f"{name} is added by itself when --gt is given; ask for {name[:-3]}")
        out.append(name)
        if name in temporal.TEMPORAL and has_gt:
            out.append(f"{name}_gt")
    return list(dict.fromkeys(out))


def evaluate_video(restored: Path, gt: Path | None = None, metrics: list[str] | None = None, *,
                   crop: int = 0, device: str = "cpu", progress: bool = True, gt_mean: bool = False) -> Evaluation:
    names = resolve_video_metrics(metrics, gt is not None)
    if crop < 0:
        raise VQCNIRError(f"--crop must be >= 0, got {crop}")
    frame_metrics = [n for n in names if n not in temporal.TEMPORAL and not n.endswith("_gt")]
    temporal_metrics = [n for n in names if n in temporal.TEMPORAL]
    scorers, unavailable = build_scorers(frame_metrics, device)
    rows: list[dict] = []
    gt_frames = read_sequence(gt, "gt") if gt is not None else None
    previous = None  # (restored, gt) of the frame before
    for index, r in enumerate(tqdm(read_sequence(restored, "restored"), desc="evaluate", unit="frame",
                                   disable=not progress)):
        g = next(gt_frames, None) if gt_frames is not None else None
        if gt_frames is not None and g is None:
            raise VQCNIRError(f"--restored has more frames than --gt ({index} in the ground truth)")
        r, g = _crop(r, crop, index), (_crop(g, crop, index) if g is not None else None)
        if g is not None and r.shape != g.shape:
            raise VQCNIRError(f"frame {index}: restored is {r.shape[1]}x{r.shape[0]} but gt is "
                              f"{g.shape[1]}x{g.shape[0]} pixels")
        rt = to_tensor(r)
        if gt_mean:
            rt = match_gt_mean(rt, to_tensor(g))
            r = rt[0].permute(1, 2, 0).numpy()
        row: dict = {"image": f"frame {index:05d}"}
        for name, scorer in scorers.items():
            row[name] = float(scorer(rt.to(device), to_tensor(g).to(device))[0])
        for name in temporal_metrics:  # the first frame ends no pair
            row[name] = float("nan")
            if g is not None:
                row[f"{name}_gt"] = float("nan")
        if previous is not None and temporal_metrics:
            source_before, source_now = (previous[1], g) if g is not None else (previous[0], r)
            warp = temporal.pair_warp(source_before, source_now)
            row.update({k: v for k, v in temporal.pair_values(previous[0], r, warp).items() if k in temporal_metrics})
            if g is not None:
                gt_values = temporal.pair_values(previous[1], g, warp)
                row.update({f"{k}_gt": v for k, v in gt_values.items() if k in temporal_metrics})
        rows.append(row)
        previous = (r, g)
    if gt_frames is not None and next(gt_frames, None) is not None:
        raise VQCNIRError(f"--gt has more frames than --restored ({len(rows)})")
    if not rows:
        raise VQCNIRError(f"--restored {restored}: no frames")
    computed = [n for n in names if n in scorers or n in temporal_metrics or n[:-3] in temporal_metrics]
    means = {n: _nanmean([row[n] for row in rows]) for n in computed}
    protocol = {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "restored": str(restored), "gt": str(gt) if gt is not None else None,
        "pairing": "frame order (video decode order, or frame files sorted by relative path)",
        "images": len(rows), "frames": len(rows), "crop": crop, "gt_mean": bool(gt_mean), "device": str(device),
        "source": {"kind": "video"},
        "mean": "per-frame metrics: mean over frames; temporal metrics: mean over consecutive pairs",
        "packages": _package_versions(),
        "metrics": {n: {"reference": registry.SPECS[n].reference, "higher_is_better": registry.SPECS[n].higher_is_better,
                        **registry.SPECS[n].protocol} for n in names},
        "unavailable": unavailable,
    }
    return Evaluation(computed, rows, means, protocol, unavailable)


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not np.isnan(v)]
    return _mean(kept)


def _crop(frame: np.ndarray, crop: int, index: int) -> np.ndarray:
    if not crop:
        return frame
    if min(frame.shape[:2]) <= 2 * crop:
        raise VQCNIRError(f"frame {index}: --crop {crop} leaves nothing of a {frame.shape[1]}x{frame.shape[0]} frame")
    return frame[crop:-crop, crop:-crop]

