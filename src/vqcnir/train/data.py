"""Training and validation data: the datasets of ``vqcnir.data`` chosen by the config, a procedural
``synthetic`` source that needs no files, and a deterministic global-batch sampler.

The sampler makes a run reproducible and independent of the number of processes: iteration i
always uses the same global batch (a seeded permutation per epoch), and process r of W takes the
r-th slice of it. With the global batch fixed, one process or several see exactly the same data.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler, Subset

from ..errors import VQCNIRError
from .config import TrainConfig


class SyntheticPairs(Dataset):
    """Procedural night/gt pairs, deterministic per (seed, epoch, index): smooth colour fields
    with a few hard-edged shapes as the sharp image; the night image is a darker, box-blurred,
    noisy copy. For tests and benchmarks: no files, no decoding cost."""

    def __init__(self, length: int, crop: int, seed: int = 0, augment: bool = True):
        self.length, self.crop, self.seed, self.augment = int(length), int(crop), int(seed), augment
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        epoch = self.epoch if self.augment else 0
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 1_000_003 + int(index))
        s = self.crop
        base = torch.rand(1, 3, 4, 4, generator=g)
        gt = F.interpolate(base, size=(s, s), mode="bilinear", align_corners=True)[0]
        yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        for _ in range(3):  # rectangles with hard edges: something for the blur to destroy
            y0, x0 = torch.randint(0, s, (2,), generator=g).tolist()
            h, w = torch.randint(s // 8, s // 2 + 1, (2,), generator=g).tolist()
            inside = (yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)
            gt = torch.where(inside, torch.rand(3, 1, 1, generator=g), gt)
        gain = 0.1 + 0.2 * torch.rand((), generator=g)
        night = F.avg_pool2d((gt * gain)[None], 3, stride=1, padding=1, count_include_pad=False)[0]
        night = (night + 0.01 * torch.randn(night.shape, generator=g)).clamp(0, 1)
        return {"night": night.contiguous(), "gt": gt.contiguous(), "name": f"synthetic_{index:06d}"}


class EpochIndexed(Dataset):
    """Index space epoch * n + i: sets the epoch on the wrapped dataset (in whichever loader
    worker holds it) before reading item i, so per-epoch augmentation works with workers that
    live for the whole run."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.n = len(dataset)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        epoch, i = divmod(int(index), self.n)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return self.dataset[i]


class GlobalBatchSampler(Sampler):
    """Infinite batch sampler: yields this process's share of global batch i for i = start, ...

    Indices are epoch-encoded (``epoch * n + item``) for ``EpochIndexed``."""

    def __init__(self, n: int, global_batch: int, rank: int, world: int, seed: int, start_iter: int = 0):
        if global_batch % world:
            raise VQCNIRError(f"data.batch_size={global_batch} is not divisible by the {world} processes")
        if n < global_batch:
            raise VQCNIRError(f"the training set has {n} items, fewer than one batch of {global_batch}")
        self.n, self.batch, self.rank, self.world = n, global_batch, rank, world
        self.seed, self.start_iter = seed, start_iter
        self.per_epoch = n // global_batch  # incomplete last batch dropped

    def _perm(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))

    def __iter__(self) -> Iterator[list[int]]:
        it = self.start_iter
        perm_epoch, perm = None, None
        local = self.batch // self.world
        while True:
            epoch, j = divmod(it, self.per_epoch)
            if epoch != perm_epoch:
                perm_epoch, perm = epoch, self._perm(epoch)
            chunk = perm[j * self.batch:(j + 1) * self.batch][self.rank * local:(self.rank + 1) * local]
            yield [epoch * self.n + int(i) for i in chunk]
            it += 1

    def __len__(self) -> int:  # nominal; the sampler never ends
        return 2**62


def _stage1_view(item: dict) -> dict:
    return {"night": item["night"], "gt": item["night"], "name": item.get("name", "")}


class _SharpAsGT(Dataset):
    """UnpairedFolderDataset items (a sharp photo under "night") as stage-1 items."""

    def __init__(self, dataset):
        self.dataset = dataset

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return _stage1_view(self.dataset[index])


def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset]:
    """(training set, validation set) for the config; items have "night" and "gt" tensors.

    The validation set is ``val.night_dir``/``val.gt_dir`` when given (and then nothing is held
    out of the training source), else a seeded split held out of the training source."""
    fixed = _fixed_validation(cfg)
    train, held_out = _training_source(cfg, hold_out=fixed is None)
    if fixed is not None:
        return train, fixed
    if len(held_out) > cfg.val.num_images:
        held_out = Subset(held_out, list(range(cfg.val.num_images)))
    return train, held_out


def _fixed_validation(cfg: TrainConfig) -> Dataset | None:
    """val.night_dir/val.gt_dir pairs, ``val.num_images`` of them spread evenly over the folder."""
    v = cfg.val
    if not v.night_dir:
        return None
    from ..data import PairedFolderDataset

    val = PairedFolderDataset(v.night_dir, v.gt_dir)
    if len(val) > v.num_images:
        val = Subset(val, np.linspace(0, len(val) - 1, v.num_images).round().astype(int).tolist())
    return val


def _training_source(cfg: TrainConfig, hold_out: bool) -> tuple[Dataset, Dataset | None]:
    """(training set, validation set held out of it by a seeded split, or None without hold_out)."""
    d, seed = cfg.data, cfg.seed
    val_n, val_crop = cfg.val.num_images, cfg.val.crop
    if d.kind == "synthetic":
        val = SyntheticPairs(val_n, val_crop or d.crop, seed=seed + 1_000_000, augment=False)
        return SyntheticPairs(d.synth_length, d.crop, seed=seed), val
    from .. import data as vdata

    split = dict(val_fraction=d.val_fraction, split_seed=d.split_seed)
    subset = "train" if hold_out else "all"
    if d.kind == "sharp":
        train = _SharpAsGT(vdata.UnpairedFolderDataset(d.root, crop=d.crop, augment=True, subset=subset,
                                                       seed=seed, **split))
        val = _SharpAsGT(vdata.UnpairedFolderDataset(d.root, subset="val", **split)) if hold_out else None
    elif d.kind == "synth":
        degrade = vdata.DegradeConfig.from_dict(d.degrade) if d.degrade else None
        train = vdata.SynthDataset(d.root, crop=d.crop, config=degrade, length=d.synth_length,
                                   augment=True, subset=subset, seed=seed, **split)
        val = vdata.SynthDataset(d.root, crop=val_crop or d.crop, config=degrade, length=val_n, augment=False,
                                 subset="val", seed=seed + 1, **split) if hold_out else None
    elif d.kind == "paired":
        train = vdata.PairedFolderDataset(d.night_dir, d.gt_dir, crop=d.crop, augment=True,
                                          subset=subset, seed=seed, **split)
        val = vdata.PairedFolderDataset(d.night_dir, d.gt_dir, subset="val", **split) if hold_out else None
    else:  # lolblur: the validation videos are held out of the training split
        folders = dict(night_folder=d.night_folder, gt_folder=d.gt_folder)
        train = vdata.LOLBlurDataset(d.root, "train", crop=d.crop, augment=True, subset=subset,
                                     seed=seed, **folders, **split)
        val = vdata.LOLBlurDataset(d.root, "train", subset="val", **folders, **split) if hold_out else None
    return train, val
