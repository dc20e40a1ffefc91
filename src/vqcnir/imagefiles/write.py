"""Writing float RGB (plus alpha) as an image file, atomically, in the format of its extension."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import tifffile
from PIL import Image

from ..errors import VQCNIRError, one_line
from .atomic import write_bytes
from .convert import check_bit_depth, luma, to_uint
from .formats import (
    ALPHA_FORMATS,
    DISPLAY_NAMES,
    FORMAT_OF_EXTENSION,
    MAX_SIDE,
    SIXTEEN_BIT_FORMATS,
    supported_list,
)


def _encode_png(pixels: np.ndarray, quality: int, compress_level: int) -> bytes:
    del quality  # PNG is lossless
    import imagecodecs  # Pillow cannot write 16-bit RGB(A) PNGs

    return bytes(imagecodecs.png_encode(np.ascontiguousarray(pixels), level=compress_level))


def _encode_tiff(pixels: np.ndarray, quality: int, compress_level: int) -> bytes:
    del quality, compress_level  # deflate with a horizontal predictor: lossless and readable anywhere
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        pixels,
        photometric="minisblack" if channels <= 2 else "rgb",
        planarconfig="contig" if channels > 1 else None,
        extrasamples=("unassalpha",) if channels in (2, 4) else None,
        compression="zlib",
        predictor=True,
        metadata=None,
        software="vqcnir",
    )
    return buffer.getvalue()


def _encode_pillow(pixels: np.ndarray, fmt: str, quality: int) -> bytes:
    image = Image.fromarray(np.ascontiguousarray(pixels))  # uint8 H×W(×2/3/4): L, LA, RGB, RGBA
    buffer = io.BytesIO()
    if fmt == "JPEG":
        # 4:4:4 chroma: restored detail is the point, so no colour subsampling.
        image.save(buffer, "JPEG", quality=quality, subsampling=0)
    elif fmt == "WEBP":
        image.save(buffer, "WEBP", quality=quality)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


ENCODERS: dict[str, Callable[[np.ndarray, int, int], bytes]] = {
    "PNG": _encode_png,
    "TIFF": _encode_tiff,
    "JPEG": lambda pixels, quality, _level: _encode_pillow(pixels, "JPEG", quality),
    "WEBP": lambda pixels, quality, _level: _encode_pillow(pixels, "WEBP", quality),
    "BMP": lambda pixels, quality, _level: _encode_pillow(pixels, "BMP", quality),
}


def _output_pixels(
    rgb: np.ndarray, alpha: np.ndarray | None, bit_depth: int, grey: bool, fmt: str
) -> np.ndarray:
    """The integer pixels to encode: H×W (grey) or H×W×{2,3,4}."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 3 and rgb.shape[2] == 1:
        rgb = rgb[..., 0]
    if not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)):
        raise ValueError(f"rgb must be H×W×3 (or H×W grey), not shape {rgb.shape}")
    height, width = rgb.shape[:2]
    if grey or rgb.ndim == 2:
        y = to_uint(rgb if rgb.ndim == 2 else luma(rgb), bit_depth)
        colour = y[..., None] if grey else np.repeat(y[..., None], 3, axis=2)
    else:
        colour = to_uint(rgb, bit_depth)
    if fmt == "WEBP" and colour.shape[2] == 1:  # WebP has no grey mode
        colour = np.repeat(colour, 3, axis=2)
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[..., 0]
        if alpha.shape != (height, width):
            raise ValueError(f"alpha must be {height}×{width}, not shape {alpha.shape}")
        colour = np.concatenate([colour, to_uint(alpha, bit_depth)[..., None]], axis=2)
    if colour.shape[2] == 1:
        return colour[..., 0]
    return colour


def _check_quality(quality: int) -> None:
    integer = isinstance(quality, (int, np.integer)) and not isinstance(quality, bool)
    if not integer or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer from 1 to 100, not {quality!r}")


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    grey: bool = False,
    quality: int = 95,
    compress_level: int = 6,
    overwrite: bool = True,
) -> None:
    """Write ``rgb`` (H×W×3 float in [0, 1], or uint8/uint16) atomically to ``path``.

    The format follows the extension. ``bit_depth`` 16 is honoured by PNG and TIFF; the other
    formats are written at 8 bits. ``grey=True`` writes one channel of Rec. 601 luma.
    ``alpha`` (H×W, float in [0, 1] or uint) is stored where the format can hold it and dropped
    with a warning where it cannot (JPEG, BMP). ``quality`` (1-100) applies to JPEG and WebP,
    ``compress_level`` (0-9) to PNG (1 is several times faster than 6 for a few % more bytes).
    Missing parent folders are created. With ``overwrite=False`` a file that exists at the
    moment of the write (another run may have written it meanwhile) is kept and
    :class:`vqcnir.errors.OutputExistsError` raised.
    """
    path = Path(path)
    fmt = FORMAT_OF_EXTENSION.get(path.suffix.lower())
    if fmt is None:
        shown = path.suffix or "no extension"
        raise VQCNIRError(
            f"{path}: cannot write this file type ({shown}); use one of {supported_list()}"
        )
    bit_depth = check_bit_depth(bit_depth)
    _check_quality(quality)
    if fmt not in SIXTEEN_BIT_FORMATS:
        bit_depth = 8
    if alpha is not None and fmt not in ALPHA_FORMATS:
        warnings.warn(
            f"{path}: {DISPLAY_NAMES[fmt]} cannot store transparency; the alpha channel "
            "is dropped (write PNG, TIFF or WebP to keep it)",
            stacklevel=2,
        )
        alpha = None
    pixels = _output_pixels(rgb, alpha, bit_depth, grey, fmt)
    height, width = pixels.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"cannot write an empty image of shape {pixels.shape}")
    limit = MAX_SIDE.get(fmt)
    if limit is not None and max(height, width) > limit:
        raise VQCNIRError(
            f"{path}: {width}x{height} pixels is larger than {DISPLAY_NAMES[fmt]} allows "
            f"({limit} pixels a side); write PNG or TIFF instead"
        )
    if path.is_dir():
        raise VQCNIRError(f"{path}: is a folder; give a file name to write to")
    try:
        data = ENCODERS[fmt](pixels, int(quality), compress_level)
    except MemoryError:
        raise
    except Exception as error:
        raise VQCNIRError(
            f"{path}: cannot encode the image as {DISPLAY_NAMES[fmt]} ({one_line(error)})"
        ) from error
    write_bytes(path, data, overwrite=overwrite)
