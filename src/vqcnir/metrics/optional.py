"""Adapters to ``pyiqa`` for MUSIQ, NRQM, PI and BRISQUE — used only when it can run offline.

pyiqa downloads its weights on first use; here that never happens. A metric is available only
when pyiqa imports and every weights file it needs is already in the weights folder: the one
named by ``VQCNIR_PYIQA_WEIGHTS`` (or ``vqcnir evaluate --pyiqa-weights DIR``), else pyiqa's own
cache, ``<torch hub dir>/pyiqa``. Otherwise the metric is reported unavailable with the reason.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from .errors import MetricUnavailable

# metric name here -> (pyiqa metric name, weights files pyiqa would otherwise download)
PYIQA_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "musiq": ("musiq", ("musiq_koniq_ckpt-e95806b9.pth",)),
    "nrqm": ("nrqm", ("NRQM_model.mat",)),
    "pi": ("pi", ("NRQM_model.mat", "niqe_modelparameters.mat")),
    "brisque": ("brisque", ("brisque_svm_weights.pth",)),
}
ENV_WEIGHTS = "VQCNIR_PYIQA_WEIGHTS"


def pyiqa_weights_dir() -> Path:
    given = os.environ.get(ENV_WEIGHTS)
    return Path(given) if given else Path(torch.hub.get_dir()) / "pyiqa"


def check_pyiqa(name: str) -> None:
    """Raise MetricUnavailable (with the reason) unless ``name`` can run through pyiqa offline."""
    _, files = PYIQA_METRICS[name]
    if importlib.util.find_spec("pyiqa") is None:
        raise MetricUnavailable(f"{name} needs the 'pyiqa' package (pip install pyiqa), which is not installed")
    folder = pyiqa_weights_dir()
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise MetricUnavailable(
            f"{name} needs pyiqa's weights {', '.join(missing)} in {folder} "
            f"(point --pyiqa-weights or {ENV_WEIGHTS} at a folder holding them); "
            "they are not downloaded"
        )


def load_pyiqa(name: str, device: str | torch.device = "cpu"):
    """A callable ``f(restored) -> float64 scores`` running pyiqa's ``name`` offline."""
    check_pyiqa(name)
    try:
        import pyiqa
        import pyiqa.utils.download_util as download_util
    except Exception as error:  # pyiqa imports many optional packages
        raise MetricUnavailable(
            f"{name}: pyiqa is installed but does not import ({type(error).__name__}: {error})"
        ) from None
    # pyiqa resolves every weights file through this folder; all of them are present (checked).
    download_util.DEFAULT_CACHE_DIR = str(pyiqa_weights_dir())
    pyiqa_name, _ = PYIQA_METRICS[name]
    metric = pyiqa.create_metric(pyiqa_name, device=torch.device(device), as_loss=False)

    def run(restored: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return metric(restored.float()).reshape(-1).to(torch.float64).cpu()

    return run


def pyiqa_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("pyiqa")
    except Exception:
        return None
