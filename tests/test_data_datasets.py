"""Datasets: aligned paired augmentation, folder matching, errors, splits, on-the-fly pairs."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from vqcnir.data import (
    LOLBlurDataset, PairedFolderDataset, SynthDataset, UnpairedFolderDataset, paired_augment,
    split_keys,
)
from vqcnir.errors import VQCNIRError


def pattern(h: int, w: int) -> np.ndarray:
    """Every pixel different: R = x, G = y, B = a hash of both."""
    y, x = np.mgrid[:h, :w]
    return np.stack([x % 256, y % 256, (x * 7 + y * 13) % 256], axis=2).astype(np.uint8)


def save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def pair_dirs(tmp_path):
    night, gt = tmp_path / "night", tmp_path / "gt"
    for video in ("a", "b", "c"):
        for frame in range(2):
            img = pattern(40, 56)
            save(night / video / f"{frame}.png", img)
            save(gt / video / f"{frame}.png", 255 - img)  # gt = negative: alignment is checkable
    return night, gt


def test_paired_crops_flips_rotations_are_pixel_aligned(pair_dirs):
    ds = PairedFolderDataset(*pair_dirs, crop=(16, 24), augment=True, seed=1)
    full = pattern(40, 56).astype(np.float32) / 255.0
    seen_shapes = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            night, gt = item["night"], item["gt"]
            # pixel-exact on the pattern (compared in 8-bit levels)
            assert torch.equal(torch.round(gt * 255), 255 - torch.round(night * 255))
            seen_shapes.add(tuple(night.shape))
            # the crop is a real window of the image under one of the 8 dihedral transforms
            a = night.permute(1, 2, 0).numpy()
            found = False
            for k in range(4):
                for flip in (False, True):
                    b = np.rot90(a, -k)
                    b = b[:, ::-1] if flip else b
                    r, g = int(round(b[0, 0, 0] * 255)), int(round(b[0, 0, 1] * 255))
                    hh, ww = b.shape[:2]
                    window = full[g:g + hh, r:r + ww]
                    if window.shape == b.shape and np.array_equal(b, window):
                        found = True
            assert found
    assert seen_shapes == {(3, 16, 24), (3, 24, 16)}


def test_augment_is_reproducible_with_a_seed(pair_dirs):
    a = PairedFolderDataset(*pair_dirs, crop=16, augment=True, seed=3)
    b = PairedFolderDataset(*pair_dirs, crop=16, augment=True, seed=3)
    assert all(torch.equal(a[i]["night"], b[i]["night"]) for i in range(len(a)))


def test_pairs_match_by_relative_path_across_extensions(tmp_path):
    save(tmp_path / "n" / "x" / "1.png", pattern(8, 8))
    Image.fromarray(pattern(8, 8)).save(tmp_path / "g.jpg")  # unrelated file at the top
    (tmp_path / "g" / "x").mkdir(parents=True)
    Image.fromarray(pattern(8, 8)).save(tmp_path / "g" / "x" / "1.jpg", quality=95)
    ds = PairedFolderDataset(tmp_path / "n", tmp_path / "g")
    assert len(ds) == 1 and ds[0]["name"] == "x/1"


def test_clear_errors(tmp_path, pair_dirs):
    night, gt = pair_dirs
    save(night / "d" / "0.png", pattern(40, 56))
    with pytest.raises(VQCNIRError, match="unmatched pair.*d/0.png"):
        PairedFolderDataset(night, gt)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VQCNIRError, match="no images"):
        PairedFolderDataset(tmp_path / "empty", gt)
    with pytest.raises(VQCNIRError, match="not found"):
        UnpairedFolderDataset(tmp_path / "missing")
    (gt / "d").mkdir()
    (gt / "d" / "0.png").write_bytes(b"not a png")
    ds = PairedFolderDataset(night, gt)
    bad = [i for i, it in enumerate(ds.items) if it[2] == "d/0"][0]
    with pytest.raises(VQCNIRError, match="d/0.png: not a .*image"):
        ds[bad]
    with pytest.raises(VQCNIRError, match="larger than the image"):
        PairedFolderDataset(night, gt, crop=64)[0]
    save(gt / "d" / "0.png", pattern(40, 50))
    with pytest.raises(VQCNIRError, match="sizes differ"):
        PairedFolderDataset(night, gt)[bad]


def test_split_is_fixed_seeded_and_by_video():
    keys = [f"{v:04d}/{f:04d}" for v in range(10) for f in range(3)]
    train = split_keys(keys, "train", 0.2, seed=0)
    val = split_keys(keys, "val", 0.2, seed=0)
    assert sorted(train + val) == sorted(keys) and not set(train) & set(val)
    assert len({k.split("/")[0] for k in val}) == 2
    assert {k.split("/")[0] for k in train}.isdisjoint({k.split("/")[0] for k in val})
    assert val == split_keys(keys, "val", 0.2, seed=0)
    assert val != split_keys(keys, "val", 0.2, seed=1)


def test_lolblur_layout_and_folder_choice(tmp_path):
    for folder in ("low_blur_noise", "low_blur", "high_sharp_scaled"):
        save(tmp_path / "test" / folder / "0000" / "0000.png", pattern(12, 12))
    ds = LOLBlurDataset(tmp_path, "test")
    assert ds.night_dir.name == "low_blur_noise" and ds.gt_dir.name == "high_sharp_scaled"
    assert LOLBlurDataset(tmp_path, "test", night_folder="low_blur").night_dir.name == "low_blur"
    with pytest.raises(VQCNIRError, match="missing train/low_blur_noise"):
        LOLBlurDataset(tmp_path, "train")
    with pytest.raises(VQCNIRError, match="not a LOL-Blur folder"):
        LOLBlurDataset(tmp_path, "test", night_folder="blurry")


def test_unpaired_items_have_no_gt(pair_dirs):
    ds = UnpairedFolderDataset(pair_dirs[0], crop=16, subset="val", val_fraction=0.34)
    item = ds[0]
    assert set(item) == {"night", "name", "path"} and item["night"].shape == (3, 16, 16)
    assert len(ds) == 2  # one of three videos


def test_on_the_fly_pairs(tmp_path):
    skdata = pytest.importorskip("skimage.data")
    save(tmp_path / "sharp" / "coffee.png", skdata.coffee()[:120, :160])
    save(tmp_path / "sharp" / "cat.png", skdata.chelsea()[:120, :160])
    ds = SynthDataset(tmp_path / "sharp", crop=48, length=4, seed=0)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["night"].shape == batch["gt"].shape == (4, 3, 48, 48)
    assert batch["night"].dtype == torch.float32
    assert 0 <= batch["night"].min() and batch["night"].max() <= 1
    assert batch["night"].mean() < batch["gt"].mean()       # it is night
    again = SynthDataset(tmp_path / "sharp", crop=48, length=4, seed=0)[2]
    assert torch.equal(again["night"], ds[2]["night"]) and torch.equal(again["gt"], ds[2]["gt"])
    assert torch.equal(ds[0]["night"] * 255, torch.round(ds[0]["night"] * 255))  # 8-bit like a file
    with pytest.raises(VQCNIRError, match="larger than the photo"):
        SynthDataset(tmp_path / "sharp", crop=200)[0]


def test_augment_helper_rejects_mismatched_sizes():
    with pytest.raises(VQCNIRError, match="sizes differ"):
        paired_augment([np.zeros((4, 4, 3)), np.zeros((4, 5, 3))], np.random.default_rng(0))
