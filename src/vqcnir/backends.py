"""Which runtime executes the network: torch (the default) or ONNX Runtime; one loader for the
CLI and the API, so both pick the backend by the same rules."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from .engine import choose_device, prepare_for_inference
from .errors import VQCNIRError

BACKENDS = ("auto", "torch", "onnxruntime")
ONNX_SUFFIX = ".onnx"


def resolve_backend(weights: Path, backend: str = "auto") -> str:
    """``auto``: onnxruntime for an ``.onnx`` file, torch otherwise."""
    if backend not in BACKENDS:
        raise VQCNIRError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    is_onnx = weights.suffix.lower() == ONNX_SUFFIX
    if backend == "auto":
        return "onnxruntime" if is_onnx else "torch"
    if backend == "torch" and is_onnx:
        raise VQCNIRError(f"{weights}: an ONNX file runs with --backend onnxruntime, not torch")
    return backend


def backend_device(name: str, backend: str) -> torch.device:
    """``engine.choose_device``, except that ``auto`` with onnxruntime takes CUDA only when this
    ONNX Runtime has its CUDA provider (and never MPS, which it has no provider for)."""
    if backend != "onnxruntime" or name != "auto":
        return choose_device(name)
    from .ortmodel import onnxruntime_has_cuda

    cuda = torch.cuda.is_available() and onnxruntime_has_cuda()
    return torch.device("cuda" if cuda else "cpu")


def load_restorer(weights: Path, device: torch.device, backend: str = "auto",
                  precision: str = "fp32") -> torch.nn.Module:
    """A model ready for ``engine.restore_tensor``. With onnxruntime and a torch checkpoint, the
    checkpoint is exported to a temporary ONNX file first (``vqcnir export`` keeps one for reuse)."""
    from .weights import load_network

    backend = resolve_backend(weights, backend)
    if backend == "onnxruntime" and precision != "fp32":
        raise VQCNIRError(f"--precision {precision} is for the torch backend; an ONNX model computes in the "
                          "precision it was exported with (vqcnir export --precision)")
    if backend == "torch":
        return prepare_for_inference(load_network(weights), device)
    from .ortmodel import OnnxRuntimeModel

    if weights.suffix.lower() == ONNX_SUFFIX:
        return OnnxRuntimeModel(weights, device)
    from .export import export_onnx

    print(f"exporting {weights.name} to ONNX for this run (a minute or more; `vqcnir export` saves it for reuse)",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="vqcnir-onnx-") as folder:
        path = export_onnx(load_network(weights), Path(folder) / "model.onnx", weights_name=weights.name)
        return OnnxRuntimeModel(path, device)  # the session holds its own copy of the graph
