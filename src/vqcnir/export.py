"""`vqcnir export`: the restorer as an ONNX graph with dynamic batch, height and width.

The graph maps a night image (N x 3 x H x W, H and W multiples of 8, float in [0, 1]) to the
restored image, unclamped, like ``VQCNIR.forward``; padding, tiling and I/O stay in the engine,
which runs the graph through ``vqcnir.ortmodel``. The model's metadata records the network
config, the weights' name, the precision and how the deformable convs were written.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import torch

from . import __version__
from .imagefiles import atomic_path
from .errors import VQCNIRError
from .nn.deform import ONNX_STYLES, onnx_style
from .weights import CONFIG_KEY

DEFAULT_OPSET = 19  # the first opset with DeformConv
EXPORT_PRECISIONS = ("fp32", "fp16")
INPUT_NAME, OUTPUT_NAME = "night", "restored"
# metadata_props keys besides CONFIG_KEY
WEIGHTS_KEY, PRECISION_KEY, DEFORM_KEY, VERSION_KEY = "vqcnir_weights", "vqcnir_precision", "vqcnir_deform", "vqcnir_version"
_TRACE_SIZE = 64  # the example input's height and width; any multiple of 8 works afterwards


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, weights_name: str, opset: int = DEFAULT_OPSET,
                precision: str = "fp32", deform: str = "deformconv", size: tuple[int, int] | None = None,
                overwrite: bool = False) -> Path:
    """Write ``model`` (a VQCNIR restorer) to ``path`` as ONNX, checked by ``onnx.checker``.

    ``precision="fp16"`` stores weights and activations in half precision (for GPU runtimes; input
    and output are then fp16 too), with the deformable convs and the codebook search in fp32.
    ``deform="gridsample"`` writes the deformable convs with GridSample (opset 16 suffices) for
    runtimes without DeformConv. ``size=(H, W)`` fixes height and width (batch stays dynamic) for
    runtimes that want static shapes; it also exports about 3x faster.
    """
    import onnx

    path = check_destination(path, overwrite)
    if precision not in EXPORT_PRECISIONS:
        raise VQCNIRError(f"unknown export precision {precision!r}; choose one of {', '.join(EXPORT_PRECISIONS)}")
    if deform not in ONNX_STYLES:
        raise VQCNIRError(f"unknown --deform {deform!r}; choose one of {', '.join(ONNX_STYLES)}")
    lowest = 19 if deform == "deformconv" else 17  # DeformConv; LayerNormalization (and GridSample, 16)
    if opset < lowest:
        raise VQCNIRError(f"--opset {opset}: --deform {deform} needs opset {lowest} or later")

    if size is not None and (min(size) < 8 or size[0] % 8 or size[1] % 8):
        raise VQCNIRError(f"--size {size[0]}x{size[1]}: height and width must be multiples of 8")

    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = copy.deepcopy(model).to("cpu", dtype).eval()  # the caller's model stays as it was
    example = torch.rand(1, 3, *(size or (_TRACE_SIZE, _TRACE_SIZE)), dtype=dtype)
    dims = {0: "batch"} if size else {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad(), onnx_style(deform), warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's progress and deprecation chatter
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset, optimize=True,
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=(dims,), verbose=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {
        CONFIG_KEY: json.dumps(model.config.to_dict()),
        WEIGHTS_KEY: weights_name,
        PRECISION_KEY: precision,
        DEFORM_KEY: deform,
        VERSION_KEY: __version__,
    })
    proto.doc_string = ("VQCNIR night-image restorer: night (N x 3 x H x W in [0, 1], H and W multiples of 8) "
                        "-> restored (same shape, unclamped).")
    onnx.checker.check_model(proto, full_check=True)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    return path


def check_destination(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a target that is not an ``.onnx`` file name or that would replace a file unasked."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise VQCNIRError(f"{path}: the exported file's name must end in .onnx")
    if path.is_dir():
        raise VQCNIRError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise VQCNIRError(f"{path}: already exists (pass --overwrite to replace it)")
    return path


def read_metadata(proto) -> dict[str, str]:
    """The model's metadata_props as a dict."""
    return {p.key: p.value for p in proto.metadata_props}
