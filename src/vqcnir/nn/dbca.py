"""DBCA: Deformable Bi-directional Cross-Attention between decoder D and the codebook decoder G.

Two parts per scale: a channel ("transposed") cross-attention in both directions, then a
deformable alignment whose offsets come from a large-kernel predictor on both features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import LayerNorm2d, conv1x1, conv3x3, group_norm
from .deform import deform_conv3x3


class BidirectionalCrossAttention(nn.Module):
    """Channel cross-attention between F_d (decoder D) and F_g (decoder G).

    One softmax matrix P = softmax(cos(Q_d, Q_g) * scale) over the G channels is used for both
    directions, exactly as the authors' release does; residual scales start at zero.
    """

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = nn.Parameter(torch.ones(heads, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.norm_d = LayerNorm2d(channels)
        self.norm_g = LayerNorm2d(channels)
        self.d_proj1 = conv1x1(channels, channels)  # query of D
        self.g_proj1 = conv1x1(channels, channels)  # query of G
        self.d_proj2 = conv1x1(channels, channels)  # value of D
        self.g_proj2 = conv1x1(channels, channels)  # value of G

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, c, h, w = t.shape
        return t.reshape(b, self.heads, c // self.heads, h * w)

    def forward(self, feat_d: torch.Tensor, feat_g: torch.Tensor):
        b, c, h, w = feat_d.shape
        q_d = F.normalize(self._heads(self.d_proj1(self.norm_d(feat_d))), dim=-1)
        q_g = F.normalize(self._heads(self.g_proj1(self.norm_g(feat_g))), dim=-1)
        v_d = self._heads(self.d_proj2(feat_d))
        v_g = self._heads(self.g_proj2(feat_g))
        attn = (q_d @ q_g.transpose(-2, -1) * self.scale).softmax(dim=-1)
        g_to_d = (attn @ v_g).reshape(b, c, h, w)
        d_to_g = (attn @ v_d).reshape(b, c, h, w)
        return feat_d + self.beta * g_to_d, feat_g + self.gamma * d_to_g


class ModulatedDeformConv(nn.Module):
    """DCNv2 3x3 whose offsets and mask come from ``conv_offset`` applied to a separate feature."""

    def __init__(self, channels: int, deform_groups: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.conv_offset = conv3x3(channels, deform_groups * 3 * 9)
        bound = 1.0 / math.sqrt(channels * 9)
        nn.init.uniform_(self.weight, -bound, bound)
        # zero offsets and a 0.5 mask at the start
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor, offset_feat: torch.Tensor) -> torch.Tensor:
        o1, o2, m = self.conv_offset(offset_feat).chunk(3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        return deform_conv3x3(x, offset, torch.sigmoid(m), self.weight, self.bias)


class DeformableAlignment(nn.Module):
    """Warp the D feature with offsets predicted from (G', D') by a 7x7 large-kernel predictor.

    Returns the warped feature and the offset *feature*, which the next (finer) scale receives
    upsampled.
    """

    def __init__(self, channels: int, prev_offset_channels: int, deform_groups: int, norm_groups: int):
        super().__init__()
        self.offset_conv1 = nn.Sequential(
            conv1x1(2 * channels, channels),
            group_norm(channels, norm_groups),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 7, padding=3, groups=channels),
            group_norm(channels, norm_groups),
            nn.SiLU(),
            conv1x1(channels, channels),
        )
        self.offset_conv2 = nn.Sequential(
            conv3x3(channels + prev_offset_channels, channels),
            group_norm(channels, norm_groups),
            nn.SiLU(),
        )
        self.dcn = ModulatedDeformConv(channels, deform_groups)

    def forward(self, feat_d, feat_g, prev_offset_feat=None):
        offset_feat = self.offset_conv1(torch.cat((feat_g, feat_d), dim=1))
        if prev_offset_feat is not None:
            offset_feat = torch.cat((offset_feat, prev_offset_feat), dim=1)
        offset_feat = self.offset_conv2(offset_feat)
        return self.dcn(feat_d, offset_feat), offset_feat
