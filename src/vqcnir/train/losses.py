"""Training losses: pixel (L1, Charbonnier), frequency, grid steps, perceptual (LPIPS-VGG or
shift-tolerant LPIPS-VGG), hinge GAN.

The code-alignment / codebook losses live with the quantiser (``vqcnir.nn.quantizer``), which
returns them from its forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VQCNIRError

PERCEPTUAL_CHOICES = ("auto", "lpips_vgg", "stlpips_vgg", "none")
PIXEL_KINDS = ("l1", "charbonnier")
CHARBONNIER_EPS = 1e-3


def pixel_loss(restored: torch.Tensor, gt: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """``l1``: mean absolute error (eq. 14 of the paper); ``charbonnier``: mean of
    sqrt(d² + ε²) with ε = 1e-3, an L1 that is smooth at zero (Restormer, MPRNet)."""
    d = restored.float() - gt.float()
    if kind == "l1":
        return d.abs().mean()
    if kind == "charbonnier":
        return torch.sqrt(d * d + CHARBONNIER_EPS ** 2).mean()
    raise VQCNIRError(f"pixel loss {kind!r} is not one of {', '.join(PIXEL_KINDS)}")


def frequency_loss(restored: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """L1 between the 2-D FFTs (real and imaginary parts) of output and target, per channel, as
    in MIMO-UNet's FFT loss: it weighs the fine detail that blur removes as much as the low
    frequencies that dominate a pixel loss. Orthonormal FFT, so the scale does not depend on
    the crop size."""
    a = torch.view_as_real(torch.fft.rfft2(restored.float(), norm="ortho"))
    b = torch.view_as_real(torch.fft.rfft2(gt.float(), norm="ortho"))
    return (a - b).abs().mean()


def grid_step_loss(restored: torch.Tensor, gt: torch.Tensor, grid: int) -> torch.Tensor:
    """How much the error of the step between neighbouring pixels across each ``grid``-px line
    (where the codebook decoder's blocks meet; the lines ``blockiness4``/``blockiness8`` read)
    differs from the mean error of the two steps beside it, inside the blocks; mean absolute value.
    A mosaic is an error that jumps at those lines only; blur's error changes smoothly from step to
    step and is left to the pixel loss, so the loss does not ask for sharper edges on the grid
    lines than beside them, which would draw the grid it is meant to remove."""
    d = restored.float() - gt.float()
    parts = []
    for e in (d[..., 1:] - d[..., :-1], (d[..., 1:, :] - d[..., :-1, :]).transpose(-1, -2)):  # x, then y
        on, before, after = e[..., grid - 1::grid], e[..., grid - 2::grid], e[..., grid::grid]
        n = after.shape[-1]  # a grid line at the edge has no step after it
        parts.append((on[..., :n] - (before[..., :n] + after) / 2).abs().flatten())
    return torch.cat(parts).mean()


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))."""
    return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge GAN: -mean(D(fake))."""
    return -fake_logits.float().mean()


def resolve_perceptual(kind: str) -> str:
    """``auto`` -> ``lpips_vgg`` when torchvision's ImageNet VGG16 weights are on this machine
    (and the ``lpips`` package is installed), otherwise ``stlpips_vgg`` (offline weights from the
    ``stlpips-pytorch`` wheel). Other names are returned after checking they can run here."""
    from ..metrics import MetricUnavailable
    from ..metrics.lpips import check_lpips, stlpips_weights_path

    if kind not in PERCEPTUAL_CHOICES:
        raise VQCNIRError(f"perceptual loss {kind!r} is not one of {', '.join(PERCEPTUAL_CHOICES)}")
    if kind == "none":
        return kind
    if kind == "auto":
        try:
            check_lpips("vgg")
            return "lpips_vgg"
        except MetricUnavailable:
            kind = "stlpips_vgg"
    try:
        if kind == "lpips_vgg":
            check_lpips("vgg")
        else:
            stlpips_weights_path("vgg")
    except MetricUnavailable as e:
        raise VQCNIRError(f"perceptual loss {kind} cannot run here: {e}") from None
    return kind


class PerceptualLoss(nn.Module):
    """Mean LPIPS distance between the output and the target, both RGB in [0, 1].

    The network is frozen (no parameter gradients) but differentiable with respect to its inputs.
    ``kind`` is ``lpips_vgg`` (LPIPS v0.1 with torchvision's ImageNet VGG16, the FeMaSR recipe),
    ``stlpips_vgg`` (shift-tolerant LPIPS VGG, offline) or ``auto`` (see ``resolve_perceptual``).
    """

    def __init__(self, kind: str = "auto"):
        super().__init__()
        self.kind = resolve_perceptual(kind)
        if self.kind == "none":
            raise VQCNIRError("PerceptualLoss('none'): leave the perceptual loss out instead")
        from ..metrics.lpips import load_lpips, load_stlpips

        self.net = load_lpips("vgg") if self.kind == "lpips_vgg" else load_stlpips("vgg")
        self.net.requires_grad_(False).eval()

    def train(self, mode: bool = True):  # the loss network always stays in eval mode
        return super().train(False)

    def forward(self, restored: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return self.net(restored.float(), gt.float()).mean()
