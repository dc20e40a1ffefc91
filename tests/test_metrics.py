"""Full-reference metrics against scikit-image, LPIPS variants, NIQE basics, availability."""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest
import torch

from vqcnir import metrics
from vqcnir.metrics import MetricUnavailable, full_reference as fr
from vqcnir.metrics.matlab_resize import imresize, resize_matrix

skimage_metrics = pytest.importorskip("skimage.metrics")
from skimage.color import rgb2ycbcr  # noqa: E402

LUMA = np.array([0.299, 0.587, 0.114])


def _pair(seed=0, h=40, w=56, noise=0.05, n=2):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(n, 3, h, w, generator=g)
    # smooth it a little so restored/gt are positively correlated in every window
    gt = torch.nn.functional.avg_pool2d(gt, 3, stride=1, padding=1)
    restored = (gt + noise * torch.randn(gt.shape, generator=g)).clamp(0, 1)
    # 8-bit levels, as images read from files
    return (restored * 255).round() / 255, (gt * 255).round() / 255


def _np(x):
    return x.permute(1, 2, 0).double().numpy()


def test_psnr_matches_skimage():
    r, g = _pair()
    ours = fr.psnr(r, g)
    for i in range(r.shape[0]):
        ref = skimage_metrics.peak_signal_noise_ratio(_np(g[i]), _np(r[i]), data_range=1.0)
        assert abs(ours[i].item() - ref) < 1e-4


def test_psnr_y_matches_skimage_bt601():
    r, g = _pair(1)
    ours = fr.psnr_y(r, g)
    for i in range(r.shape[0]):
        yr, yg = rgb2ycbcr(_np(r[i]))[..., 0] / 255, rgb2ycbcr(_np(g[i]))[..., 0] / 255
        ref = skimage_metrics.peak_signal_noise_ratio(yg, yr, data_range=1.0)
        assert abs(ours[i].item() - ref) < 1e-4


def _skimage_ssim(a, b, **kw):
    return skimage_metrics.structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, **kw)


def test_ssim_matches_skimage_on_8bit_luma():
    r, g = _pair(2)
    ours = fr.ssim(r, g)
    for i in range(r.shape[0]):
        yr = np.round(_np(r[i]) @ LUMA * 255)
        yg = np.round(_np(g[i]) @ LUMA * 255)
        assert abs(ours[i].item() - _skimage_ssim(yr, yg)) < 1e-4


def test_ssim_rgb_matches_skimage_per_channel_mean():
    r, g = _pair(3)
    ours = fr.ssim_rgb(r, g)
    for i in range(r.shape[0]):
        ref = _skimage_ssim(np.round(_np(r[i]) * 255), np.round(_np(g[i]) * 255), channel_axis=-1)
        assert abs(ours[i].item() - ref) < 1e-4


def test_identical_images_give_inf_psnr_and_unit_ssim():
    _, g = _pair(4)
    assert torch.isinf(fr.psnr(g, g)).all() and (fr.psnr(g, g) > 0).all()
    assert torch.isinf(fr.psnr_y(g, g)).all()
    assert torch.allclose(fr.ssim(g, g), torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(fr.ssim_rgb(g, g), torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_crop_batch_and_dtype_do_not_change_values():
    r, g = _pair(5)
    assert torch.allclose(fr.psnr(r, g, crop=4), fr.psnr(r[..., 4:-4, 4:-4], g[..., 4:-4, 4:-4]))
    single = torch.stack([fr.ssim(r[i], g[i])[0] for i in range(2)])
    assert torch.equal(fr.ssim(r, g), single)
    assert torch.equal(fr.ssim(r.double(), g.double()), fr.ssim(r, g))
    assert torch.allclose(metrics.compute("ssim", r, g, crop=3), fr.ssim(r, g, crop=3))


def test_shape_mismatch_and_bad_input_are_clear():
    r, g = _pair(6)
    with pytest.raises(ValueError, match="differ in shape"):
        fr.psnr(r, g[..., :-1])
    with pytest.raises(ValueError, match="N×3×H×W"):
        fr.ssim(r[:, :1], g[:, :1])
    with pytest.raises(ValueError, match="full-reference"):
        metrics.compute("psnr", r)


def test_matlab_resize_matrix_rows_sum_to_one_and_keep_constants():
    m = resize_matrix(96, 48, 0.5)
    assert torch.allclose(m.sum(1), torch.ones(48, dtype=torch.float64))
    x = torch.full((1, 1, 96, 192), 7.0, dtype=torch.float64)
    assert torch.allclose(imresize(x, 0.5), torch.full((1, 1, 48, 96), 7.0, dtype=torch.float64))


def test_niqe_basics():
    g = torch.Generator().manual_seed(7)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 100, 200, generator=g), 5, 1, 2)
    x[..., :40, :60] = 0.5  # a flat patch: rounding noise there must not matter
    a = metrics.niqe(x)
    assert a.shape == (1,) and math.isfinite(a.item())
    assert torch.equal(metrics.niqe(x.double()), a)
    with pytest.raises(ValueError, match="96×96"):
        metrics.niqe(torch.rand(1, 3, 96, 100))


