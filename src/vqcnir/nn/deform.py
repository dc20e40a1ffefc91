"""Modulated deformable convolution (DCNv2), 3x3, stride 1, padding 1.

On GPUs we call ``torchvision.ops.deform_conv2d``. Its CPU kernel is slow (about a third of the
whole model's time on CPU while doing 5 % of the FLOPs), so on CPU we compute the same thing as
bilinear gathers of the 9 taps per offset group followed by one matmul. Both use torchvision's
sampling rule: a tap outside the image by a full pixel reads 0, and each bilinear corner outside
the image reads 0.
"""

from __future__ import annotations

import torch
from torchvision.ops import deform_conv2d as _torchvision_deform_conv2d

# Output pixels per chunk on the CPU path: bounds the im2col buffer (pixels x 9 x C floats).
_CPU_CHUNK_ELEMENTS = 1 << 23


def deform_conv3x3(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """Deformable 3x3 conv with torchvision's offset layout: offset (B, 2*G*9, H, W) as (dy, dx)
    pairs per group and tap, mask (B, G*9, H, W)."""
    if x.device.type != "cpu" or torch.is_grad_enabled() and (
        x.requires_grad or offset.requires_grad or weight.requires_grad
    ):
        # Training and accelerators go through torchvision's op (it has the backward pass).
        return _torchvision_deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)
    # Sampling positions need float32 (bf16 cannot even address pixel 300 exactly).
    out = _deform_conv3x3_cpu(x.float(), offset.float(), mask.float(), weight.float(),
                              None if bias is None else bias.float())
    return out.to(x.dtype)


def _deform_conv3x3_cpu(x, offset, mask, weight, bias):
    b, c, h, w = x.shape
    c_out = weight.shape[0]
    groups = mask.shape[1] // 9
    cg = c // groups
    # Pixels as rows, one row per (batch, group, pixel); reading a row gives that group's channels.
    # A trailing zero row absorbs every corner that falls outside the image.
    rows = x.permute(0, 2, 3, 1).reshape(b, h * w, groups, cg).transpose(1, 2).reshape(b * groups * h * w, cg)
    rows = torch.cat([rows, rows.new_zeros(1, cg)])
    zero_row = rows.shape[0] - 1
    # Weight as (9 taps x groups x channels-per-group) -> out, matching the gathered columns.
    w_mat = weight.reshape(c_out, groups, cg, 9).permute(3, 1, 2, 0).reshape(9 * c, c_out)

    out = x.new_empty(b, h * w, c_out)
    rows_per_chunk = max(1, _CPU_CHUNK_ELEMENTS // max(1, 9 * c * w))
    ky = torch.arange(3, device=x.device, dtype=x.dtype).repeat_interleave(3) - 1  # tap rows
    kx = torch.arange(3, device=x.device, dtype=x.dtype).repeat(3) - 1  # tap columns
    base_index = (torch.arange(b).view(b, 1, 1, 1) * groups + torch.arange(groups).view(1, groups, 1, 1)) * (h * w)

    for y0 in range(0, h, rows_per_chunk):
        y1 = min(h, y0 + rows_per_chunk)
        n = (y1 - y0) * w
        off = offset[:, :, y0:y1].reshape(b, groups, 9, 2, n)
        m = mask[:, :, y0:y1].reshape(b, groups, 9, n)
        yy = torch.arange(y0, y1, dtype=x.dtype).view(-1, 1).expand(-1, w).reshape(1, 1, 1, n)
        xx = torch.arange(w, dtype=x.dtype).view(1, -1).expand(y1 - y0, -1).reshape(1, 1, 1, n)
        py = yy + ky.view(1, 1, 9, 1) + off[:, :, :, 0]
        px = xx + kx.view(1, 1, 9, 1) + off[:, :, :, 1]
        inside = (py > -1) & (py < h) & (px > -1) & (px < w)
        y_lo = py.floor()
        x_lo = px.floor()
        ly = py - y_lo
        lx = px - x_lo
        hy = 1 - ly
        hx = 1 - lx
        y_lo = y_lo.long()
        x_lo = x_lo.long()
        m = m * inside
        cols = None
        for dy, dx, wgt in ((0, 0, hy * hx), (0, 1, hy * lx), (1, 0, ly * hx), (1, 1, ly * lx)):
            yc = y_lo + dy
            xc = x_lo + dx
            valid = (yc >= 0) & (yc < h) & (xc >= 0) & (xc < w)
            idx = torch.where(valid, base_index + yc * w + xc, zero_row)
            # (b, groups, 9, n, cg) gathered, weighted by bilinear weight x modulation mask
            corner = rows[idx]
            scale = (wgt * m).unsqueeze(-1)
            cols = corner.mul_(scale) if cols is None else cols.addcmul_(corner, scale)
        # columns: (b, n, 9, groups, cg) -> (b, n, 9*c)
        cols = cols.permute(0, 3, 2, 1, 4).reshape(b, n, 9 * c)
        out[:, y0 * w:y1 * w] = cols @ w_mat
    if bias is not None:
        out += bias
    # a channels-last view: no copy, and the next convolution prefers that layout anyway
    return out.view(b, h, w, c_out).permute(0, 3, 1, 2)
