"""Video restore speed with the bundled model: frames per second end to end, and what the
temporal option costs.

    python benchmarks/video_speed.py                         # 640x360 and 1280x720, 4 frames each
    python benchmarks/video_speed.py --sizes 640x360 --frames 8 --threads 1

For each size a short H.264 clip is made from a bundled photo with a moving camera
(`vqcnir.data.video_synth.view`), then restored by `vqcnir.video.restore.restore_video` as
`vqcnir restore` does it (decode, engine, temporal option, encode, join), once frame by frame and
once with the temporal option. The stabiliser alone is also timed on the restored frames: the
temporal option's overhead is its time over the whole per-frame time, which is steadier on a
shared machine than the difference of two end-to-end runs. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from vqcnir.allocator import keep_freed_memory
from vqcnir.data.video_synth import view
from vqcnir.engine import RestoreOptions, prepare_for_inference, restore_tensor
from vqcnir.imagefiles import read_rgb, to_uint
from vqcnir.video.io import EncodeSettings, VideoInfo, encode_video, read_frames
from vqcnir.video.restore import VideoOptions, restore_video
from vqcnir.video.temporal import Stabilizer, TemporalSettings
from vqcnir.weights import load_network
from vqcnir.zoo import resolve_weights

PHOTO = Path(__file__).parent.parent / "samples" / "gt" / "rocket.png"


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    photo = read_rgb(PHOTO)
    steps = [(0.02 * t, 0.0, 1.0 + 0.01 * t, 0.0, 0.0) for t in range(frames)]
    dark = [to_uint(view(photo, (width, height), 0, s) * 0.15, 8) for s in steps]
    info = VideoInfo(path, width, height, frames, Fraction(1, 30), Fraction(30), 0, ())
    encode_video(path, enumerate(dark), info, EncodeSettings("h264"), "mp4")


def timed_restore(model, clip: Path, out: Path, temporal: bool) -> float:
    options = VideoOptions(temporal=TemporalSettings() if temporal else None)
    start = time.perf_counter()
    restore_video(model, clip, out, RestoreOptions(tile=0), options)
    return time.perf_counter() - start


def stabiliser_seconds(clip: Path, restored: Path) -> float:
    pairs = [(n.rgb.astype(np.float32) / 255, r.rgb.astype(np.float32) / 255)
             for n, r in zip(read_frames(clip), read_frames(restored), strict=True)]
    stabilizer = Stabilizer()
    start = time.perf_counter()
    for night, rgb in pairs:
        stabilizer(night, rgb)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="640x360,1280x720")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--weights", default=None, help="default: the bundled model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as `vqcnir restore` does on the CPU
    model = prepare_for_inference(load_network(resolve_weights(args.weights)), torch.device("cpu"))
    print(f"model {args.weights or 'default (bundled)'}, CPU, {args.threads} threads, {args.frames} frames per run, "
          "fp32, no tiling")
    print("| frames | frame by frame (fps) | temporal (fps) | stabiliser (ms/frame) | temporal overhead |")
    print("|:---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            clip = tmp / f"{size}.mp4"
            make_clip(clip, w, h, args.frames)
            restore_tensor(model, torch.rand(1, 3, h, w), RestoreOptions(tile=0))  # warm-up
            plain = timed_restore(model, clip, tmp / f"{size}_plain.mp4", temporal=False)
            steady = timed_restore(model, clip, tmp / f"{size}_temporal.mp4", temporal=True)
            stab = stabiliser_seconds(clip, tmp / f"{size}_plain.mp4")
            print(f"| {w}x{h} | {args.frames / plain:.3f} | {args.frames / steady:.3f} | "
                  f"{1000 * stab / args.frames:.0f} | {100 * stab / plain:.1f} % |", flush=True)


if __name__ == "__main__":
    main()
