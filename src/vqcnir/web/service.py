"""What the web page does, without the web: check an uploaded photo, restore it, write the result.

The page's handlers are thin adapters over ``PhotoRestorer.restore``; tests call it directly.
Everything the CLI decides (device, precision, tiling under the memory budget, 8/16-bit and
format of the output) is decided by the same engine and image I/O here.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..api import load_model
from ..engine import RESTORE_PRECISIONS, RestoreOptions, count_passes, precision_dtype, restore_tensor
from ..errors import VQCNIRError
from ..imagefiles import read_image, to_tensor, to_uint, write_image
from ..zoo import DEFAULT, MODELS
from . import DEFAULT_MAX_MEGAPIXELS

PREVIEW_SIDE = 2048  # the before/after slider shows at most this many pixels a side
KEEP_RESULTS_SECONDS = 3600  # results older than this are deleted when the next photo comes in


@dataclass
class RestoredPhoto:
    night_preview: np.ndarray      # H x W x 3 uint8, at most PREVIEW_SIDE a side
    restored_preview: np.ndarray   # the same size as night_preview
    output: Path                   # full resolution, in the input's format and bit depth
    seconds: float
    model: str
    summary: str                   # one line for the page


def model_label(spec: str) -> str:
    """The name a --weights value gets in the page's model list: a zoo name, or the file's name."""
    return spec if spec in MODELS and not Path(spec).exists() else Path(spec).name


class PhotoRestorer:
    """The loaded models and the limits of one server. ``restore`` runs one photo at a time
    (a lock), so a forward pass always has the whole memory budget to itself."""

    def __init__(self, models: dict[str, torch.nn.Module], work_dir: Path,
                 max_megapixels: float = DEFAULT_MAX_MEGAPIXELS, memory_budget: float | None = None):
        if not models:
            raise VQCNIRError("no model to serve")
        if max_megapixels <= 0:
            raise VQCNIRError("--max-megapixels must be positive")
        self.models = models
        self.work_dir = Path(work_dir)
        self.max_megapixels = max_megapixels
        self.memory_budget = memory_budget  # bytes; None = the engine's default for the device
        self.device = next(next(iter(models.values())).parameters()).device
        self._lock = threading.Lock()

    @classmethod
    def from_weights(cls, weights: list[str], work_dir: Path, device: str = "auto", **limits) -> "PhotoRestorer":
        """The bundled default model plus each ``--weights`` NAME or PATH, loaded now so that a
        bad checkpoint stops the server before it starts. The first ``--weights`` comes first."""
        specs = [*weights, DEFAULT] if DEFAULT not in weights else list(weights)
        models: dict[str, torch.nn.Module] = {}
        for spec in specs:
            label = model_label(spec)
            if label in models:
                raise VQCNIRError(f"--weights {spec}: two models would both be called {label!r}; rename one file")
            models[label] = load_model(spec, device=device)
        return cls(models, work_dir, **limits)

    @property
    def model_names(self) -> list[str]:
        return list(self.models)

    def precisions(self) -> list[str]:
        """The precisions this server's device can run (fp16 needs a GPU)."""
        supported = []
        for name in RESTORE_PRECISIONS:
            try:
                precision_dtype(name, self.device)
                supported.append(name)
            except VQCNIRError:
                pass
        return supported

    def restore(self, path: str | Path, model: str, self_ensemble: bool = False, precision: str = "fp32",
                progress: Callable[[int, int], None] | None = None) -> RestoredPhoto:
        """Restore one uploaded file. ``progress(done, total)`` is called after each tile pass.
        Errors name the file by its own name, never by the server's folders."""
        path = Path(path)
        try:
            return self._restore(path, model, self_ensemble, precision, progress)
        except VQCNIRError as error:
            raise VQCNIRError(str(error).replace(str(path), path.name)) from None

    def _restore(self, path: Path, model_name: str, self_ensemble: bool, precision: str,
                 progress: Callable[[int, int], None] | None) -> RestoredPhoto:
        model = self.models.get(model_name)
        if model is None:
            raise VQCNIRError(f"unknown model {model_name!r}; this server has {', '.join(self.models)}")
        if precision not in self.precisions():
            raise VQCNIRError(f"precision {precision!r} is not available here; choose {', '.join(self.precisions())}")
        options = RestoreOptions(precision=precision, memory_budget=self.memory_budget,
                                 self_ensemble=bool(self_ensemble)).validate()
        # refused from the header, before any pixel is decoded, above the server's limit
        image = read_image(path, max_megapixels=self.max_megapixels)
        x = to_tensor(image.rgb)
        with self._lock:
            total = count_passes(model, image.height, image.width, options)
            done = 0

            def step() -> None:
                nonlocal done
                done += 1
                if progress is not None:
                    progress(done, total)

            start = time.perf_counter()
            try:
                y = restore_tensor(model, x, options, progress=step)
            except torch.OutOfMemoryError:
                raise VQCNIRError(f"{path}: out of memory; restart the server with a smaller --memory-budget") from None
            seconds = time.perf_counter() - start
        rgb = y[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
        output = self._result_path(path)
        write_image(output, rgb, alpha=image.alpha, bit_depth=image.bit_depth, grey=image.grey)
        ensemble = ", self-ensemble" if self_ensemble else ""
        summary = (f"{path.name}: {image.width}x{image.height}, restored in {seconds:.2f} s with model "
                   f"{model_name} ({precision}{ensemble}, {total} pass{'es' if total > 1 else ''}); "
                   f"download: {output.name}, {image.bit_depth}-bit {output.suffix.lstrip('.').upper()}")
        night, restored = _previews(image.rgb, rgb)
        return RestoredPhoto(night, restored, output, seconds, model_name, summary)

    def _result_path(self, upload: Path) -> Path:
        """A fresh folder per result, so two users' photos of the same name never collide."""
        self._forget_old_results()
        folder = self.work_dir / uuid.uuid4().hex
        return folder / f"{upload.stem}-restored{upload.suffix}"

    def _forget_old_results(self) -> None:
        if not self.work_dir.is_dir():
            return
        cutoff = time.time() - KEEP_RESULTS_SECONDS
        for folder in self.work_dir.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


def _previews(night: np.ndarray, restored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-bit copies for the slider, shrunk so the longer side is at most PREVIEW_SIDE."""
    height, width = night.shape[:2]
    scale = PREVIEW_SIDE / max(height, width)
    pair = []
    for rgb in (night, restored):
        pixels = to_uint(rgb, 8)
        if scale < 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))
        pair.append(pixels)
    return pair[0], pair[1]
