"""Reading and writing images for evaluation.

Uses ``vqcnir.imageio`` (EXIF orientation, 8/16-bit, grey, alpha) when it is importable, else a
small Pillow reader, so the metrics work on their own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import VQCNIRError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float32) / 65535.0
                return np.repeat(a[..., None], 3, axis=2)
            return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as error:
        raise VQCNIRError(f"{path}: cannot read the image ({error})") from None


def read_rgb(path: Path) -> torch.Tensor:
    """The image at ``path`` as a 1×3×H×W float32 tensor in [0, 1] (alpha dropped, grey → RGB)."""
    try:
        from ..imageio import read_image
    except ImportError:
        rgb = _read_pillow(Path(path))
    else:
        rgb = read_image(path).rgb
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    """Write H×W×3 float RGB in [0, 1] (or uint8) as an 8-bit file."""
    try:
        from ..imageio import write_image
    except ImportError:
        from PIL import Image

        if rgb.dtype != np.uint8:
            rgb = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(path)
    else:
        write_image(path, rgb)


def list_folder(folder: Path) -> list[tuple[Path, Path]]:
    """(file, path relative to ``folder``) for every image below ``folder``, sorted."""
    try:
        from ..imageio import list_images
    except ImportError:
        files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        return [(p, p.relative_to(folder)) for p in files]
    return list_images([folder], recursive=True)
