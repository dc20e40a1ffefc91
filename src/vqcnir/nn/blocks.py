"""Small building blocks shared by the encoder, the codebook decoder G and the main decoder D."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import fastpath


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """The release's GroupNorm: affine, eps 1e-6 (groups is 32 in the paper-size model)."""
    return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)


def conv1x1(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1)


class NormSlot(nn.Module):
    """Holds a norm under the attribute ``norm``: the release's ResBlock keys read ``conv.0.norm.*``."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = group_norm(channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ResBlock(nn.Module):
    """Pre-activation residual block of the encoder and of G: x + conv(act(norm(conv(act(norm(x))))))."""

    def __init__(self, channels: int, norm_groups: int):
        super().__init__()
        self.conv = nn.Sequential(
            NormSlot(channels, norm_groups),
            nn.SiLU(),
            conv3x3(channels, channels),
            NormSlot(channels, norm_groups),
            nn.SiLU(),
            conv3x3(channels, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class ResnetBlock(nn.Module):
    """Residual block of the main decoder D; a 1x1 shortcut when the width changes."""

    def __init__(self, in_ch: int, out_ch: int, norm_groups: int):
        super().__init__()
        self.norm1 = group_norm(in_ch, norm_groups)
        self.conv1 = conv3x3(in_ch, out_ch)
        self.norm2 = group_norm(out_ch, norm_groups)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.residual_func = conv1x1(in_ch, out_ch) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.residual_func(x)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel (biased variance, eps inside the square root)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them (halves the width)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class LKA(nn.Module):
    """Large-kernel feature map: depthwise 5x5, depthwise 7x7 dilated by 3 (19x19 reach), then 1x1."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv0 = nn.Conv2d(in_ch, in_ch, 5, padding=2, groups=in_ch)
        self.conv_spatial = nn.Conv2d(in_ch, in_ch, 7, padding=9, dilation=3, groups=in_ch)
        self.conv1 = conv1x1(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.conv0(x)
        t = dilated_depthwise_by_phases(t, self.conv_spatial) if fastpath.on_cpu(t) else self.conv_spatial(t)
        return self.conv1(t)


def dilated_depthwise_by_phases(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A dilated depthwise conv computed as an undilated one on each of the dilation^2 phases.

    oneDNN has no fast CPU kernel for dilated depthwise convs (LKA's 7x7 dilation-3 conv runs
    about 7x slower than this), but a conv with dilation d only ever mixes pixels whose
    coordinates agree modulo d. So: zero-pad to a multiple of d, split into d*d sub-images, run
    the same kernel undilated with padding / d, interleave back. Same taps, same zeros outside.
    Kept channels-last throughout, the layout oneDNN's depthwise kernels are fast in.
    """
    d = conv.dilation[0]
    b, c, h, w = x.shape
    hd, wd = -(-h // d), -(-w // d)
    x = F.pad(x, (0, wd * d - w, 0, hd * d - h))
    phases = (x.permute(0, 2, 3, 1).reshape(b, hd, d, wd, d, c)
              .permute(2, 4, 0, 1, 3, 5).reshape(d * d * b, hd, wd, c).permute(0, 3, 1, 2))
    y = F.conv2d(phases, conv.weight, conv.bias, padding=conv.padding[0] // d, groups=conv.groups)
    y = (y.permute(0, 2, 3, 1).reshape(d, d, b, hd, wd, c)
         .permute(2, 3, 0, 4, 1, 5).reshape(b, hd * d, wd * d, c).permute(0, 3, 1, 2))
    return y[:, :, :h, :w]