def _lpips_pair():
    # RNG-free inputs; reference values from the stlpips-pytorch 0.0.2 package itself.
    h, w = 48, 64
    yy = torch.linspace(0, 1, h).view(h, 1)
    xx = torch.linspace(0, 1, w).view(1, w)
    a = torch.stack([yy * xx, (yy + xx) / 2, (torch.sin(12 * xx) * torch.cos(9 * yy) + 1) / 2])
    b = torch.stack([(yy * xx) ** 1.5, (yy + xx) / 2 * 0.8,
                     (torch.sin(11 * xx + 0.3) * torch.cos(9 * yy) + 1) / 2])
    return a[None], b[None]


needs_stlpips = pytest.mark.skipif(importlib.util.find_spec("stlpips_pytorch") is None,
                                   reason="stlpips-pytorch (weights) not installed")


@needs_stlpips
@pytest.mark.parametrize("net, expected", [("alex", 0.0317111536860466), ("vgg", 0.061992209404706955)])
def test_stlpips_matches_the_published_implementation(net, expected):
    a, b = _lpips_pair()
    assert abs(metrics.compute(f"stlpips_{net}", a, b).item() - expected) < 1e-5
    assert metrics.compute(f"stlpips_{net}", a, a).item() == pytest.approx(0.0, abs=1e-7)


@needs_stlpips
def test_stlpips_module_is_differentiable():
    model = metrics.load_stlpips("alex")
    a, b = _lpips_pair()
    a = a.clone().requires_grad_(True)
    d = model(a, b)
    d.sum().backward()
    assert d.shape == (1,) and a.grad is not None and torch.isfinite(a.grad).all()
    assert not any(p.requires_grad for p in model.parameters())


def test_lpips_without_imagenet_weights_is_unavailable_not_substituted(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reasons = metrics.available()
    assert reasons["lpips_alex"] is not None and reasons["lpips_vgg"] is not None
    with pytest.raises(MetricUnavailable, match="not a stand-in|lpips"):
        metrics.compute("lpips_alex", *_lpips_pair())


@pytest.mark.skipif(importlib.util.find_spec("lpips") is None, reason="lpips package not installed")
def test_lpips_alex_runs_through_the_lpips_package_when_weights_are_cached(tmp_path, monkeypatch):
    from torchvision.models import alexnet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ckpt = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    ckpt.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(alexnet().state_dict(), ckpt)  # stand-in trunk: only the plumbing is tested here
    assert metrics.available()["lpips_alex"] is None
    from vqcnir.metrics.lpips import load_lpips

    model = load_lpips("alex")
    a, b = _lpips_pair()
    assert type(model.model).__module__.startswith("lpips")
    d = model(a, b)
    assert d.shape == (1,) and torch.isfinite(d).all()


def _fake_pyiqa(root):
    pkg = root / "pyiqa"
    (pkg / "utils").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import torch\n"
        "def create_metric(name, device=None, as_loss=False):\n"
        "    from pyiqa.utils import download_util\n"
        "    seen = download_util.DEFAULT_CACHE_DIR\n"
        "    return lambda x: x.mean(dim=(1, 2, 3)) * 0 + len(seen)\n"
    )
    (pkg / "utils" / "__init__.py").write_text("")
    (pkg / "utils" / "download_util.py").write_text("DEFAULT_CACHE_DIR = 'nowhere'\n")


def test_pyiqa_metrics_need_the_package_and_local_weights(tmp_path, monkeypatch):
    from vqcnir.metrics import optional

    if importlib.util.find_spec("pyiqa") is None:
        assert "not installed" in metrics.available()["musiq"]
    _fake_pyiqa(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv(optional.ENV_WEIGHTS, str(weights))
    reason = metrics.available()["musiq"]
    assert reason is not None and "musiq_koniq_ckpt-e95806b9.pth" in reason and "not downloaded" in reason
    (weights / "musiq_koniq_ckpt-e95806b9.pth").write_bytes(b"x")
    assert metrics.available()["musiq"] is None
    assert metrics.available()["pi"] is not None  # needs NRQM and NIQE files too
    score = optional.load_pyiqa("musiq")(torch.rand(2, 3, 8, 8))
    assert score.tolist() == [float(len(str(weights)))] * 2  # weights folder handed to pyiqa
    for name in [m for m in sys.modules if m == "pyiqa" or m.startswith("pyiqa.")]:
        monkeypatch.delitem(sys.modules, name)
