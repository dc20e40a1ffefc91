"""The small Python API: ``load_model(weights)`` and ``restore(model, image)``."""

from __future__ import annotations

import os

import numpy as np
import torch

from .backends import backend_device, load_restorer, resolve_backend
from .engine import RestoreOptions, restore_tensor
from .errors import VQCNIRError
from .imagefiles import luma
from .zoo import resolve_weights


def load_model(weights: str | os.PathLike | None = None, device: str = "auto", backend: str = "auto") -> torch.nn.Module:
    """Load a restorer for inference: the bundled default model (``weights=None``), a model name
    from ``vqcnir models``, a checkpoint (official ``.pth``, bare state dict or safetensors) or a
    ``vqcnir export`` ONNX file. ``backend``: torch, onnxruntime, or auto (onnxruntime for ``.onnx``)."""
    path = resolve_weights(weights)
    backend = resolve_backend(path, backend)
    return load_restorer(path, backend_device(device, backend), backend)


def restore(model: torch.nn.Module, image, options: RestoreOptions | None = None, **option_values):
    """Restore one image and return the same kind of thing.

    ``image`` is a NumPy uint8/uint16 array (H x W, H x W x 1, H x W x 3 or H x W x 4: grey is
    restored as RGB and returned grey, alpha passes through untouched) or a float tensor in
    [0, 1] shaped 3 x H x W or N x 3 x H x W (returned unclamped, same shape, on the input's device).
    Keyword arguments are ``RestoreOptions`` fields (pad_mode, precision, tile, tile_overlap,
    memory_budget, self_ensemble).
    """
    options = options or RestoreOptions(**option_values)
    if isinstance(image, torch.Tensor):
        if not image.is_floating_point():
            raise VQCNIRError("a tensor image must be float in [0, 1]")
        batch = image if image.ndim == 4 else image.unsqueeze(0)
        restored = restore_tensor(model, batch, options).to(image.device)
        return restored if image.ndim == 4 else restored[0]
    if not isinstance(image, np.ndarray):
        raise VQCNIRError(f"expected a NumPy array or a torch tensor, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise VQCNIRError(f"expected a uint8 or uint16 array, got {image.dtype}")
    squeeze = image.ndim == 2
    pixels = image[..., None] if squeeze else image
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise VQCNIRError(f"expected H x W, H x W x 1, H x W x 3 or H x W x 4, got shape {image.shape}")
    peak = float(np.iinfo(image.dtype).max)
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels, 3, axis=2)
    x = torch.from_numpy(colour.astype(np.float32) / peak).permute(2, 0, 1).unsqueeze(0)
    y = restore_tensor(model, x, options)[0].permute(1, 2, 0).cpu().numpy()
    if pixels.shape[2] == 1:
        y = luma(y)[..., None]  # BT.601, the usual way a restored grey photo goes back to grey
    out = np.round(np.clip(y, 0, 1) * peak).astype(image.dtype)
    if pixels.shape[2] == 4:
        out = np.concatenate([out, pixels[..., 3:]], axis=2)
    return out[..., 0] if squeeze else out
