"""What the image files may be: extensions, formats and what each can hold, the pixel limit.

Which format a file really is comes from its first bytes (Pillow's own signature checks), not
its extension, so a PNG saved as ``photo.jpg`` still reads correctly.
"""

from __future__ import annotations

import math
import os

# Importing the plugins registers them in Image.OPEN (no Image.init(), which loads every plugin).
from PIL import BmpImagePlugin, Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin

from ..errors import VQCNIRError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}
)
FORMAT_OF_EXTENSION = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
DISPLAY_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "TIFF": "TIFF", "WEBP": "WebP", "BMP": "BMP"}
SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})
MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}  # hard limits of the formats (as Pillow enforces them)
SUPPORTED = "JPEG, PNG, TIFF, WebP or BMP"
_PLUGINS = (JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin, BmpImagePlugin)

MIN_SIDE = 2  # the smallest height and width accepted on read
# The largest image read_image decodes unless told otherwise: above the 24-61 MP of today's
# cameras, below what a 1 MB PNG "bomb" can claim (30000x30000 = 900 MP, ~9 GB once decoded).
DEFAULT_MAX_MEGAPIXELS = 100.0
MAX_MEGAPIXELS_ENV = "VQCNIR_MAX_MEGAPIXELS"


class BadImage(Exception):
    """A decoder's clear refusal; read_image prefixes it with the file name."""


def supported_list() -> str:
    return ", ".join(sorted(IMAGE_EXTENSIONS))


def sniff(head: bytes) -> str | None:
    """The format a file really is, from its first 16 bytes."""
    for fmt in DISPLAY_NAMES:
        accept = Image.OPEN[fmt][1]
        if accept is not None and accept(head) is True:  # WebP's says why in a string when it cannot
            return fmt
    return None


def resolve_max_megapixels(value: float | None = None) -> float:
    """The pixel limit of ``read_image``: ``value``, else $VQCNIR_MAX_MEGAPIXELS, else the default."""
    source = "--max-megapixels"
    if value is None:
        text = os.environ.get(MAX_MEGAPIXELS_ENV)
        if text is None:
            return DEFAULT_MAX_MEGAPIXELS
        source = MAX_MEGAPIXELS_ENV
        try:
            value = float(text)
        except ValueError:
            value = math.nan
    if not 0 < value < math.inf:
        raise VQCNIRError(f"{source} must be a positive, finite number of megapixels, not {value}")
    return value


def check_pixels(width: int, height: int, max_pixels: float) -> None:
    """Refuse an image whose header claims more than ``max_pixels``, before decoding it."""
    if width == 0 or height == 0:
        raise BadImage(f"the image has zero size ({width}x{height} pixels)")
    if width * height > max_pixels:
        megapixels = width * height / 1e6
        shown = f"{megapixels:,.0f}" if megapixels >= 10 else f"{megapixels:.2g}"
        raise BadImage(
            f"the image is {width}x{height} pixels ({shown} MP), above the limit of "
            f"{max_pixels / 1e6:g} MP that guards against decompression bombs; if it is a real "
            f"photo, raise the limit: --max-megapixels {math.ceil(megapixels)} (vqcnir restore, serve) "
            f"or {MAX_MEGAPIXELS_ENV}={math.ceil(megapixels)} (any command)"
        )


def channels_error(channels: int) -> BadImage:
    return BadImage(
        f"the image has {channels} channels; only grey, grey+alpha, RGB and RGBA "
        "(at most 4 channels) are supported"
    )


def depth_error(description: str) -> BadImage:
    return BadImage(
        f"{description} samples are not supported; only 8- and 16-bit integer images are "
        "(convert it to 8 or 16 bits first)"
    )
