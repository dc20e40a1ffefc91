"""Losses and the discriminator."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from vqcnir.errors import VQCNIRError
from vqcnir.train.losses import PerceptualLoss, hinge_d_loss, hinge_g_loss, pixel_loss, resolve_perceptual
from vqcnir.nn.discriminator import UNetDiscriminatorSN


def test_pixel_and_hinge_losses():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.25)
    assert pixel_loss(a, b).item() == pytest.approx(0.25)
    # hinge: real logits above 1 and fake logits below -1 cost nothing
    assert hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -3.0)).item() == 0.0
    assert hinge_d_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(2.0)
    assert hinge_g_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_unet_discriminator_shapes_and_spectral_norm():
    torch.manual_seed(0)
    d = UNetDiscriminatorSN(width=8)
    x = torch.rand(2, 3, 16, 24, requires_grad=True)
    out = d(x)
    assert out.shape == (2, 1, 16, 24)
    out.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    names = dict(d.named_parameters())
    assert "conv1.weight_orig" in names and "conv0.weight" in names and "conv9.weight" in names


def test_perceptual_choice_is_explicit():
    with pytest.raises(VQCNIRError, match="not one of"):
        resolve_perceptual("vgg")
    assert resolve_perceptual("none") == "none"
    auto = resolve_perceptual("auto") if importlib.util.find_spec("stlpips_pytorch") else None
    if auto is not None:
        assert auto in ("lpips_vgg", "stlpips_vgg")


@pytest.mark.skipif(importlib.util.find_spec("stlpips_pytorch") is None, reason="stlpips-pytorch not installed")
def test_shift_tolerant_perceptual_loss_trains_offline():
    torch.set_num_threads(1)
    loss = PerceptualLoss("stlpips_vgg")
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.net.training
    gt = torch.rand(1, 3, 32, 32)
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    value = loss(x, gt)
    value.backward()
    assert value.item() > 0 and x.grad.abs().sum() > 0
    assert loss(gt, gt).item() == pytest.approx(0.0, abs=1e-6)
