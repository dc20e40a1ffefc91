"""Frame-by-frame vs temporal restoration on synthetic clips: the quality table of docs/video.md.

    vqcnir synth --video PHOTOS -o clips --pairs 4 --frames-per-video 24 --size 320x180 \
        --config benchmarks/video_clips.yaml
    python benchmarks/video_temporal.py clips work [--weights NAME|PATH] [--variants]

Restores every night clip frame by frame (`vqcnir restore --no-temporal`) and with the temporal
option on (its default), both lossless (FFV1), into WORK (resumable: a re-run reuses what is
there), then scores them and the night input against the ground truth with the video metrics
of `vqcnir evaluate`. ``--variants`` also runs variants of the stabiliser on the frame-by-frame
frames (no restoring needed: the stabiliser only sees the night frame and the restored one),
which is how its design was chosen. Prints a Markdown table (means over all clips).
"""

from __future__ import annotations

import argparse
import dataclasses
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from vqcnir.cli import main as vqcnir_main
from vqcnir.imagefiles import to_uint
from vqcnir.metrics.video import evaluate_video
from vqcnir.video.io import EncodeSettings, VideoInfo, encode_video, read_frames
from vqcnir.video.temporal import Stabilizer, TemporalSettings

COLUMNS = ("psnr", "ssim", "warp_error", "flicker")


def restore(night_dir: Path, out: Path, weights: str | None, temporal: bool) -> None:
    args = ["restore", str(night_dir), "-o", str(out), "--video-codec", "ffv1"]
    args += ["--weights", weights] if weights else []
    args += [] if temporal else ["--no-temporal"]
    if vqcnir_main(args) != 0:
        raise SystemExit(f"vqcnir {' '.join(args)} failed")


def stabilise_offline(night: Path, restored: Path, out: Path, settings: TemporalSettings) -> None:
    if out.exists():
        return
    stabilizer = Stabilizer(settings)
    frames = []
    for n, r in zip(read_frames(night), read_frames(restored), strict=True):
        y = stabilizer(n.rgb.astype(np.float32) / 255, r.rgb.astype(np.float32) / 255)
        frames.append((r.pts, to_uint(y, 8)))
    h, w = frames[0][1].shape[:2]
    info = VideoInfo(out, w, h, len(frames), Fraction(1, 1000), Fraction(30), 0, ())
    encode_video(out, frames, info, EncodeSettings("ffv1"), "matroska")


def score(folder: Path, gt_dir: Path, names: list[str]) -> dict[str, float]:
    per_clip = [evaluate_video(folder / name, gt_dir / name, progress=False).means for name in names]
    return {k: float(np.mean([m[k] for m in per_clip])) for k in per_clip[0]}


def variants() -> dict[str, TemporalSettings]:
    default = TemporalSettings()
    return {
        "tone tracking only": dataclasses.replace(default, blend=0.0),
        "tone tracking, no dead zone": dataclasses.replace(default, blend=0.0, tone_dead_zone=0.0),
        "blending only": dataclasses.replace(default, tone_memory=0.0),
        "flow on the restored frames": dataclasses.replace(default, flow_source="restored"),
        "guide not averaged along the flow": dataclasses.replace(default, guide_memory=0.0),
        "guide as is (no detail gain)": dataclasses.replace(default, guide_detail=0.0),
        "no camera-motion snap": dataclasses.replace(default, global_tolerance=0.0),
        "no flow-edge gate": dataclasses.replace(default, shear_tolerance=float("inf")),
        "disagreement not averaged": dataclasses.replace(default, drift_memory=0.0),
        "blend 0.98": dataclasses.replace(default, blend=0.98),
        "tolerance 0.25, not averaged": dataclasses.replace(default, tolerance=0.25, drift_memory=0.0),
        "flow preset medium": dataclasses.replace(default, flow_preset="medium"),
        "default, offline": default,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", type=Path, help="output of vqcnir synth --video")
    parser.add_argument("work", type=Path, help="folder for the restored clips")
    parser.add_argument("--weights", default=None, help="model (default: the bundled one)")
    parser.add_argument("--variants", action="store_true", help="also score stabiliser variants offline")
    args = parser.parse_args()
    torch.set_num_threads(1)

    names = sorted(p.name for p in (args.clips / "night").glob("*.mkv"))
    gt = args.clips / "gt"
    rows = {"night input": score(args.clips / "night", gt, names)}
    restore(args.clips / "night", args.work / "frame_by_frame", args.weights, temporal=False)
    rows["frame by frame"] = score(args.work / "frame_by_frame", gt, names)
    restore(args.clips / "night", args.work / "temporal", args.weights, temporal=True)
    rows["temporal (default)"] = score(args.work / "temporal", gt, names)
    if args.variants:
        for label, settings in variants().items():
            folder = args.work / ("variant " + label)
            folder.mkdir(parents=True, exist_ok=True)
            for name in names:
                stabilise_offline(args.clips / "night" / name, args.work / "frame_by_frame" / name,
                                  folder / name, settings)
            rows[label] = score(folder, gt, names)

    ref = rows["frame by frame"]
    print(f"{len(names)} clips x {sum(1 for _ in read_frames(args.clips / 'night' / names[0]))} frames")
    print("| method | PSNR | SSIM | warp error | flicker | warp error vs frame by frame | flicker vs frame by frame |")
    print("|:---|---:|---:|---:|---:|---:|---:|")
    for label, m in rows.items():
        print(f"| {label} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['warp_error']:.3f} | {m['flicker']:.3f} | "
              f"{m['warp_error'] / ref['warp_error']:.2f}x | {m['flicker'] / ref['flicker']:.2f}x |")
    print(f"| ground truth | | | {ref['warp_error_gt']:.3f} | {ref['flicker_gt']:.3f} | "
          f"{ref['warp_error_gt'] / ref['warp_error']:.2f}x | {ref['flicker_gt'] / ref['flicker']:.2f}x |")


if __name__ == "__main__":
    main()
