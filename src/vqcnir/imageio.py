"""Image files in and out: the one place where pixels touch the disk.

Inside the package every image is float32 RGB in [0, 1]. This module turns a file into that and
back again, keeping what a person expects to survive a restore:

* **Bit depth.** 8-bit in gives 8-bit out and 16-bit in gives 16-bit out, wherever the output
  format can hold 16 bits (PNG and TIFF). JPEG, WebP and BMP are always written at 8 bits.
* **Grey.** A single-channel file is handed out as RGB with three equal channels
  (``LoadedImage.grey`` is True). Written with ``grey=True`` it goes back to one channel as
  Rec. 601 luma, ``Y = 0.299 R + 0.587 G + 0.114 B`` (the weights Pillow and OpenCV use for
  RGB -> L); on an image whose three channels are equal this gives that value back unchanged.
  WebP has no grey mode, so a grey WebP is written as RGB with equal channels.
* **Alpha.** Kept exactly as it was and never restored. PNG, TIFF and WebP store it (WebP's
  alpha plane is compressed losslessly); JPEG and BMP cannot, so it is dropped with a warning.
* **EXIF orientation.** Applied on read, so the pixels handed out are upright. Files are
  written without any EXIF, so nothing rotates them a second time.
* **Atomic writes.** The file is encoded in memory, written to a hidden temporary file in the
  target folder, flushed to disk and moved to the target (``vqcnir.atomic``). If anything
  fails the temporary file is removed and an existing target is left untouched; with
  ``overwrite=False`` an existing target is never replaced, even one that appeared meanwhile.

Which library decodes what, and why:

* **Pillow** for JPEG, WebP and BMP: already a dependency, the reference decoder for these 8-bit
  formats, and by default it raises on a truncated file instead of padding it with grey.
* **imagecodecs** (libpng) for PNG: Pillow reduces 16-bit RGB/RGBA PNGs to 8 bits and cannot
  write them at all; imagecodecs reads and writes every PNG colour type at 8 and 16 bits exactly
  (grey, grey+alpha, RGB, RGBA), expands palette, tRNS and low-bit files, and raises on a
  truncated stream. It is maintained with tifffile and also gives tifffile its LZW, JPEG and
  PackBits codecs, so one binary package covers both formats.
* **tifffile** for TIFF: reads and writes every sample layout (grey+alpha, planar, extra
  samples) at any integer depth and exposes the tags needed here (Orientation, ExtraSamples,
  ColorMap). OpenCV was tried for PNG/TIFF and rejected: it reads a grey+alpha TIFF as plain
  grey, losing the alpha, cannot write two-channel images, and decodes a truncated JPEG with a
  mere warning.

Which decoder runs is chosen from the file's first bytes, not its extension, so a PNG saved as
``photo.jpg`` still reads correctly; the extension must still be one of ``IMAGE_EXTENSIONS``.
Only the first image of a multi-page TIFF or an animated PNG/WebP is read. Colour profiles
(ICC) and other metadata are not carried over to the output.

Every problem a user can cause raises :class:`vqcnir.errors.VQCNIRError` with one line that
names the file; a wrong argument from calling code (a bad shape, an unknown bit depth) raises
``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import tifffile
from PIL import Image

from vqcnir.atomic import atomic_path
from vqcnir.errors import OutputExistsError, VQCNIRError

__all__ = [
    "DEFAULT_MAX_MEGAPIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_MEGAPIXELS_ENV",
    "LUMA_WEIGHTS",
    "LoadedImage",
    "from_uint",
    "list_images",
    "read_image",
    "resolve_max_megapixels",
    "to_uint",
    "write_image",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}
)

# Output format for each extension, and what each format can hold.
_FORMAT_OF_EXTENSION = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
_DISPLAY_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "TIFF": "TIFF", "WEBP": "WebP", "BMP": "BMP"}
_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
_ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})
_MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}  # hard limits of the formats (as Pillow enforces them)

MIN_SIDE = 2  # the smallest height and width accepted on read
# The largest image read_image decodes unless told otherwise: above the 24-61 MP of today's
# cameras, below what a 1 MB PNG "bomb" can claim (30000x30000 = 900 MP, ~9 GB once decoded).
DEFAULT_MAX_MEGAPIXELS = 100.0
MAX_MEGAPIXELS_ENV = "VQCNIR_MAX_MEGAPIXELS"
# ITU-R BT.601 luma weights, the one copy in the project: Pillow's "L", MATLAB's rgb2gray, the Y of
# YIQ. A tuple of Python floats, so that each user builds its array in its own dtype.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_LUMA_WEIGHTS = np.array(LUMA_WEIGHTS, dtype=np.float32)
_ORIENTATION_TAG = 0x0112
_SUPPORTED = "JPEG, PNG, TIFF, WebP or BMP"


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


# --------------------------------------------------------------------------- value conversion


def _check_bit_depth(bit_depth: int) -> int:
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, not {bit_depth!r}")
    return int(bit_depth)


def to_uint(rgb_float: np.ndarray, bit_depth: int) -> np.ndarray:
    """Clip to [0, 1], scale to the full range of ``bit_depth`` and round to uint8 / uint16.

    NaN becomes 0. An array that is already uint8 or uint16 is converted exactly between the two
    depths (``v * 257`` up, rounded ``v / 257`` down) and returned as is when the depth matches.
    """
    bit_depth = _check_bit_depth(bit_depth)
    out_dtype = np.uint8 if bit_depth == 8 else np.uint16
    array = np.asarray(rgb_float)
    if array.dtype == np.uint8 or array.dtype == np.uint16:
        if array.dtype == out_dtype:
            return array
        if out_dtype == np.uint16:
            return array.astype(np.uint16) * np.uint16(257)
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if array.dtype == np.bool_:
        return array.astype(out_dtype) * out_dtype(np.iinfo(out_dtype).max)
    if array.dtype.kind != "f":  # other integers have no agreed range: refuse to guess
        raise TypeError(f"to_uint expects floats in [0, 1] or uint8/uint16, not {array.dtype}")
    scale = np.float32(np.iinfo(out_dtype).max)
    values = np.array(array, dtype=np.float32)  # a copy, so the caller's array is never changed
    np.nan_to_num(values, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(values, 0.0, 1.0, out=values)
    values *= scale
    np.rint(values, out=values)
    return values.astype(out_dtype)


def from_uint(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 (or bool) image values to float32 in [0, 1]."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255)
    if array.dtype == np.uint16:
        return array.astype(np.float32) / np.float32(65535)
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    raise TypeError(f"from_uint expects uint8 or uint16 values, not {array.dtype}")


# --------------------------------------------------------------------------- reading


class _BadImage(Exception):
    """A decoder's clear refusal; read_image prefixes it with the file name."""


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if not text:
        return type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _sniff(head: bytes) -> str | None:
    """The format a file really is, from its signature."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM":
        return "BMP"
    return None


def _orientation_value(value: object) -> int:
    try:
        if isinstance(value, (tuple, list)):
            value = value[0]
        value = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, IndexError):
        return 1
    return value if 1 <= value <= 8 else 1


def _exif_orientation(raw: bytes | None) -> int:
    """The Orientation tag of a raw EXIF block (with or without the 'Exif' prefix)."""
    if not raw:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw)
        return _orientation_value(exif.get(_ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block only loses its orientation, not the image
        return 1


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn H×W×C pixels stored with EXIF ``orientation`` upright (the same as Pillow's
    ``ImageOps.exif_transpose``)."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(array, -1)
    if orientation == 7:
        return array[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(array, 1)
    return array


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


def _check_pixels(width: int, height: int, max_pixels: float) -> None:
    if width * height > max_pixels:
        megapixels = width * height / 1e6
        shown = f"{megapixels:,.0f}" if megapixels >= 10 else f"{megapixels:.2g}"
        raise _BadImage(
            f"the image is {width}x{height} pixels ({shown} MP), above the limit of "
            f"{max_pixels / 1e6:g} MP that guards against decompression bombs; if it is a real "
            f"photo, raise the limit: --max-megapixels {math.ceil(megapixels)} (vqcnir restore, serve) "
            f"or {MAX_MEGAPIXELS_ENV}={math.ceil(megapixels)} (any command)"
        )


def _channels_error(channels: int) -> _BadImage:
    return _BadImage(
        f"the image has {channels} channels; only grey, grey+alpha, RGB and RGBA "
        "(at most 4 channels) are supported"
    )


def _depth_error(description: str) -> _BadImage:
    return _BadImage(
        f"{description} samples are not supported; only 8- and 16-bit integer images are "
        "(convert it to 8 or 16 bits first)"
    )


def _decode_pillow(data: bytes, fmt: str, max_pixels: float) -> tuple[np.ndarray, int]:
    # The format's own opener (what Image.open calls after sniffing) reads only the header, and
    # skips Pillow's global pixel limit: ours, checked next, is the one that applies.
    Image.init()
    with Image.OPEN[fmt][0](io.BytesIO(data), None) as image:
        _check_pixels(*image.size, max_pixels)
        image.load()
        orientation = _orientation_value(image.getexif().get(_ORIENTATION_TAG, 1))
        mode = image.mode
        if mode in ("L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B"):
            pass
        elif mode == "1":
            image = image.convert("L")
        elif mode == "La":
            image = image.convert("LA")
        elif mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
        elif mode in ("RGBa", "RGBX"):
            image = image.convert("RGBA" if mode == "RGBa" else "RGB")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB")
        elif mode in ("I", "F"):
            raise _depth_error("32-bit integer" if mode == "I" else "32-bit float")
        else:
            raise _BadImage(f"pixel mode {mode!r} is not supported")
        array = np.asarray(image)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    return array, orientation


def _scan_png(data: bytes) -> tuple[int, int, bytes | None]:
    """Width, height and eXIf chunk of a PNG, from its chunk headers (the pixels are not read)."""
    width = height = -1
    exif = None
    if data[12:16] != b"IHDR":
        raise _BadImage("not a valid PNG file (its header chunk is missing or damaged)")
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR" and len(body) >= 8:
            width = int.from_bytes(body[0:4], "big")
            height = int.from_bytes(body[4:8], "big")
        elif kind == b"eXIf":
            exif = body
        elif kind == b"IEND":
            break
        pos += 12 + length
    return width, height, exif


def _decode_png(data: bytes, max_pixels: float) -> tuple[np.ndarray, int]:
    width, height, exif = _scan_png(data)
    if width == 0 or height == 0:
        raise _BadImage(f"the image has zero size ({width}x{height} pixels)")
    _check_pixels(width, height, max_pixels)
    import imagecodecs  # here, not at the top: importing it takes ~0.13 s and only PNG needs it

    return imagecodecs.png_decode(data), _exif_orientation(exif)


def _rescale_bits(array: np.ndarray, bits: int) -> np.ndarray:
    """Scale n-bit samples stored in uint8/uint16 (e.g. 4-bit grey, 12-bit RGB) to full range."""
    full = 8 if array.dtype == np.uint8 else 16
    if bits >= full or bits < 1:
        return array
    top = (1 << bits) - 1
    scaled = np.rint(array.astype(np.float64) * (((1 << full) - 1) / top))
    return scaled.astype(array.dtype)


def _decode_tiff(data: bytes, max_pixels: float) -> tuple[np.ndarray, int]:
    photometric_names = {
        0: "min-is-white",
        1: "grey",
        2: "RGB",
        3: "palette",
        4: "mask",
        5: "CMYK (separated)",
        6: "YCbCr",
        8: "CIE L*a*b*",
    }
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        if not len(tif.pages):
            raise _BadImage("the TIFF file holds no image")
        page = tif.pages[0]
        if page.imagewidth == 0 or page.imagelength == 0:
            raise _BadImage(
                f"the image has zero size ({page.imagewidth}x{page.imagelength} pixels)"
            )
        _check_pixels(page.imagewidth, page.imagelength, max_pixels)
        dtype = page.dtype
        if dtype is None or dtype.kind == "c":
            raise _depth_error(f"{page.bitspersample}-bit")
        if dtype.kind == "f":
            raise _depth_error(f"{8 * dtype.itemsize}-bit floating-point")
        if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.bool_)):
            signed = "signed " if dtype.kind == "i" else ""
            raise _depth_error(f"{signed}{8 * dtype.itemsize}-bit integer")
        photometric = int(page.photometric)
        compression = int(page.compression)
        samples = int(page.samplesperpixel)
        if photometric in (0, 1):
            colour = 1
        elif photometric == 2 or (photometric == 6 and compression in (6, 7)):
            colour = 3  # JPEG-compressed YCbCr is decoded to RGB
        elif photometric == 3:
            colour = 1  # palette indices, expanded below
        else:
            name = photometric_names.get(photometric, f"photometric {photometric}")
            raise _BadImage(f"{name} TIFF images are not supported; save it as grey or RGB")
        if samples > 4:
            raise _channels_error(samples)
        if samples - colour not in (0, 1) or (photometric == 3 and samples != 1):
            raise _channels_error(samples)
        tag = page.tags.get(_ORIENTATION_TAG)
        orientation = _orientation_value(tag.value) if tag is not None else 1
        array = page.asarray()
        axes = page.axes
        colormap = page.colormap if photometric == 3 else None
        bits = int(page.bitspersample)
        extras = tuple(page.extrasamples or ())
        premultiplied = samples > colour and bool(extras) and int(extras[0]) == 1  # ASSOCALPHA
    if set(axes) - {"Y", "X", "S"} or array.ndim != len(axes):
        raise _BadImage(f"TIFF layout {axes!r} is not supported")
    if "S" in axes and axes.index("S") == 0:
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2:
        array = array[..., None]
    if photometric == 3:
        if colormap is None:
            raise _BadImage("the palette TIFF has no colour map")
        indices = array[..., 0].astype(np.intp)
        if indices.max(initial=0) >= colormap.shape[-1]:
            raise _BadImage("the palette TIFF uses colours outside its colour map")
        rgb = np.moveaxis(np.asarray(colormap)[:, indices], 0, -1)
        # TIFF colour maps are 16-bit; >> 8 is exact both for v * 257 and v * 256 entries.
        return (rgb >> 8).astype(np.uint8) if bits <= 8 else rgb.astype(np.uint16), orientation
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    else:
        array = _rescale_bits(array, bits)
    if photometric == 0:  # min-is-white: invert the grey channel, keep alpha as it is
        array = array.copy()
        array[..., 0] = np.iinfo(array.dtype).max - array[..., 0]
    if premultiplied:
        array = _unpremultiply(array)
    return array, orientation


def _unpremultiply(array: np.ndarray) -> np.ndarray:
    """Associated (premultiplied) alpha to straight colour; the alpha itself is not changed.

    The network restores real colours, and files are written with unassociated alpha."""
    top = np.iinfo(array.dtype).max
    alpha = array[..., -1:].astype(np.float64)
    colour = array[..., :-1].astype(np.float64)
    straight = np.divide(colour * top, alpha, out=np.zeros_like(colour), where=alpha > 0)
    straight = np.clip(np.rint(straight), 0, top).astype(array.dtype)
    return np.concatenate([straight, array[..., -1:]], axis=-1)


_DECODERS: dict[str, Callable[[bytes, float], tuple[np.ndarray, int]]] = {
    "JPEG": lambda data, max_pixels: _decode_pillow(data, "JPEG", max_pixels),
    "WEBP": lambda data, max_pixels: _decode_pillow(data, "WEBP", max_pixels),
    "BMP": lambda data, max_pixels: _decode_pillow(data, "BMP", max_pixels),
    "PNG": _decode_png,
    "TIFF": _decode_tiff,
}


def _supported_list() -> str:
    return ", ".join(sorted(IMAGE_EXTENSIONS))


def _check_input_file(path: Path, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> None:
    if not path.exists():
        raise VQCNIRError(f"{path}: no such file")
    if path.is_dir():
        raise VQCNIRError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        raise VQCNIRError(f"{path}: not a regular file")
    if path.suffix.lower() not in extensions:
        shown = path.suffix or "no extension"
        raise VQCNIRError(
            f"{path}: not a supported image type ({shown}); supported: {_supported_list()}"
        )


def read_image(path: str | os.PathLike[str], *, max_megapixels: float | None = None) -> LoadedImage:
    """Read a JPEG, PNG, TIFF, WebP or BMP file as upright float32 RGB (+ exact alpha).

    An image larger than ``max_megapixels`` (default: ``resolve_max_megapixels()``) is refused
    from its header, before any pixel is decoded: a small compressed file can claim billions."""
    path = Path(path)
    max_pixels = resolve_max_megapixels(max_megapixels) * 1e6
    _check_input_file(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise VQCNIRError(f"{path}: cannot read the file ({error.strerror or error})") from error
    if not data:
        raise VQCNIRError(f"{path}: the file is empty")
    fmt = _sniff(data[:16])
    if fmt is None:
        raise VQCNIRError(f"{path}: not a {_SUPPORTED} image (unrecognised file contents)")
    shown = _DISPLAY_NAMES[fmt]
    try:
        array, orientation = _DECODERS[fmt](data, max_pixels)
    except _BadImage as error:
        raise VQCNIRError(f"{path}: {error}") from None
    except MemoryError:
        raise VQCNIRError(f"{path}: not enough memory to decode this {shown} image") from None
    except Exception as error:  # the codec's own complaint: the data is damaged
        raise VQCNIRError(
            f"{path}: cannot decode this {shown} file; it is truncated or corrupt "
            f"({_one_line(error)})"
        ) from error
    del data

    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    if array.dtype == np.uint8:
        bit_depth = 8
    elif array.dtype == np.uint16:
        bit_depth = 16
    else:
        raise VQCNIRError(f"{path}: {_depth_error(str(array.dtype))}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise VQCNIRError(f"{path}: unsupported pixel layout (array shape {array.shape})")
    height, width, channels = array.shape
    if height == 0 or width == 0:
        raise VQCNIRError(f"{path}: the image has zero size ({width}x{height} pixels)")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise VQCNIRError(
            f"{path}: the image is only {width}x{height} pixels; "
            f"at least {MIN_SIDE}x{MIN_SIDE} is needed"
        )
    if channels > 4:
        raise VQCNIRError(f"{path}: {_channels_error(channels)}")

    array = _apply_orientation(array, orientation)
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


# --------------------------------------------------------------------------- writing


def _encode_png(pixels: np.ndarray, quality: int) -> bytes:
    del quality  # PNG is lossless
    import imagecodecs

    return bytes(imagecodecs.png_encode(np.ascontiguousarray(pixels), level=6))


def _encode_tiff(pixels: np.ndarray, quality: int) -> bytes:
    del quality  # deflate with a horizontal predictor: lossless and readable by any TIFF reader
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


_ENCODERS: dict[str, Callable[[np.ndarray, int], bytes]] = {
    "PNG": _encode_png,
    "TIFF": _encode_tiff,
    "JPEG": lambda pixels, quality: _encode_pillow(pixels, "JPEG", quality),
    "WEBP": lambda pixels, quality: _encode_pillow(pixels, "WEBP", quality),
    "BMP": lambda pixels, quality: _encode_pillow(pixels, "BMP", quality),
}


def _luma(rgb: np.ndarray) -> np.ndarray:
    values = from_uint(rgb) if rgb.dtype in (np.uint8, np.uint16) else rgb.astype(np.float32)
    return values @ _LUMA_WEIGHTS


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
        y = rgb if rgb.ndim == 2 else _luma(rgb)
        y = to_uint(y, bit_depth)
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


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    grey: bool = False,
    quality: int = 95,
    overwrite: bool = True,
) -> None:
    """Write ``rgb`` (H×W×3 float in [0, 1], or uint8/uint16) atomically to ``path``.

    The format follows the extension. ``bit_depth`` 16 is honoured by PNG and TIFF; the other
    formats are written at 8 bits. ``grey=True`` writes one channel of Rec. 601 luma.
    ``alpha`` (H×W, float in [0, 1] or uint) is stored where the format can hold it and dropped
    with a warning where it cannot (JPEG, BMP). ``quality`` (1-100) applies to JPEG and WebP.
    Missing parent folders are created. With ``overwrite=False`` a file that exists at the
    moment of the write (another run may have written it meanwhile) is kept and
    :class:`vqcnir.errors.OutputExistsError` raised.
    """
    path = Path(path)
    fmt = _FORMAT_OF_EXTENSION.get(path.suffix.lower())
    if fmt is None:
        shown = path.suffix or "no extension"
        raise VQCNIRError(
            f"{path}: cannot write this file type ({shown}); use one of {_supported_list()}"
        )
    bit_depth = _check_bit_depth(bit_depth)
    integer = isinstance(quality, (int, np.integer)) and not isinstance(quality, bool)
    if not integer or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer from 1 to 100, not {quality!r}")
    if fmt not in _SIXTEEN_BIT_FORMATS:
        bit_depth = 8
    if alpha is not None and fmt not in _ALPHA_FORMATS:
        warnings.warn(
            f"{path}: {_DISPLAY_NAMES[fmt]} cannot store transparency; the alpha channel "
            "is dropped (write PNG, TIFF or WebP to keep it)",
            stacklevel=2,
        )
        alpha = None
    pixels = _output_pixels(rgb, alpha, bit_depth, grey, fmt)
    height, width = pixels.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"cannot write an empty image of shape {pixels.shape}")
    limit = _MAX_SIDE.get(fmt)
    if limit is not None and max(height, width) > limit:
        raise VQCNIRError(
            f"{path}: {width}x{height} pixels is larger than {_DISPLAY_NAMES[fmt]} allows "
            f"({limit} pixels a side); write PNG or TIFF instead"
        )
    if path.is_dir():
        raise VQCNIRError(f"{path}: is a folder; give a file name to write to")
    try:
        data = _ENCODERS[fmt](pixels, int(quality))
    except MemoryError:
        raise
    except Exception as error:
        raise VQCNIRError(
            f"{path}: cannot encode the image as {_DISPLAY_NAMES[fmt]} ({_one_line(error)})"
        ) from error
    _atomic_write(path, data, overwrite)


def _atomic_write(path: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to a temporary file beside ``path``, then move it to ``path``."""
    try:
        with atomic_path(path, overwrite=overwrite) as temporary:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
    except FileExistsError:
        raise OutputExistsError(f"{path}: already exists (kept; --overwrite replaces it)") from None
    except OSError as error:
        raise VQCNIRError(
            f"{path}: cannot write the file ({error.strerror or _one_line(error)})"
        ) from error


