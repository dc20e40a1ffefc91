"""Image reading and writing for the data package.

A private stop-gap built on Pillow: when `vqcnir.imageio` settles, these three functions become
thin wrappers around it, and nothing else in `vqcnir.data` has to change.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import VQCNIRError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as float32 H×W×3 RGB in [0, 1] (EXIF orientation applied, alpha dropped)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit grey PNGs: keep the precision instead of Pillow's 8-bit conversion.
                arr = np.asarray(im, dtype=np.float32) / 65535.0
                arr = np.repeat(arr[..., None], 3, axis=2)
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise VQCNIRError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise VQCNIRError(f"cannot read image {path}: {exc}") from None
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0))


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_rgb(path: str | os.PathLike, rgb: np.ndarray, *, compress_level: int = 1,
              quality: int = 95) -> None:
    """Write float RGB in [0, 1] as 8-bit, atomically (a crash never leaves half a file behind,
    which is what lets `synth` resume by looking at which files exist)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(to_uint8(rgb))
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        if fmt == "JPEG":
            im.save(tmp, format="JPEG", quality=quality)
        else:
            im.save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"),
                    compress_level=compress_level)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


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
