"""File bytes to upright uint8/uint16 pixels (H×W or H×W×C), one decoder per format.

Which library decodes what, and why:

* **Pillow** for JPEG, WebP and BMP: the reference decoder for these 8-bit formats; it raises on
  a truncated file instead of padding it with grey, and ``ImageOps.exif_transpose`` turns them
  upright.
* **imagecodecs** (libpng) for PNG pixels: Pillow reduces 16-bit RGB/RGBA PNGs to 8 bits;
  libpng keeps every colour type at 8 and 16 bits (expanding palette, tRNS and low-bit files)
  and raises on a truncated stream. Pillow still reads the header (size, EXIF) without the pixels.
* **tifffile** for TIFF: every sample layout (grey+alpha, planar, extra samples) at any integer
  depth, and the tags needed here (Orientation, ExtraSamples, ColorMap).

Every decoder checks the size in the header against the pixel limit before decoding a pixel.
A PNG's EXIF is read from the chunks before its pixels, where the PNG specification puts it.
Only the first image of a multi-page TIFF or an animated PNG/WebP is read.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
import tifffile
from PIL import ExifTags, Image, ImageOps, PngImagePlugin

from ..errors import one_line
from .formats import BadImage, channels_error, check_pixels, depth_error

_ORIENTATION = ExifTags.Base.Orientation
# Pillow's pixel modes that map onto what read_image hands out, and how to get the others there.
_KEPT_MODES = ("L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B")
_CONVERTED_MODES = {"1": "L", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB",
                    "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}
_TIFF_PHOTOMETRIC_NAMES = {0: "min-is-white", 1: "grey", 2: "RGB", 3: "palette", 4: "mask",
                           5: "CMYK (separated)", 6: "YCbCr", 8: "CIE L*a*b*"}


def _decode_pillow(data: bytes, fmt: str, max_pixels: float) -> np.ndarray:
    # The plugin's class reads only the header, and skips Pillow's global pixel limit (the one
    # Image.open applies): ours, checked next, is the one that applies.
    with Image.OPEN[fmt][0](io.BytesIO(data), None) as image:
        check_pixels(*image.size, max_pixels)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        mode = image.mode
        if mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
        elif mode in _CONVERTED_MODES:
            image = image.convert(_CONVERTED_MODES[mode])
        elif mode in ("I", "F"):
            raise depth_error("32-bit integer" if mode == "I" else "32-bit float")
        elif mode not in _KEPT_MODES:
            raise BadImage(f"pixel mode {mode!r} is not supported")
        array = np.asarray(image)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _orientation_value(value: object) -> int:
    """A valid EXIF orientation (1-8) from a tag value; anything else counts as upright."""
    try:
        if isinstance(value, (tuple, list)):
            value = value[0]
        value = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, IndexError):
        return 1
    return value if 1 <= value <= 8 else 1


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn H×W×C pixels stored with EXIF ``orientation`` upright, as ``ImageOps.exif_transpose``
    does: it cannot be used here because a Pillow image cannot hold 16-bit RGB(A)."""
    if orientation in (5, 6, 7, 8):  # the ones that swap width and height
        array = array.transpose(1, 0, 2)
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    if orientation in (2, 3):
        array = array[:, ::-1]
    if orientation in (3, 4):
        array = array[::-1]
    return array


def _png_header(data: bytes, max_pixels: float) -> Image.Exif:
    """Check a PNG's size, then read its EXIF, from the chunks before its pixels (Pillow's parser).

    The size comes from the first chunk alone, so a file that claims a huge size is refused
    even when nothing valid follows its header."""
    try:
        stream = PngImagePlugin.PngStream(io.BytesIO(data[8:]))
        kind, position, length = stream.read()
        if kind != b"IHDR":
            raise SyntaxError("its header chunk is missing")
        stream.call(kind, position, length)
    except Exception as error:
        raise BadImage(f"not a valid PNG file ({one_line(error)})") from None
    check_pixels(*stream.im_size, max_pixels)
    try:
        with PngImagePlugin.PngImageFile(io.BytesIO(data)) as header:  # stops at the pixels
            # the base class reads the EXIF found so far (eXIf, ImageMagick's text chunk, XMP);
            # PngImageFile.getexif would decode every pixel to look for one after them
            return Image.Image.getexif(header)
    except Exception as error:
        raise BadImage(f"not a valid PNG file ({one_line(error)})") from None


def _decode_png(data: bytes, max_pixels: float) -> np.ndarray:
    exif = _png_header(data, max_pixels)
    import imagecodecs  # here, not at the top: importing it takes ~0.13 s and only PNG needs it

    array = imagecodecs.png_decode(data)
    if array.ndim == 2:
        array = array[..., None]
    return _apply_orientation(array, _orientation_value(exif.get(_ORIENTATION, 1)))


