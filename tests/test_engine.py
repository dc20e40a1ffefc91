"""Restore engine: padding modes, tiling with blended overlaps, precision and device choice."""

import numpy as np
import pytest
import torch
from torch import nn

import vqcnir
from vqcnir.engine import (
    DIHEDRAL, RestoreOptions, TilePlan, apply_dihedral, auto_tile_plan, choose_device, count_passes, count_tiles,
    forward_padded, minimal_padding, mirror_pad, release_padding, resolve_pad_mode, restore_tensor, restore_tiled,
    tile_starts, undo_dihedral,
)
from vqcnir.errors import VQCNIRError
from vqcnir.nn import preset


class LocalModel(nn.Module):
    """A stand-in network with only local operations, so tiling must reproduce it exactly."""

    def __init__(self, conv=False):
        super().__init__()
        self.config = preset("tiny")
        self.weight = nn.Parameter(torch.tensor(0.5))
        self.conv = conv

    def forward(self, x):
        y = x * self.weight + 0.1
        return nn.functional.avg_pool2d(y, 3, 1, 1, count_include_pad=False) if self.conv else y


@pytest.mark.parametrize("size,expected", [(256, 64), (512, 64), (600, 40), (400, 48), (64, 64), (7, 57)])
def test_release_padding_always_adds_1_to_64(size, expected):
    assert release_padding(size) == expected


@pytest.mark.parametrize("size,expected", [(256, 0), (257, 7), (7, 1), (600, 0), (601, 7)])
def test_minimal_padding_reaches_a_multiple_of_8(size, expected):
    assert minimal_padding(size) == expected


def test_mirror_pad_repeats_the_edge_and_caps_at_twice_the_size():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    y = mirror_pad(x, 2, 1)
    assert y.shape == (1, 1, 5, 5)
    assert torch.equal(y[0, 0, 3, :4], x[0, 0, 2]) and torch.equal(y[0, 0, 4, :4], x[0, 0, 1])
    assert torch.equal(y[0, 0, :3, 4], x[0, 0, :, 3])
    assert mirror_pad(x, 10, 0).shape[-2] == 6  # like the release: at most one mirrored copy


@pytest.mark.parametrize("size,tile,overlap", [(100, 32, 8), (64, 64, 16), (65, 32, 31), (1000, 256, 32)])
def test_tile_starts_cover_everything_with_full_tiles(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    covered = np.zeros(size, bool)
    for s in starts:
        assert 0 <= s and s + min(tile, size) <= size
        covered[s:s + tile] = True
    assert covered.all()
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("conv", [False, True])
def test_tiled_restore_equals_whole_image_for_a_local_model(conv):
    model = LocalModel(conv)
    x = torch.rand(1, 3, 70, 90)
    whole = forward_padded(model, x, "minimal")
    tiled = restore_tiled(model, x, TilePlan(tile=32, overlap=12), "minimal")
    # With a 3x3 neighbourhood, the image's outer ring differs only because the whole image was
    # mirror-padded to a multiple of 8 and the border tiles were not; inside, tiles must vanish.
    ring = 1 if conv else 0
    inner = (whole - tiled)[..., ring:70 - ring, ring:90 - ring]
    assert inner.abs().max() < 1e-6


class TileMeanModel(LocalModel):
    """A 'global' model: every output pixel is the mean of the whole input it was given, so each
    tile comes out as a different constant, the worst case for seams."""

    def forward(self, x):
        return x.mean(dim=(1, 2, 3), keepdim=True).expand(x.shape[0], 3, *x.shape[-2:]) * self.weight


def test_blending_turns_tile_differences_into_smooth_ramps():
    x = torch.linspace(0, 1, 128).expand(1, 3, 32, 128).contiguous()
    plan = TilePlan(tile=64, overlap=32)
    with torch.no_grad():
        out = restore_tiled(TileMeanModel(), x, plan, "minimal")
        first, last = out[0, 0, 0, 0].item(), out[0, 0, 0, -1].item()
        steps = (out[0, 0, 0, 1:] - out[0, 0, 0, :-1]).abs()
    jump = abs(last - first)  # what pasting tiles without blending would show at a seam
    assert jump > 0.1
    assert steps.max() < jump / 5


def test_tiled_restore_with_the_real_network(tiny_model):
    x = torch.rand(1, 3, 96, 80) * 0.3
    tiled = restore_tensor(tiny_model, x, RestoreOptions(tile=48, tile_overlap=16))
    assert tiled.shape == x.shape and torch.isfinite(tiled).all()


def test_auto_tile_plan_tiles_large_images_only(tiny_model):
    assert auto_tile_plan(tiny_model, 256, 256, torch.float32, 2**30, torch.device("cpu")) is None
    paper_like = LocalModel()
    paper_like.config = preset("paper")
    plan = auto_tile_plan(paper_like, 3000, 4000, torch.float32, 2 * 2**30, torch.device("cpu"))
    assert plan is not None and 128 <= plan.tile <= 1024 and plan.tile % 64 == 0
    assert count_tiles(3000, 4000, plan) > 1


def test_precision_is_refused_where_the_device_cannot_do_it(tiny_model):
    with pytest.raises(VQCNIRError, match="fp16 needs a GPU"):
        restore_tensor(tiny_model, torch.rand(1, 3, 16, 16), RestoreOptions(precision="fp16"))


def test_bf16_on_cpu_is_close_to_fp32(tiny_model):
    x = torch.rand(1, 3, 32, 32)
    full = restore_tensor(tiny_model, x)
    half = restore_tensor(tiny_model, x, RestoreOptions(precision="bf16"))
    assert half.dtype == torch.float32
    assert (full - half).abs().mean() < 0.05 * full.abs().mean()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_a_missing_cuda_device_is_a_clear_error():
    with pytest.raises(VQCNIRError, match="no CUDA GPU"):
        choose_device("cuda")
    assert choose_device("auto").type in ("cpu", "mps")


def test_too_small_images_are_refused(tiny_model):
    with pytest.raises(VQCNIRError, match="too small"):
        restore_tensor(tiny_model, torch.rand(1, 3, 1, 1))


# ------------------------------------------------------------------ the Python API
def test_api_restores_uint8_and_uint16_keeping_kind(tiny_model):
    rng = np.random.default_rng(0)
    for dtype, peak in ((np.uint8, 255), (np.uint16, 65535)):
        image = rng.integers(0, peak, (20, 28, 3), dtype=dtype)
        out = vqcnir.restore(tiny_model, image)
        assert out.dtype == dtype and out.shape == image.shape


def test_api_grey_and_alpha(tiny_model):
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 255, (16, 24), dtype=np.uint8)
    assert vqcnir.restore(tiny_model, grey).shape == (16, 24)
    assert vqcnir.restore(tiny_model, grey[..., None]).shape == (16, 24, 1)
    rgba = rng.integers(0, 255, (16, 24, 4), dtype=np.uint8)
    out = vqcnir.restore(tiny_model, rgba)
    assert out.shape == rgba.shape and np.array_equal(out[..., 3], rgba[..., 3])


