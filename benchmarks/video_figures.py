"""The sample clip's pictures in the docs: docs/video_demo.gif (night | frame by frame | temporal,
every frame) and docs/video_strip.jpg (rows night, frame by frame, temporal, ground truth at
frames 0, 8, 16 and 23), from the outputs of the commands in docs/video.md "The sample clip":

    python benchmarks/video_figures.py demo/fbf/clip_0000.mkv demo/temporal/clip_0000.mkv docs/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from vqcnir.video.io import read_frames

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "video"
GAP = 4  # px of white between panels
STRIP_FRAMES = (0, 8, 16, 23)


def frames(path: Path) -> list[np.ndarray]:
    return [f.rgb for f in read_frames(path)]


def join(images: list[np.ndarray], axis: int) -> np.ndarray:
    shape = list(images[0].shape)
    shape[axis] = GAP
    gap = np.full(shape, 255, np.uint8)
    parts = [p for image in images for p in (gap, image)][1:]
    return np.concatenate(parts, axis=axis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frame_by_frame", type=Path)
    parser.add_argument("temporal", type=Path)
    parser.add_argument("out", type=Path, help="folder for video_demo.gif and video_strip.jpg")
    args = parser.parse_args()
    night, gt = frames(SAMPLE / "night" / "clip_0000.mkv"), frames(SAMPLE / "gt" / "clip_0000.mkv")
    fbf, temporal = frames(args.frame_by_frame), frames(args.temporal)
    gif = [Image.fromarray(join([n, f, t], axis=1)) for n, f, t in zip(night, fbf, temporal, strict=True)]
    gif[0].save(args.out / "video_demo.gif", save_all=True, append_images=gif[1:], duration=100, loop=0)
    rows = [np.concatenate([video[i] for i in STRIP_FRAMES], axis=1) for video in (night, fbf, temporal, gt)]
    Image.fromarray(join(rows, axis=0)).save(args.out / "video_strip.jpg", quality=90)


if __name__ == "__main__":
    main()