def _rescale_bits(array: np.ndarray, bits: int) -> np.ndarray:
    """Scale n-bit samples stored in uint8/uint16 (e.g. 4-bit grey, 12-bit RGB) to full range:
    tifffile hands out the stored values."""
    full = 8 if array.dtype == np.uint8 else 16
    if bits >= full or bits < 1:
        return array
    top = (1 << bits) - 1
    scaled = np.rint(array.astype(np.float64) * (((1 << full) - 1) / top))
    return scaled.astype(array.dtype)


def _unpremultiply(array: np.ndarray) -> np.ndarray:
    """Associated (premultiplied) alpha to straight colour; the alpha itself is not changed.

    The network restores real colours, and files are written with unassociated alpha."""
    top = np.iinfo(array.dtype).max
    alpha = array[..., -1:].astype(np.float64)
    colour = array[..., :-1].astype(np.float64)
    straight = np.divide(colour * top, alpha, out=np.zeros_like(colour), where=alpha > 0)
    straight = np.clip(np.rint(straight), 0, top).astype(array.dtype)
    return np.concatenate([straight, array[..., -1:]], axis=-1)


def _tiff_colour_samples(photometric: int, compression: int) -> int:
    if photometric in (0, 1, 3):  # grey, or palette indices expanded later
        return 1
    if photometric == 2 or (photometric == 6 and compression in (6, 7)):
        return 3  # JPEG-compressed YCbCr is decoded to RGB
    name = _TIFF_PHOTOMETRIC_NAMES.get(photometric, f"photometric {photometric}")
    raise BadImage(f"{name} TIFF images are not supported; save it as grey or RGB")


def _check_tiff_dtype(page: tifffile.TiffPage) -> None:
    dtype = page.dtype
    if dtype is None or dtype.kind == "c":
        raise depth_error(f"{page.bitspersample}-bit")
    if dtype.kind == "f":
        raise depth_error(f"{8 * dtype.itemsize}-bit floating-point")
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.bool_)):
        signed = "signed " if dtype.kind == "i" else ""
        raise depth_error(f"{signed}{8 * dtype.itemsize}-bit integer")


def _expand_palette(indices: np.ndarray, colormap: np.ndarray | None, bits: int) -> np.ndarray:
    if colormap is None:
        raise BadImage("the palette TIFF has no colour map")
    indices = indices.astype(np.intp)
    if indices.max(initial=0) >= colormap.shape[-1]:
        raise BadImage("the palette TIFF uses colours outside its colour map")
    rgb = np.moveaxis(np.asarray(colormap)[:, indices], 0, -1)
    # TIFF colour maps are 16-bit; >> 8 is exact both for v * 257 and v * 256 entries.
    return (rgb >> 8).astype(np.uint8) if bits <= 8 else rgb.astype(np.uint16)


def _decode_tiff(data: bytes, max_pixels: float) -> np.ndarray:
    # tifffile has the pixels; what TIFF says about them (palette, min-is-white, premultiplied
    # alpha, n-bit samples, orientation) it leaves to the reader, so it is applied here.
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        if not len(tif.pages):
            raise BadImage("the TIFF file holds no image")
        page = tif.pages[0]
        check_pixels(page.imagewidth, page.imagelength, max_pixels)
        _check_tiff_dtype(page)
        photometric = int(page.photometric)
        colour = _tiff_colour_samples(photometric, int(page.compression))
        samples = int(page.samplesperpixel)
        if samples > 4 or samples - colour not in (0, 1) or (photometric == 3 and samples != 1):
            raise channels_error(samples)
        tag = page.tags.get(int(_ORIENTATION))
        orientation = _orientation_value(tag.value) if tag is not None else 1
        array = page.asarray()
        axes = page.axes
        colormap = page.colormap if photometric == 3 else None
        bits = int(page.bitspersample)
        extras = tuple(page.extrasamples or ())
        premultiplied = samples > colour and bool(extras) and int(extras[0]) == 1  # ASSOCALPHA
    if set(axes) - {"Y", "X", "S"} or array.ndim != len(axes):
        raise BadImage(f"TIFF layout {axes!r} is not supported")
    if "S" in axes and axes.index("S") == 0:
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2:
        array = array[..., None]
    if photometric == 3:
        array = _expand_palette(array[..., 0], colormap, bits)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    else:
        array = _rescale_bits(array, bits)
    if photometric == 0:  # min-is-white: invert the grey channel, keep alpha as it is
        array = array.copy()
        array[..., 0] = np.iinfo(array.dtype).max - array[..., 0]
    if premultiplied:
        array = _unpremultiply(array)
    return _apply_orientation(array, orientation)


DECODERS: dict[str, Callable[[bytes, float], np.ndarray]] = {
    "JPEG": lambda data, max_pixels: _decode_pillow(data, "JPEG", max_pixels),
    "WEBP": lambda data, max_pixels: _decode_pillow(data, "WEBP", max_pixels),
    "BMP": lambda data, max_pixels: _decode_pillow(data, "BMP", max_pixels),
    "PNG": _decode_png,
    "TIFF": _decode_tiff,
}
