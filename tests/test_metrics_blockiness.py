"""blockiness8: 1.0 without a grid, above 1 with an 8-px one, and JPEG's blocks are caught."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vqcnir import metrics


def _photo_like(seed=0, size=96):
    """Smooth random texture with edges that do not follow any grid."""
    rng = np.random.default_rng(seed)
    base = rng.random((7, 9, 3)).astype(np.float32)
    img = np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize((size + 5, size + 3), Image.BICUBIC))
    return torch.from_numpy(img[:size, :size].copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)


def test_no_grid_scores_about_one_and_flat_is_exactly_one():
    smooth = _photo_like()
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert abs(metrics.compute("blockiness8", smooth).item() - 1.0) < 0.15
    assert abs(metrics.compute("blockiness8", noise).item() - 1.0) < 0.05
    flat = torch.full((2, 3, 32, 32), 0.3)
    assert torch.equal(metrics.compute("blockiness8", flat), torch.ones(2, dtype=torch.float64))


def test_an_8px_mosaic_raises_it_and_a_shifted_one_does_not_count():
    img = _photo_like()
    blocks = torch.nn.functional.interpolate(
        torch.nn.functional.avg_pool2d(img, 8), scale_factor=8, mode="nearest")
    mosaic = 0.5 * img + 0.5 * blocks
    score = metrics.compute("blockiness8", mosaic).item()
    assert score > 2.0
    # the same mosaic moved off the grid by 4 px: its steps fall inside blocks
    shifted = torch.roll(mosaic, shifts=(4, 4), dims=(2, 3))
    assert metrics.compute("blockiness8", shifted).item() < 1.0


def test_blockiness4_measures_the_grid_of_a_quarter_scale_codebook():
    img = _photo_like()
    blocks = torch.nn.functional.interpolate(
        torch.nn.functional.avg_pool2d(img, 4), scale_factor=4, mode="nearest")
    mosaic = 0.5 * img + 0.5 * blocks
    fine, coarse = (metrics.compute(name, mosaic).item() for name in ("blockiness4", "blockiness8"))
    # every 8-px line is a 4-px line, so blockiness8 sees the 4-px grid too, but diluted by the
    # 4-px lines it counts as inside its blocks
    assert fine > 2.0 and 1.0 < coarse < fine
    assert metrics.compute("blockiness4", torch.roll(mosaic, shifts=(2, 2), dims=(2, 3))).item() < 1.0
    assert abs(metrics.compute("blockiness4", img).item() - 1.0) < 0.15
    with pytest.raises(ValueError, match="blockiness4 needs images of at least 8×8"):
        metrics.blockiness4(torch.rand(1, 3, 4, 64))


def test_jpeg_quality_10_is_blocky_and_quality_95_is_not():
    img = (_photo_like(size=128)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)

    def jpeg(q):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q)
        out = np.asarray(Image.open(buf).convert("RGB"))
        return torch.from_numpy(out.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)

    low, high = (metrics.compute("blockiness8", jpeg(q)).item() for q in (10, 95))
    assert low > 1.3 and low > high


def test_too_small_or_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="at least 16"):
        metrics.blockiness8(torch.rand(1, 3, 8, 64))
    with pytest.raises(ValueError, match="RGB"):
        metrics.blockiness8(torch.rand(1, 1, 32, 32))
    assert metrics.spec("blockiness8").reference is False
