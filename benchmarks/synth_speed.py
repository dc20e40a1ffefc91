"""Synthesis throughput: pairs per second for on-the-fly 256² crops and for 1120×640 frames.

    python benchmarks/synth_speed.py [--photos PHOTO_DIR] [--workers 2]

PHOTO_DIR: a `vqcnir data photos` folder (default: scikit-image's photos, upscaled where a
1120×640 frame needs it). Prints a table; the target is ≥ 20 pairs/s for 256² on 2 cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from vqcnir.data import Degrader, SynthDataset
from vqcnir.data.synth import SynthSettings, synthesize


def skimage_photos(folder: Path) -> Path:
    import skimage.data as sk

    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        img = Image.fromarray(getattr(sk, name)())
        scale = max(1.0, 1200 / img.width, 700 / img.height)  # big enough for a 1120×640 frame
        img = img.resize((round(img.width * scale), round(img.height * scale)),
                         Image.Resampling.BICUBIC)
        img.save(folder / f"{name}.png")
    return folder


def on_the_fly(photos: Path, workers: int, n: int) -> float:
    ds = SynthDataset(photos, crop=256, length=n + 64, seed=0)
    loader = DataLoader(ds, batch_size=8, num_workers=workers, persistent_workers=False)
    it = iter(loader)
    for _ in range(8):  # warm-up: worker start, first photo decodes
        next(it)
    t = time.perf_counter()
    count = 0
    for batch in it:
        count += batch["night"].shape[0]
    return count / (time.perf_counter() - t)


_FRAME: dict = {}


def _degrade(seed: int) -> int:
    frame, degrader = _FRAME["frame"], _FRAME["degrader"]
    degrader(frame, seed)
    return seed


def _init(frame: np.ndarray) -> None:
    _FRAME.update(frame=frame, degrader=Degrader())


def frames_in_memory(photos: Path, workers: int, n: int) -> float:
    from vqcnir.imagefiles import images_under, read_rgb

    img = read_rgb(images_under(photos)[0])
    frame = np.ascontiguousarray(img[:640, :1120])
    with mp.get_context().Pool(workers, initializer=_init, initargs=(frame,)) as pool:
        list(pool.imap_unordered(_degrade, range(workers)))  # warm-up
        t = time.perf_counter()
        list(pool.imap_unordered(_degrade, range(n)))
        return n / (time.perf_counter() - t)


def frames_to_disk(photos: Path, workers: int, n: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        synthesize(photos, Path(out) / "ds", pairs=n, settings=SynthSettings(seed=0),
                   workers=workers, progress=False)
        return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, help="folder of sharp photos")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--crops", type=int, default=320, help="256² pairs to time")
    ap.add_argument("--frames", type=int, default=24, help="1120×640 pairs to time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = args.photos or skimage_photos(Path(tmp))
        rows = [
            ("256² crops, on the fly (SynthDataset + DataLoader)", on_the_fly(photos, args.workers, args.crops)),
            ("1120×640 frames, degradation only (in memory)", frames_in_memory(photos, args.workers, args.frames)),
            ("1120×640 frames, `synth` end to end (read, write PNGs)", frames_to_disk(photos, args.workers, args.frames)),
        ]
    print(f"\nworkers: {args.workers}; photos: {'given folder' if args.photos else 'scikit-image'}\n")
    print(f"| {'case':<58} | pairs/s |\n|{'-' * 60}|---------|")
    for name, rate in rows:
        print(f"| {name:<58} | {rate:7.1f} |")


if __name__ == "__main__":
    main()
