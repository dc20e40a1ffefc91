"""U-Net discriminator with spectral normalisation (the design Real-ESRGAN introduced and FeMaSR
trains VQ restorers with): a per-pixel realness map, so it judges local texture everywhere.

Three stride-2 downsamplings, three nearest-neighbour upsamplings with additive skips, two more
convs and a 1-channel head. Every conv except the first and the head is spectrally normalised;
activations are LeakyReLU(0.2). Inputs need H and W divisible by 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class UNetDiscriminatorSN(nn.Module):
    """``forward(image)`` maps (B, C, H, W) in [0, 1] to raw logits (B, 1, H, W)."""

    def __init__(self, in_channels: int = 3, width: int = 64, skip_connection: bool = True):
        super().__init__()
        self.skip_connection = skip_connection
        w = width

        def sn(c_in, c_out, k, s, p):
            return spectral_norm(nn.Conv2d(c_in, c_out, k, s, p, bias=False))

        self.conv0 = nn.Conv2d(in_channels, w, 3, 1, 1)
        # encoder: 1 -> 1/2 -> 1/4 -> 1/8
        self.conv1 = sn(w, 2 * w, 4, 2, 1)
        self.conv2 = sn(2 * w, 4 * w, 4, 2, 1)
        self.conv3 = sn(4 * w, 8 * w, 4, 2, 1)
        # decoder back to full resolution
        self.conv4 = sn(8 * w, 4 * w, 3, 1, 1)
        self.conv5 = sn(4 * w, 2 * w, 3, 1, 1)
        self.conv6 = sn(2 * w, w, 3, 1, 1)
        self.conv7 = sn(w, w, 3, 1, 1)
        self.conv8 = sn(w, w, 3, 1, 1)
        self.conv9 = nn.Conv2d(w, 1, 3, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        x0 = act(self.conv0(image))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))

        def up(t, conv, skip):
            t = act(conv(F.interpolate(t, scale_factor=2, mode="nearest")))
            return t + skip if self.skip_connection else t

        x = up(x3, self.conv4, x2)
        x = up(x, self.conv5, x1)
        x = up(x, self.conv6, x0)
        x = act(self.conv7(x))
        x = act(self.conv8(x))
        return self.conv9(x)
