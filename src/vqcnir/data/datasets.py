"""Torch datasets for night/gt pairs: LOL-Blur's layout, any paired folders, unpaired folders,
and pairs synthesised on the fly from sharp photos.

Items are dicts of C×H×W float tensors in [0, 1]: "night" (input), "gt" (target, when paired),
plus "name" (relative path, the pairing key) and "path" (the night file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import VQCNIRError
from ..imagefiles import images_under, read_rgb
from .degrade import DegradeConfig, Degrader

LOLBLUR_FOLDERS = ("low_blur", "low_blur_noise", "low_sharp", "high_sharp_scaled",
                   "high_sharp_original")


# ----------------------------------------------------------------------------- helpers
def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def _pair_key(rel: str) -> str:
    """Pairs match by relative path without extension (a .png input may pair with a .jpg)."""
    return os.path.splitext(rel)[0]


def split_keys(keys: Sequence[str], subset: str, val_fraction: float, seed: int) -> list[str]:
    """A fixed, seeded train/val split. Items in sub-folders are split by sub-folder (a LOL-Blur
    video never straddles train and val); flat folders are split by file."""
    if subset == "all":
        return list(keys)
    if subset not in ("train", "val"):
        raise VQCNIRError(f"subset must be 'all', 'train' or 'val', not {subset!r}")
    if not 0.0 < val_fraction < 1.0:
        raise VQCNIRError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    groups = sorted({k.split("/")[0] if "/" in k else k for k in keys})
    if len(groups) < 2:  # one video only: fall back to splitting its frames
        groups = sorted(keys)
        group_of = {k: k for k in keys}
    else:
        group_of = {k: (k.split("/")[0] if "/" in k else k) for k in keys}
    if len(groups) < 2:
        raise VQCNIRError("cannot split a single image into train and val")
    n_val = min(len(groups) - 1, max(1, round(val_fraction * len(groups))))
    order = np.random.default_rng(seed).permutation(len(groups))
    val = {groups[i] for i in order[:n_val]}
    return [k for k in keys if (group_of[k] in val) == (subset == "val")]


def paired_augment(arrays: Sequence[np.ndarray], rng: np.random.Generator, *,
                   crop: int | tuple[int, int] | None = None, flip: bool = True,
                   rotate: bool = True, names: Sequence[str] = ()) -> list[np.ndarray]:
    """One random crop, flip and 90° rotation, applied identically to every array."""
    h, w = arrays[0].shape[:2]
    for a, name in zip(arrays[1:], list(names)[1:] or [""] * (len(arrays) - 1)):
        if a.shape[:2] != (h, w):
            raise VQCNIRError(f"pair sizes differ: {names[0] if names else 'night'} is {w}×{h}, "
                              f"{name or 'gt'} is {a.shape[1]}×{a.shape[0]}")
    out = list(arrays)
    if crop is not None:
        ch, cw = (crop, crop) if isinstance(crop, int) else crop
        if ch > h or cw > w:
            where = f" ({names[0]})" if names else ""
            raise VQCNIRError(f"crop {cw}×{ch} is larger than the image{where}, which is {w}×{h}")
        top = int(rng.integers(0, h - ch + 1))
        left = int(rng.integers(0, w - cw + 1))
        out = [a[top:top + ch, left:left + cw] for a in out]
    if flip and rng.random() < 0.5:
        out = [a[:, ::-1] for a in out]
    if flip and rng.random() < 0.5:
        out = [a[::-1] for a in out]
    if rotate:
        k = int(rng.integers(0, 4))
        if k:
            out = [np.rot90(a, k) for a in out]
    return [np.ascontiguousarray(a) for a in out]


class _Augmenting(Dataset):
    """Shared crop/flip/rotate settings and the per-item random generator.

    With `seed` set, item i of epoch e always gets the same crop (reproducible runs, whatever
    the number of loader workers); without it every call draws fresh randomness."""

    def __init__(self, crop, augment: bool, seed: int | None):
        self.crop = crop
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([int(self.seed), self.epoch, int(index)])

    def _transform(self, arrays, index, names=()):
        if self.crop is None and not self.augment:
            if len(arrays) > 1:
                return paired_augment(arrays, self._rng(index), flip=False, rotate=False,
                                      names=names)
            return list(arrays)
        return paired_augment(arrays, self._rng(index), crop=self.crop, flip=self.augment,
                              rotate=self.augment, names=names)


# ----------------------------------------------------------------------------- datasets
class PairedFolderDataset(_Augmenting):
    """Night images in one folder, ground truths in another, matched by relative path."""

    def __init__(self, night_dir: str | os.PathLike, gt_dir: str | os.PathLike, *,
                 crop: int | tuple[int, int] | None = None, augment: bool = False,
                 subset: str = "all", val_fraction: float = 0.1, split_seed: int = 0,
                 seed: int | None = None):
        super().__init__(crop, augment, seed)
        self.night_dir, self.gt_dir = Path(night_dir), Path(gt_dir)
        night = self._index(self.night_dir, "night")
        gt = self._index(self.gt_dir, "gt")
        only_night = sorted(set(night) - set(gt))
        only_gt = sorted(set(gt) - set(night))
        if only_night or only_gt:
            side, missing, other = ((self.gt_dir, only_night, night) if only_night
                                    else (self.night_dir, only_gt, gt))
            more = f" (and {len(only_night) + len(only_gt) - 1} more)" \
                if len(only_night) + len(only_gt) > 1 else ""
            raise VQCNIRError(f"unmatched pair: {other[missing[0]]} has no counterpart in "
                              f"{side}{more}")
        keys = split_keys(sorted(night), subset, val_fraction, split_seed)
        self.items = [(night[k], gt[k], k) for k in keys]

    @staticmethod
    def _index(folder: Path, what: str) -> dict[str, Path]:
        files = images_under(folder)
        if not files:
            raise VQCNIRError(f"no images in the {what} folder {folder}")
        index: dict[str, Path] = {}
        for f in files:
            key = _pair_key(f.relative_to(folder).as_posix())
            if key in index:
                raise VQCNIRError(f"two images share the name {key} in {folder}: "
                                  f"{index[key].name} and {f.name}")
            index[key] = f
        return index

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        night_path, gt_path, key = self.items[index]
        night, gt = self._transform([read_rgb(night_path), read_rgb(gt_path)], index,
                                    names=(str(night_path), str(gt_path)))
        return {"night": to_tensor(night), "gt": to_tensor(gt), "name": key,
                "path": str(night_path)}


class LOLBlurDataset(PairedFolderDataset):
    """LOL-Blur's own layout: ROOT/{train,test}/<folder>/<video>/<frame>.png.

    The input defaults to `low_blur_noise` and the target to `high_sharp_scaled`, as in the
    paper; any of LOLBLUR_FOLDERS can be chosen for either (e.g. `low_blur` for a noise-free
    ablation)."""

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 night_folder: str = "low_blur_noise", gt_folder: str = "high_sharp_scaled",
                 **kwargs):
        root = Path(root)
        for folder in (night_folder, gt_folder):
            if folder not in LOLBLUR_FOLDERS:
                raise VQCNIRError(f"{folder!r} is not a LOL-Blur folder "
                                  f"(choose from {', '.join(LOLBLUR_FOLDERS)})")
            if not (root / split / folder).is_dir():
                raise VQCNIRError(f"{root} does not look like LOL-Blur: "
                                  f"missing {split}/{folder}/")
        self.root, self.split = root, split
        super().__init__(root / split / night_folder, root / split / gt_folder, **kwargs)


class UnpairedFolderDataset(_Augmenting):
    """Night images without ground truth (Real-LOL-Blur-like sets), for no-reference scoring."""

    def __init__(self, night_dir: str | os.PathLike, *, crop=None, augment: bool = False,
                 subset: str = "all", val_fraction: float = 0.1, split_seed: int = 0,
                 seed: int | None = None):
        super().__init__(crop, augment, seed)
        self.night_dir = Path(night_dir)
        files = images_under(self.night_dir)
        if not files:
            raise VQCNIRError(f"no images in {self.night_dir}")
        by_key = {f.relative_to(self.night_dir).as_posix(): f for f in files}
        self.items = [(by_key[k], k) for k in split_keys(sorted(by_key), subset,
                                                          val_fraction, split_seed)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, key = self.items[index]
        (night,) = self._transform([read_rgb(path)], index, names=(str(path),))
        return {"night": to_tensor(night), "name": key, "path": str(path)}


class SynthDataset(_Augmenting):
    """Night+blur pairs made on the fly from a folder of sharp photos.

    Item i takes photo i mod N, a random crop (with real context around it for the blur), and
    its own degradation seed; with `seed` set the whole epoch is reproducible. `quantize`
    rounds the night image to 8 bits, as a saved LOL-Blur frame would be."""

    def __init__(self, sharp: str | os.PathLike | Sequence[str | os.PathLike], *, crop: int = 256,
                 config: DegradeConfig | None = None, length: int | None = None,
                 augment: bool = True, quantize: bool = True, subset: str = "all",
                 val_fraction: float = 0.1, split_seed: int = 0, seed: int | None = None,
                 cache_photos: bool = True, return_params: bool = False):
        super().__init__(crop, augment, seed)
        if isinstance(sharp, (str, os.PathLike)):
            root = Path(sharp)
            files = images_under(root)
            if not files:
                raise VQCNIRError(f"no images in the sharp-photo folder {root}")
            by_key = {f.relative_to(root).as_posix(): f for f in files}
        else:
            by_key = {Path(p).name: Path(p) for p in sharp}
            if not by_key:
                raise VQCNIRError("no sharp photos given")
        keys = split_keys(sorted(by_key), subset, val_fraction, split_seed)
        self.photos = [by_key[k] for k in keys]
        self.degrader = Degrader(config)
        self.length = len(self.photos) if length is None else int(length)
        self.quantize = quantize
        self.cache_photos = cache_photos
        self.return_params = return_params  # off by default: params dicts differ in keys, and
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.length

    def _photo(self, i: int) -> np.ndarray:
        if i in self._cache:
            return self._cache[i]
        img = read_rgb(self.photos[i])
        if self.cache_photos:  # each loader worker keeps its own decoded copies
            self._cache[i] = img
        return img

    def __getitem__(self, index: int) -> dict[str, Any]:
        pi = index % len(self.photos)
        photo = self._photo(pi)
        rng = self._rng(index)
        ch, cw = (self.crop, self.crop) if isinstance(self.crop, int) else self.crop
        h, w = photo.shape[:2]
        if ch > h or cw > w:
            raise VQCNIRError(f"crop {cw}×{ch} is larger than the photo {self.photos[pi]}, "
                              f"which is {w}×{h}")
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        m = self.degrader.margin
        y0, x0 = max(0, top - m), max(0, left - m)
        y1, x1 = min(h, top + ch + m), min(w, left + cw + m)
        seed = int(rng.integers(0, 2**31 - 1))
        sample = self.degrader(photo[y0:y1, x0:x1], seed, roi=(top - y0, left - x0, ch, cw))
        night = sample.night
        if self.quantize:
            night = np.round(night * 255.0) / 255.0
        if self.augment:
            night, gt = paired_augment([night, sample.gt], rng, crop=None)
        else:
            gt = sample.gt
        name = f"{Path(self.photos[pi]).stem}_{index:06d}"
        item = {"night": to_tensor(night.astype(np.float32)), "gt": to_tensor(gt), "name": name,
                "path": str(self.photos[pi])}
        if self.return_params:  # ...the default collate cannot batch dicts whose keys differ
            item["params"] = sample.params
        return item
