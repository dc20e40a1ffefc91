"""Classical baselines: identity, auto-exposure gamma, CLAHE + denoise."""

from __future__ import annotations

import numpy as np
import pytest

from vqcnir.metrics import baselines
from vqcnir.errors import VQCNIRError


@pytest.fixture
def night():
    rng = np.random.default_rng(0)
    return (rng.random((48, 64, 3)) * 0.12).astype(np.float32)


def test_identity_returns_the_input(night):
    out = baselines.identity(night)
    assert np.array_equal(out, night) and out is not night


def test_gamma_brings_mean_luma_near_the_target(night):
    out = baselines.gamma(night)
    luma = out.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert abs(luma.mean() - baselines.TARGET_MEAN_LUMA) < 0.08
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    bright = np.full((8, 8, 3), 0.9, np.float32)
    assert np.allclose(baselines.gamma(bright), bright)  # never darkens
    assert np.isfinite(baselines.gamma(np.zeros((8, 8, 3), np.float32))).all()


def test_clahe_brightens_and_stays_in_range(night):
    pytest.importorskip("skimage")
    out = baselines.clahe(night)
    assert out.shape == night.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1 and out.mean() > night.mean()
    assert np.array_equal(out, baselines.clahe(night))


def test_unknown_baseline_is_a_clear_error():
    with pytest.raises(VQCNIRError, match="unknown baseline 'magic'"):
        baselines.get("magic")