def test_api_tensor_in_tensor_out(tiny_model):
    x = torch.rand(3, 24, 16)
    y = vqcnir.restore(tiny_model, x)
    assert isinstance(y, torch.Tensor) and y.shape == x.shape
    assert torch.allclose(vqcnir.restore(tiny_model, x[None])[0], y)


def test_api_rejects_bad_images(tiny_model):
    with pytest.raises(VQCNIRError, match="uint8 or uint16"):
        vqcnir.restore(tiny_model, np.zeros((8, 8, 3), np.float64))
    with pytest.raises(VQCNIRError, match="H x W"):
        vqcnir.restore(tiny_model, np.zeros((8, 8, 5), np.uint8))


def test_auto_padding_is_release_only_for_the_paper_network():
    from types import SimpleNamespace

    from vqcnir.nn.config import VQCNIRConfig

    assert resolve_pad_mode(SimpleNamespace(config=VQCNIRConfig()), "auto") == "release"
    assert resolve_pad_mode(SimpleNamespace(config=preset("small")), "auto") == "minimal"
    assert resolve_pad_mode(SimpleNamespace(config=preset("small")), "release") == "release"
    with pytest.raises(VQCNIRError, match="unknown pad mode"):
        resolve_pad_mode(SimpleNamespace(config=preset("small")), "reflect")


def test_auto_padding_pads_a_small_network_to_a_multiple_of_8_only():
    seen = []

    class Recorder(LocalModel):
        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return super().forward(x)

    x = torch.rand(1, 3, 60, 64)
    y = forward_padded(Recorder(), x)  # pad mode "auto" by default
    assert seen == [(64, 64)] and y.shape == x.shape  # release padding would give 64x128


@pytest.mark.parametrize("turns,mirror", DIHEDRAL)
def test_each_dihedral_transform_is_undone(turns, mirror):
    x = torch.rand(1, 3, 5, 7)
    y = apply_dihedral(x, turns, mirror)
    assert torch.equal(undo_dihedral(y, turns, mirror), x)


def test_the_eight_transforms_are_distinct():
    x = torch.rand(1, 3, 4, 4)
    images = {apply_dihedral(x, t, m).numpy().tobytes() for t, m in DIHEDRAL}
    assert len(images) == 8


def test_self_ensemble_is_the_mean_of_the_undone_restorations(tiny_model):
    x = torch.rand(1, 3, 24, 40) * 0.3
    options = RestoreOptions(tile=0, pad_mode="minimal")
    by_hand = torch.stack([
        undo_dihedral(restore_tensor(tiny_model, apply_dihedral(x, t, m), options), t, m) for t, m in DIHEDRAL
    ]).mean(0)
    calls = []
    ensembled = restore_tensor(tiny_model, x, RestoreOptions(tile=0, pad_mode="minimal", self_ensemble=True),
                               progress=lambda: calls.append(1))
    assert torch.allclose(ensembled, by_hand, atol=1e-6)
    assert not torch.allclose(ensembled, restore_tensor(tiny_model, x, options), atol=1e-4)
    assert len(calls) == 8 == count_passes(tiny_model, 24, 40, RestoreOptions(tile=0, self_ensemble=True))


def test_self_ensemble_leaves_a_symmetric_model_unchanged_and_tiles_each_copy():
    model = LocalModel(conv=True)  # pointwise + a symmetric 3x3 mean: commutes with flips and turns
    x = torch.rand(1, 3, 72, 96)  # multiples of 8: no padding, which would sit on one side only
    options = RestoreOptions(tile=32, tile_overlap=8, self_ensemble=True)
    calls = []
    y = restore_tensor(model, x, options, progress=lambda: calls.append(1))
    assert torch.allclose(y, restore_tensor(model, x, RestoreOptions(tile=0)), atol=1e-5)
    assert len(calls) == count_passes(model, 72, 96, options) == 8 * count_tiles(72, 96, TilePlan(32, 8))
