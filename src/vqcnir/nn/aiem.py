"""AIEM: the Adaptive Illumination Enhancement Module of the stage-2 encoder, and its IMAConv."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import LKA, LayerNorm2d, SimpleGate, conv1x1


class IMAConv(nn.Module):
    """Illumination mutual-affine conv.

    The channels are split into ``splits`` chunks. Each chunk is brightened by ``curves`` steps of a
    Zero-DCE light-enhancement curve ``v + a * v * (1 - v)`` whose per-pixel strength ``a`` in (0, 1)
    is predicted from the *other* chunks (the mutual part), then convolved by its own 3x3 conv.
    """

    def __init__(self, channels: int, splits: int = 4, curves: int = 3):
        super().__init__()
        base = channels // splits
        self.split_sizes = [base] * (splits - 1) + [channels - base * (splits - 1)]
        for i, size in enumerate(self.split_sizes):
            others = channels - size
            self.add_module(
                f"predictA{i}",
                nn.Sequential(
                    nn.Conv2d(others, base, 5, padding=2),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(base, base, 3, padding=1),
                    nn.ReLU(inplace=True),
                    conv1x1(base, curves),
                    nn.Sigmoid(),
                ),
            )
            self.add_module(f"conv{i}", nn.Conv2d(size, size, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = list(torch.split(x, self.split_sizes, dim=1))
        outputs = []
        for i, chunk in enumerate(chunks):
            others = torch.cat(chunks[:i] + chunks[i + 1:], dim=1)
            strengths = getattr(self, f"predictA{i}")(others)
            # clamp to [0, 1] written as the release does, so the numbers match it bit for bit
            v = F.relu(chunk) - F.relu(chunk - 1)
            for n in range(strengths.shape[1]):
                v = v + strengths[:, n:n + 1] * v * (1 - v)
            outputs.append(getattr(self, f"conv{i}")(v))
        return torch.cat(outputs, dim=1)


class AIEM(nn.Module):
    """NAFNet-style block: a spatial half (channel attention x large kernel x gate) and an FFN half
    holding IMAConv. Residual scales start at zero, so a fresh block is the identity."""

    def __init__(self, channels: int, splits: int = 4, curves: int = 3):
        super().__init__()
        wide = 2 * channels
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.conv1 = conv1x1(channels, wide)
        self.conv2 = nn.Conv2d(wide, wide, 3, padding=1, groups=wide)
        self.conv3 = conv1x1(channels, channels)
        self.sca1 = LKA(wide, channels)
        self.sca2 = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv1x1(wide, channels))
        self.conv4 = conv1x1(channels, wide)
        self.IMAC = IMAConv(channels, splits, curves)
        self.conv5 = conv1x1(channels, channels)
        self.norm1 = LayerNorm2d(channels)
        self.norm2 = LayerNorm2d(channels)
        self.gate = SimpleGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.conv2(self.conv1(self.norm1(x)))
        t = self.sca2(t) * self.sca1(t) * self.gate(t)
        y = x + self.beta * self.conv3(t)
        u = self.IMAC(self.gate(self.conv4(self.norm2(y))))
        return y + self.gamma * self.conv5(u)


class EnhanceLayers(nn.Module):
    """The stack of AIEM blocks at 1/8 scale (``multiscale_encoder.blocks.3.blks.*``)."""

    def __init__(self, channels: int, num_blocks: int, splits: int, curves: int):
        super().__init__()
        self.blks = nn.ModuleList(AIEM(channels, splits, curves) for _ in range(num_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blks:
            x = blk(x)
        return x
