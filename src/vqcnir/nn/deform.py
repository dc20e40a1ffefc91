"""Modulated deformable convolution (DCNv2), 3x3, stride 1, padding 1.

On GPUs we call ``torchvision.ops.deform_conv2d``. Its CPU kernel is slow (about a third of the
whole model's time on CPU for 5 % of the FLOPs, and its backward pass half of a CPU training
step), so on CPU we compute the same thing with ``grid_sample`` (a vectorised bilinear sampler) for the
9 taps of each offset group, times the mask, then one matmul. Both follow the same sampling rule:
each bilinear corner outside the image reads 0. The only difference is float rounding of the
sampling positions (grid_sample takes them normalised to [-1, 1]): about 1e-5 at 300 px.

In an ONNX export (``vqcnir.export``) the op becomes ONNX ``DeformConv`` (opset 19) or, with
``onnx_style("gridsample")``, the same grid_sample graph for runtimes that lack DeformConv.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d as _torchvision_deform_conv2d

from . import fastpath

# Output pixels per chunk on the CPU path: bounds the im2col buffer (pixels x 9 x C floats).
_CPU_CHUNK_ELEMENTS = 1 << 23
ONNX_STYLES = ("deformconv", "gridsample")
_onnx_style = "deformconv"


@contextlib.contextmanager
def onnx_style(style: str):
    """Write the deformable convs of an ONNX export as ``deformconv`` or ``gridsample`` nodes."""
    global _onnx_style
    if style not in ONNX_STYLES:
        raise ValueError(f"unknown ONNX deformable-conv style {style!r}; choose one of {', '.join(ONNX_STYLES)}")
    previous, _onnx_style = _onnx_style, style
    try:
        yield
    finally:
        _onnx_style = previous


def deform_conv3x3(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """Deformable 3x3 conv with torchvision's offset layout: offset (B, 2*G*9, H, W) as (dy, dx)
    pairs per group and tap, mask (B, G*9, H, W)."""
    if torch.onnx.is_in_onnx_export():
        return _deform_conv3x3_onnx(x, offset, mask, weight, bias)
    # CPU, and also MPS and other devices for which torchvision has no deform_conv2d kernel
    if fastpath.ENABLED and x.device.type != "cuda":
        # Sampling positions need float32 (bf16 cannot even address pixel 300 exactly).
        out = _deform_conv3x3_cpu(x.float(), offset.float(), mask.float(), weight.float(),
                                  None if bias is None else bias.float())
        return out.to(x.dtype)
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        # torchvision registers no CPU autocast kernel for this op: run it in float32
        with torch.autocast("cpu", enabled=False):
            return _torchvision_deform_conv2d(x.float(), offset.float(), weight.float(),
                                              None if bias is None else bias.float(), padding=1, mask=mask.float())
    return _torchvision_deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)


def _deform_conv3x3_onnx(x, offset, mask, weight, bias):
    """The export graph, in float32 like the CPU path (positions need it, also in an fp16 model);
    one chunk, since the chunk count would depend on the image size."""
    dtype = x.dtype
    x, offset, mask, weight = x.float(), offset.float(), mask.float(), weight.float()
    bias = None if bias is None else bias.float()
    if _onnx_style == "gridsample":
        out = _sample_and_multiply(_groups_as_batch(x, mask), offset, mask, weight.reshape(weight.shape[0], -1),
                                   0, x.shape[2])
        out = out if bias is None else out + bias.view(1, -1, 1)
        return out.view(x.shape[0], -1, *x.shape[2:]).to(dtype)
    return _torchvision_deform_conv2d(x, offset, weight, bias, padding=1, mask=mask).to(dtype)


def _deform_conv3x3_cpu(x, offset, mask, weight, bias):
    b, c, h, w = x.shape
    c_out = weight.shape[0]
    # Columns come out ordered (channel, tap): exactly the weight's own (c_in, 3, 3) order.
    w_mat = weight.reshape(c_out, c * 9)
    out = x.new_empty(b, c_out, h * w)
    rows_per_chunk = max(1, _CPU_CHUNK_ELEMENTS // max(1, 9 * c * w))
    x_groups = _groups_as_batch(x, mask)  # once: a channels-last input is copied here
    for y0 in range(0, h, rows_per_chunk):
        y1 = min(h, y0 + rows_per_chunk)
        out[:, :, y0 * w:y1 * w] = _sample_and_multiply(x_groups, offset, mask, w_mat, y0, y1)
    if bias is not None:
        out += bias.view(1, -1, 1)
    return out.view(b, c_out, h, w)


def _groups_as_batch(x, mask):
    """One "image" per (batch, offset group), so grid_sample samples each group at its own offsets."""
    b, c, h, w = x.shape
    groups = mask.shape[1] // 9
    return x.contiguous().reshape(b * groups, c // groups, h, w)


def _sample_and_multiply(x_groups, offset, mask, w_mat, y0, y1):
    """Output rows y0..y1 (without bias) as (B, C_out, rows * W) from the input as
    ``_groups_as_batch`` lays it out: grid_sample the 9 taps of each offset group, times the
    mask, then one matmul."""
    b, groups = mask.shape[0], mask.shape[1] // 9
    _bg, cg, h, w = x_groups.shape
    c = groups * cg
    tap_y = (torch.arange(3, dtype=x_groups.dtype).repeat_interleave(3) - 1).view(1, 1, 9, 1)
    tap_x = (torch.arange(3, dtype=x_groups.dtype).repeat(3) - 1).view(1, 1, 9, 1)
    # pixel -> [-1, 1] for align_corners=True; zeros padding then matches torchvision's rule
    scale_y, scale_x = 2.0 / torch.sym_max(h - 1, 1), 2.0 / torch.sym_max(w - 1, 1)
    n = (y1 - y0) * w
    off = offset[:, :, y0:y1].reshape(b, groups, 9, 2, n)
    rows = torch.arange(y0, y1, dtype=x_groups.dtype).view(-1, 1).expand(-1, w).reshape(1, 1, 1, n)
    cols = torch.arange(w, dtype=x_groups.dtype).view(1, -1).expand(y1 - y0, -1).reshape(1, 1, 1, n)
    py = rows + tap_y + off[:, :, :, 0]  # the same sums torchvision forms
    px = cols + tap_x + off[:, :, :, 1]
    grid = torch.stack((px * scale_x - 1, py * scale_y - 1), dim=-1).reshape(b * groups, 9, n, 2)
    sampled = F.grid_sample(x_groups, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    sampled = sampled.view(b, groups, cg, 9, n)
    chunk_mask = mask[:, :, y0:y1].reshape(b, groups, 1, 9, n)
    # in place when no gradient is recorded (autograd needs the unmasked samples)
    sampled = sampled * chunk_mask if torch.is_grad_enabled() else sampled.mul_(chunk_mask)
    return w_mat @ sampled.view(b, c * 9, n)
