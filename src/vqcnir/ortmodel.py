"""The ONNX Runtime backend: an exported restorer, shaped like the torch model for the engine.

``OnnxRuntimeModel`` is a module without parameters whose forward hands the padded tile to an
ONNX Runtime session; it carries ``config`` (from the file's metadata) and ``device``, which is
all ``vqcnir.engine`` asks of a model, so padding, tiling, memory budget and I/O stay there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import VQCNIRError
from .export import INPUT_NAME, PRECISION_KEY, WEIGHTS_KEY
from .nn.config import VQCNIRConfig
from .weights import CONFIG_KEY

_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise VQCNIRError("the onnxruntime backend needs ONNX Runtime: pip install 'vqcnir[onnx]'") from None
    return onnxruntime


def onnxruntime_has_cuda() -> bool:
    try:
        return _PROVIDERS["cuda"] in _import_onnxruntime().get_available_providers()
    except VQCNIRError:
        return False


class OnnxRuntimeModel(nn.Module):
    """Runs a ``vqcnir export`` file; called like ``VQCNIR`` on N x 3 x H x W tensors (H, W multiples of 8)."""

    # ONNX Runtime's working memory against torch's, for the engine's tile chooser: at 512 px
    # (paper size, release padding) the process peaked at 5759 MiB against torch's 3588, about
    # 1.75x once the shared baseline is taken off (benchmarks/restore_speed.py); rounded up.
    working_memory_factor = 2.0

    def __init__(self, path: str | os.PathLike, device: torch.device, threads: int | None = None):
        super().__init__()
        ort = _import_onnxruntime()
        path = Path(path)
        if device.type not in _PROVIDERS:
            raise VQCNIRError(f"the onnxruntime backend runs on cpu or cuda, not {device.type}")
        if _PROVIDERS[device.type] not in ort.get_available_providers():
            raise VQCNIRError("ONNX Runtime here has no CUDA provider (pip install onnxruntime-gpu), "
                              "or use --device cpu")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only
        provider = _PROVIDERS[device.type]
        if device.type == "cuda":
            provider = (provider, {"device_id": device.index or 0})
        try:
            self.session = ort.InferenceSession(str(path), options, providers=[provider])
        except Exception as e:  # ONNX Runtime raises its own Fail/InvalidGraph/... classes
            raise VQCNIRError(f"{path}: not a model ONNX Runtime can load ({str(e).splitlines()[0][:160]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if CONFIG_KEY not in meta:
            raise VQCNIRError(f"{path}: not an ONNX file from `vqcnir export` (no network config in its metadata)")
        self.config = VQCNIRConfig.from_dict(json.loads(meta[CONFIG_KEY]))
        self.weights_name = meta.get(WEIGHTS_KEY, "")
        self.precision = meta.get(PRECISION_KEY, "fp32")
        self.device = device
        self.path = path
        (graph_input,) = self.session.get_inputs()
        self._input_dtype = np.float16 if graph_input.type == "tensor(float16)" else np.float32
        # (H, W) of an export with --size, else None
        self.static_size = tuple(graph_input.shape[2:]) if all(isinstance(d, int) for d in graph_input.shape[2:]) else None

    def forward(self, night: torch.Tensor) -> torch.Tensor:
        if self.static_size is not None and tuple(night.shape[-2:]) != self.static_size:
            h, w = self.static_size
            raise VQCNIRError(f"{self.path}: exported for {h}x{w} only (after padding), got "
                              f"{night.shape[-2]}x{night.shape[-1]}; export without --size for any size")
        feed = night.detach().to("cpu", torch.float32).contiguous().numpy().astype(self._input_dtype, copy=False)
        (restored,) = self.session.run(None, {INPUT_NAME: feed})
        return torch.from_numpy(restored.astype(np.float32, copy=False)).to(night.device)