# --------------------------------------------------------------------------- finding images


def _is_image_name(name: str, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions


def _images_in_folder(folder: Path, recursive: bool, exclude: Path | None,
                      extensions: frozenset[str] = IMAGE_EXTENSIONS) -> list[tuple[Path, Path]]:
    found: list[tuple[Path, Path]] = []
    if not recursive:
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            reason = error.strerror or error
            raise VQCNIRError(f"{folder}: cannot list the folder ({reason})") from error
        for entry in entries:
            if _is_image_name(entry.name, extensions) and entry.is_file():
                found.append((folder / entry.name, Path(entry.name)))
    else:

        def on_error(error: OSError) -> None:
            raise VQCNIRError(
                f"{error.filename or folder}: cannot list the folder ({error.strerror or error})"
            ) from error

        for root, dirs, files in os.walk(folder, onerror=on_error):
            root_path = Path(root)
            # skip hidden folders, and the output folder: a second run must not restore the
            # first run's results again (restored/restored/...)
            dirs[:] = [d for d in dirs if not d.startswith(".")
                       and (exclude is None or (root_path / d).resolve() != exclude)]
            for name in files:
                if _is_image_name(name, extensions) and (root_path / name).is_file():
                    file = root_path / name
                    found.append((file, file.relative_to(folder)))
    found.sort(key=lambda pair: pair[1].parts)
    return found


def list_images(
    inputs: Iterable[str | os.PathLike[str]],
    recursive: bool,
    *,
    exclude: str | os.PathLike[str] | None = None,
    on_error: Callable[[VQCNIRError], None] | None = None,
    extensions: frozenset[str] = IMAGE_EXTENSIONS,
) -> list[tuple[Path, Path]]:
    """The image files to process, each with the relative path to give it under an output folder.

    A file gives ``(file, Path(file.name))``. A folder gives its images (by extension, hidden
    names skipped), sorted; with ``recursive`` its sub-folders too, and the relative paths
    mirror them (``sub/photo.jpg``). An empty folder gives nothing. The same file named twice
    is listed once; two different files that would land on the same relative path, within one
    input or across inputs, raise :class:`VQCNIRError`, since one output would overwrite the
    other. A folder ``exclude`` (the output folder) is never descended into. ``on_error``, when
    given, receives each bad input (missing, not an image, unreadable) and the others are
    still listed; without it the first one raises. ``extensions`` widens
    what counts (``vqcnir restore`` adds the video extensions).
    """
    result: list[tuple[Path, Path]] = []
    seen_files: set[Path] = set()
    owner_of: dict[Path, Path] = {}
    excluded = Path(exclude).resolve() if exclude is not None else None
    for given in inputs:
        try:
            pairs = _images_of_input(Path(given), recursive, excluded, extensions)
        except VQCNIRError as error:
            if on_error is None:
                raise
            on_error(error)
            continue
        for file, relative in pairs:
            identity = file.resolve()
            if identity in seen_files:
                continue
            if relative in owner_of:
                raise VQCNIRError(
                    f"{file}: would be written to the same output name {relative.as_posix()} "
                    f"as {owner_of[relative]}; rename one of them or process them separately"
                )
            seen_files.add(identity)
            owner_of[relative] = file
            result.append((file, relative))
    return result


def _images_of_input(path: Path, recursive: bool, exclude: Path | None,
                     extensions: frozenset[str] = IMAGE_EXTENSIONS) -> list[tuple[Path, Path]]:
    if path.is_dir():
        return _images_in_folder(path, recursive, exclude, extensions)
    if not path.exists():
        raise VQCNIRError(f"{path}: no such file or folder")
    _check_input_file(path, extensions)
    return [(path, Path(path.name))]
