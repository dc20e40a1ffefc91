"""Reading and writing images for evaluation, through ``vqcnir.imageio``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..imageio import list_images, read_image, write_image


def read_rgb(path: Path) -> torch.Tensor:
    """The image at ``path`` as a 1×3×H×W float32 tensor in [0, 1] (alpha dropped, grey → RGB)."""
    rgb = read_image(path).rgb
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    """Write H×W×3 float RGB in [0, 1] (or uint8) as an 8-bit file."""
    write_image(path, rgb)


def list_folder(folder: Path) -> list[tuple[Path, Path]]:
    """(file, path relative to ``folder``) for every image below ``folder``, sorted."""
    return list_images([folder], recursive=True)
