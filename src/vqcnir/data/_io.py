"""Image reading and writing for the data package.

Reading goes through `vqcnir.imageio`. Writing stays here on purpose: `synth` writes thousands
of 8-bit PNGs, and Pillow's fastest PNG compression level makes that several times quicker.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_path
from ..errors import VQCNIRError
from ..imageio import read_image, to_uint

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as float32 H×W×3 RGB in [0, 1] (EXIF orientation applied, alpha dropped,
    8- and 16-bit alike), through the project's image reader."""
    return read_image(path).rgb


def write_rgb(path: str | os.PathLike, rgb: np.ndarray, *, compress_level: int = 1,
              quality: int = 95) -> None:
    """Write float RGB in [0, 1] as 8-bit, atomically (a crash never leaves half a file behind,
    which is what lets `synth` resume by looking at which files exist)."""
    path = Path(path)
    im = Image.fromarray(to_uint(rgb, 8))
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".jpg", ".jpeg"):
            im.save(tmp, format="JPEG", quality=quality)
        else:
            im.save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"),
                    compress_level=compress_level)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def list_images(root: str | os.PathLike) -> list[Path]:
    """All images under `root` (recursively), sorted by relative path so every machine agrees."""
    root = Path(root)
    if not root.exists():
        raise VQCNIRError(f"folder not found: {root}")
    if not root.is_dir():
        raise VQCNIRError(f"not a folder: {root}")
    files = [p for p in root.rglob("*")
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())
