"""`vqcnir synth`: write a night+blur dataset in LOL-Blur's layout from a folder of sharp photos.

OUT/synth.json                         settings (seed, size, config, photo list): resume guard
OUT/{train,test}/low_blur_noise/VVVV/FFFF.png    the input
OUT/{train,test}/high_sharp_scaled/VVVV/FFFF.png the ground truth
OUT/{train,test}/low_blur, low_sharp, high_sharp_original   (with all_folders=True)
OUT/{train,test}/params/VVVV/FFFF.json          every drawn parameter of one sample
OUT/{train,test}/synth_params.json              all of them in one file, written at the end

Sample i of a split depends only on (seed, split, i): the result is the same whatever the
number of workers, and a sample whose params file exists is finished (it is written last,
atomically), so an interrupted run picks up where it stopped.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import VQCNIRError
from ..imagefiles import (MAX_MEGAPIXELS_ENV, images_under, read_rgb, remove_stale_temporaries,
                          resolve_max_megapixels, write_image, write_text)
from .degrade import DegradeConfig, Degrader, sample_seed

FORMAT = 1
SPLIT_IDS = {"train": 0, "test": 1}


@dataclass
class SynthSettings:
    seed: int = 0
    size: tuple[int, int] | None = (1120, 640)   # (width, height); None: the whole photo
    frames_per_video: int = 60
    min_scale: float = 0.5                         # photos are shrunk by U(min_scale, 1) first
    test_photo_fraction: float = 0.15              # photos held out for the test split
    all_folders: bool = False
    config: DegradeConfig = field(default_factory=DegradeConfig)

    def to_json(self, photos: list[str]) -> dict[str, Any]:
        return {"format": FORMAT, "seed": self.seed,
                "size": list(self.size) if self.size else None,
                "frames_per_video": self.frames_per_video, "min_scale": self.min_scale,
                "test_photo_fraction": self.test_photo_fraction,
                "all_folders": self.all_folders, "config": self.config.to_dict(),
                "photos": photos}


def split_photos(photos: list[str], fraction: float, seed: int) -> dict[str, list[str]]:
    """Hold out whole photos for the test split, so no test scene is ever seen in training."""
    if fraction <= 0 or len(photos) < 2:
        return {"train": list(photos), "test": []}
    n_test = min(len(photos) - 1, max(1, round(fraction * len(photos))))
    order = np.random.default_rng([seed, 7]).permutation(len(photos))
    test = {photos[i] for i in order[:n_test]}
    return {"train": [p for p in photos if p not in test], "test": sorted(test)}


def sample_name(index: int, frames_per_video: int) -> str:
    return f"{index // frames_per_video:04d}/{index % frames_per_video:04d}"


# ----------------------------------------------------------------------------- one sample
_STATE: dict[str, Any] = {}


def _init_worker(sharp_dir: str, out_dir: str, settings: SynthSettings) -> None:
    _STATE.update(sharp_dir=Path(sharp_dir), out_dir=Path(out_dir), settings=settings,
                  degrader=Degrader(settings.config))


@lru_cache(maxsize=4)
def _load_photo(path: str) -> np.ndarray:
    return read_rgb(path)


def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 0.999:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Float planes: no 8-bit rounding before the degradation.
    planes = [Image.fromarray(np.ascontiguousarray(img[..., c])).resize(
        size, Image.Resampling.LANCZOS) for c in range(3)]
    return np.clip(np.stack([np.asarray(p) for p in planes], axis=2), 0.0, 1.0)


def make_sample(split: str, index: int, photos: list[str]) -> dict[str, Any]:
    """Build, write and record sample `index` of `split` (runs in a worker)."""
    st: SynthSettings = _STATE["settings"]
    degrader: Degrader = _STATE["degrader"]
    out = _STATE["out_dir"] / split
    name = sample_name(index, st.frames_per_video)
    rng = np.random.default_rng(sample_seed(st.seed, SPLIT_IDS[split], index, 0))
    photo_rel = photos[int(rng.integers(0, len(photos)))]
    photo = _load_photo(str(_STATE["sharp_dir"] / photo_rel))
    h, w = photo.shape[:2]
    if st.size is None:
        scale = 1.0
        ch, cw = h, w
    else:
        # Shrink at random (more scene per frame, sharper detail), never below the frame size.
        need = max(st.size[1] / h, st.size[0] / w)
        scale = max(need, st.min_scale + (1.0 - st.min_scale) * float(rng.random()))
        scale = min(1.0, scale)
        photo = _resize(photo, scale)
        h, w = photo.shape[:2]
        ch, cw = min(st.size[1], h), min(st.size[0], w)
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    m = degrader.margin
    y0, x0 = max(0, top - m), max(0, left - m)
    y1, x1 = min(h, top + ch + m), min(w, left + cw + m)
    sample = degrader(photo[y0:y1, x0:x1], sample_seed(st.seed, SPLIT_IDS[split], index, 1),
                      roi=(top - y0, left - x0, ch, cw), keep_stages=st.all_folders)

    # zlib's fastest level: synth writes thousands of PNGs, and level 1 is ~3x quicker than 6
    images = {"low_blur_noise": sample.night, "high_sharp_scaled": sample.gt, **sample.stages}
    for folder, img in images.items():
        write_image(out / folder / f"{name}.png", img, compress_level=1)
    record = {"name": name, "photo": photo_rel, "photo_scale": scale,
              "crop": [top, left, ch, cw], **sample.params}
    write_text(out / "params" / f"{name}.json", json.dumps(record, indent=1))
    return record


# ----------------------------------------------------------------------------- the run
def _check_settings(out_dir: Path, wanted: dict[str, Any], record: str = "synth.json") -> None:
    wanted = json.loads(json.dumps(wanted))  # compare as read back (tuples become lists)
    path = out_dir / record
    if path.exists():
        try:
            have = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise VQCNIRError(f"cannot read {path}: {exc}") from None
        diff = sorted(k for k in set(have) | set(wanted) if have.get(k) != wanted.get(k))
        if diff:
            raise VQCNIRError(f"{out_dir} holds a dataset made with other settings ({', '.join(diff)}"
                              "); resume with the same ones or choose a new output folder")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise VQCNIRError(f"{out_dir} is not empty and is not a synth output; "
                          "choose a new output folder")
    else:
        write_text(path, json.dumps(wanted, indent=1))


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def synthesize(sharp_dir: str | os.PathLike, out_dir: str | os.PathLike, *, pairs: int,
               test_pairs: int = 0, settings: SynthSettings | None = None,
               workers: int | None = None, progress: bool = True) -> dict[str, int]:
    """Write `pairs` train and `test_pairs` test samples; returns the counts made and skipped,
    and how many of those made are smaller than ``settings.size`` (their photos were)."""
    st = settings or SynthSettings()
    st.config.validate()
    sharp_dir, out_dir = Path(sharp_dir), Path(out_dir)
    if pairs < 0 or test_pairs < 0:
        raise VQCNIRError("the number of pairs cannot be negative")
    if st.frames_per_video < 1:
        raise VQCNIRError("frames per video must be at least 1")
    if st.size is not None and min(st.size) < 1:
        raise VQCNIRError(f"bad frame size {st.size}")
    if st.size is not None and st.size[0] * st.size[1] > resolve_max_megapixels() * 1e6:
        raise VQCNIRError(f"--size {st.size[0]}x{st.size[1]} is larger than any photo synth reads "
                          f"({resolve_max_megapixels():g} MP at most, see ${MAX_MEGAPIXELS_ENV})")
    if not 0.0 < st.min_scale <= 1.0:
        raise VQCNIRError("min_scale must be in (0, 1]")
    photos = [p.relative_to(sharp_dir).as_posix() for p in images_under(sharp_dir)]
    if not photos:
        raise VQCNIRError(f"no images in the sharp-photo folder {sharp_dir}")
    if out_dir.resolve() == sharp_dir.resolve() or sharp_dir.resolve() in out_dir.resolve().parents:
        raise VQCNIRError("the output folder must not be inside the sharp-photo folder")
    by_split = split_photos(photos, st.test_photo_fraction, st.seed)
    if test_pairs and not by_split["test"]:
        raise VQCNIRError("test pairs need held-out photos: give at least 2 photos and a "
                          "test photo fraction above 0")
    _check_settings(out_dir, st.to_json(photos))
    remove_stale_temporaries(out_dir)  # left by an interrupted run's writes

    tasks = []
    skipped = 0
    for split, n in (("train", pairs), ("test", test_pairs)):
        for i in range(n):
            if (out_dir / split / "params" / f"{sample_name(i, st.frames_per_video)}.json").exists():
                skipped += 1
            else:
                tasks.append((split, i, by_split[split]))

    workers = min(workers or default_workers(), max(1, len(tasks)))
    records = []
    bar = tqdm(total=len(tasks), desc="synth", unit="pair", disable=None if progress else True,
               dynamic_ncols=True)
    try:
        if workers <= 1:
            _init_worker(str(sharp_dir), str(out_dir), st)
            for task in tasks:
                records.append(make_sample(*task))
                bar.update()
        else:
            with mp.get_context().Pool(workers, initializer=_init_worker,
                                       initargs=(str(sharp_dir), str(out_dir), st)) as pool:
                for record in pool.imap_unordered(_run_task, tasks, chunksize=1):
                    records.append(record)
                    bar.update()
    finally:
        bar.close()
    for split, n in (("train", pairs), ("test", test_pairs)):
        if n:
            _merge_records(out_dir / split, st)
    # a photo smaller than the frame size gives a frame of the photo's size
    smaller = sum(st.size is not None and tuple(r["crop"][2:]) != (st.size[1], st.size[0]) for r in records)
    return {"made": len(tasks), "skipped": skipped, "smaller": smaller}


def _run_task(task: tuple[str, int, list[str]]) -> dict[str, Any]:
    return make_sample(*task)


def _merge_records(split_dir: Path, st: SynthSettings) -> None:
    records = [json.loads(p.read_text()) for p in sorted((split_dir / "params").rglob("*.json"))]
    records.sort(key=lambda r: r["name"])
    doc = {"seed": st.seed, "config": st.config.to_dict(), "samples": records}
    write_text(split_dir / "synth_params.json", json.dumps(doc, indent=1))
