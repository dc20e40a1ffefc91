"""Named models: the bundled default and the authors' checkpoint.

``resolve_weights`` turns what a user typed after ``--weights`` (nothing, a model name or a path)
into a checkpoint file. Scores are the ones measured for the model card (MODEL_CARD.md, "Results");
they are copied here by hand from the ``vqcnir evaluate`` run the card shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import VQCNIRError

DEFAULT = "default"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    summary: str
    preset: str                       # VQCNIRConfig preset the weights were trained with
    filename: str | None = None       # file in vqcnir/bundled/, None when not bundled
    obtain: str = ""                  # how to get the weights when they are not bundled
    scores: dict[str, float] = field(default_factory=dict)
    scored_on: str = ""


MODELS: dict[str, ModelEntry] = {
    DEFAULT: ModelEntry(
        name=DEFAULT,
        summary="fast preset (no AIEM, no DBCA, codebook at 1/4 scale) trained by this project (CPU, then "
                "10 minutes of a GPU) on night+blur pairs synthesised from free wallpaper and scikit-image photos "
                "(bundled)",
        preset="fast",
        filename="vqcnir-fast-night.safetensors",
        scores={"psnr": 20.66, "gt_mean_psnr": 22.38, "ssim": 0.6624, "stlpips_alex": 0.4587},
        scored_on="held-out synthetic test split, 48 frames from photos never used in training (MODEL_CARD.md)",
    ),
    "paper": ModelEntry(
        name="paper",
        summary="the authors' LOL-Blur model (VQCNIR_LOLBlur_G.pth, 47.9 M parameters, not bundled)",
        preset="paper",
        obtain="the authors' checkpoint VQCNIR_LOLBlur_G.pth is distributed from a file host linked by "
               "their VQCNIR release (Zou et al., AAAI 2024), not by this project; download it where "
               "you can, then pass its path: vqcnir restore --weights VQCNIR_LOLBlur_G.pth ...",
        scores={"psnr": 27.79, "ssim": 0.875},
        scored_on="LOL-Blur test set, as reported in the paper (not measured here)",
    ),
}


def bundled_path(entry: ModelEntry) -> Path:
    """Where a bundled model's file sits inside the installed package."""
    if entry.filename is None:
        raise VQCNIRError(f"model '{entry.name}' is not bundled: {entry.obtain}")
    return Path(str(resources.files("vqcnir") / "bundled" / entry.filename))


def resolve_weights(spec: str | os.PathLike | None) -> Path:
    """Checkpoint file for ``spec``: None (the default model), a model name, or a path."""
    if spec is None:
        spec = DEFAULT
    text = os.fspath(spec)
    entry = MODELS.get(text)
    if entry is not None and not Path(text).exists():
        path = bundled_path(entry)
        if not path.is_file():
            raise VQCNIRError(f"the bundled model file {entry.filename} is missing from this install; "
                              "reinstall vqcnir or pass --weights PATH")
        return path
    path = Path(text)
    if path.is_dir():
        from .weights import PTH_SUFFIXES, SAFETENSORS_SUFFIX

        suffixes = (*PTH_SUFFIXES, SAFETENSORS_SUFFIX)
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in suffixes)[:3]
        hint = f" (it holds {', '.join(found)})" if found else ""
        raise VQCNIRError(f"--weights {text}: is a folder; give the checkpoint file inside it{hint}")
    if not path.is_file():
        names = ", ".join(MODELS)
        raise VQCNIRError(f"--weights {text}: no such file, and not a model name ({names}; see `vqcnir models`)")
    return path
