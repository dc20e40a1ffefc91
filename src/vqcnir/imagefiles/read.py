"""Reading an image file as upright float32 RGB in [0, 1] (plus its exact alpha)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VQCNIRError, one_line
from .convert import from_uint, to_tensor
from .decode import DECODERS
from .formats import (
    DISPLAY_NAMES,
    IMAGE_EXTENSIONS,
    MIN_SIDE,
    SUPPORTED,
    BadImage,
    channels_error,
    depth_error,
    resolve_max_megapixels,
    sniff,
    supported_list,
)


@dataclass
class LoadedImage:
    """An image read from disk, upright and ready for the network.

    ``rgb`` is H×W×3 float32 in [0, 1] (a grey file gives three equal channels). ``alpha`` is
    H×W float32 in [0, 1] or None; it holds the file's alpha values exactly, so
    ``to_uint(alpha, bit_depth)`` gives back the original integers. ``bit_depth`` (8 or 16) and
    ``grey`` describe the file so that :func:`write_image` can write the result back alike.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    grey: bool
    path: Path

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def check_input_file(path: Path, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> None:
    """One clear line for a path that cannot be an image to read."""
    if not path.exists():
        raise VQCNIRError(f"{path}: no such file")
    if path.is_dir():
        raise VQCNIRError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        raise VQCNIRError(f"{path}: not a regular file")
    if path.suffix.lower() not in extensions:
        shown = path.suffix or "no extension"
        raise VQCNIRError(
            f"{path}: not a supported image type ({shown}); supported: {supported_list()}"
        )


def _decode(path: Path, max_pixels: float) -> np.ndarray:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise VQCNIRError(f"{path}: cannot read the file ({error.strerror or error})") from error
    if not data:
        raise VQCNIRError(f"{path}: the file is empty")
    fmt = sniff(data[:16])
    if fmt is None:
        raise VQCNIRError(f"{path}: not a {SUPPORTED} image (unrecognised file contents)")
    shown = DISPLAY_NAMES[fmt]
    try:
        return DECODERS[fmt](data, max_pixels)
    except BadImage as error:
        raise VQCNIRError(f"{path}: {error}") from None
    except MemoryError:
        raise VQCNIRError(f"{path}: not enough memory to decode this {shown} image") from None
    except Exception as error:  # the codec's own complaint: the data is damaged
        raise VQCNIRError(
            f"{path}: cannot decode this {shown} file; it is truncated or corrupt "
            f"({one_line(error)})"
        ) from error


def read_image(path: str | os.PathLike[str], *, max_megapixels: float | None = None) -> LoadedImage:
    """Read a JPEG, PNG, TIFF, WebP or BMP file as upright float32 RGB (+ exact alpha).

    An image larger than ``max_megapixels`` (default: ``resolve_max_megapixels()``) is refused
    from its header, before any pixel is decoded: a small compressed file can claim billions."""
    path = Path(path)
    max_pixels = resolve_max_megapixels(max_megapixels) * 1e6
    check_input_file(path)
    array = _decode(path, max_pixels)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    if array.dtype == np.uint8:
        bit_depth = 8
    elif array.dtype == np.uint16:
        bit_depth = 16
    else:
        raise VQCNIRError(f"{path}: {depth_error(str(array.dtype))}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise VQCNIRError(f"{path}: unsupported pixel layout (array shape {array.shape})")
    height, width, channels = array.shape
    if height < MIN_SIDE or width < MIN_SIDE:
        raise VQCNIRError(
            f"{path}: the image is only {width}x{height} pixels; "
            f"at least {MIN_SIDE}x{MIN_SIDE} is needed"
        )
    if channels > 4:
        raise VQCNIRError(f"{path}: {channels_error(channels)}")

    grey = channels <= 2
    colour = array[..., :1] if grey else array[..., :3]
    rgb = from_uint(colour)
    if grey:
        rgb = np.repeat(rgb, 3, axis=2)
    alpha = from_uint(array[..., -1]) if channels in (2, 4) else None
    return LoadedImage(
        rgb=np.ascontiguousarray(rgb),
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        bit_depth=bit_depth,
        grey=grey,
        path=path,
    )


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """The image at ``path`` as H×W×3 float32 RGB in [0, 1] (alpha dropped, grey as RGB)."""
    return read_image(path).rgb


def read_tensor(path: str | os.PathLike[str]):
    """The image at ``path`` as a 1×3×H×W float32 tensor in [0, 1] (alpha dropped, grey as RGB)."""
    return to_tensor(read_image(path).rgb)
