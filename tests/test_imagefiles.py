"""Tests for vqcnir.imagefiles: formats, bit depths, grey, alpha, orientation, atomic writes, errors.

Every image is made here, small, in tmp_path.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from vqcnir.imagefiles import atomic, write
from vqcnir.errors import VQCNIRError
from vqcnir.imagefiles import (
    IMAGE_EXTENSIONS,
    LoadedImage,
    from_uint,
    list_images,
    read_image,
    to_uint,
    write_image,
)

H, W = 12, 20  # small, and not square, so a rotation shows in the shape


def smooth_rgb8(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """A smooth colour image with a little noise: easy for lossy codecs, not constant."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w, y / h, 0.5 + 0.3 * np.sin(x / 3.0)], axis=-1)
    noisy = base + rng.normal(0.0, 0.004, size=base.shape)
    return to_uint(noisy, 8)


def random16(shape, seed: int = 1) -> np.ndarray:
    values = np.random.default_rng(seed).integers(0, 65536, size=shape, dtype=np.uint16)
    assert np.count_nonzero(values % 257) > values.size // 2  # really 16-bit, not 8-bit * 257
    return values


def files_in(folder) -> list[str]:
    return sorted(os.listdir(folder))


def one_line_naming(error: pytest.ExceptionInfo, name: str) -> None:
    message = str(error.value)
    assert name in message
    assert "\n" not in message


# --------------------------------------------------------------------------- value conversion


def test_to_uint_from_uint_round_trip_every_value():
    for dtype, depth in ((np.uint8, 8), (np.uint16, 16)):
        values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
        floats = from_uint(values)
        assert floats.dtype == np.float32
        assert floats.min() == 0.0 and floats.max() == 1.0
        back = to_uint(floats, depth)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, values)


def test_to_uint_clips_rounds_and_handles_nan():
    got = to_uint(np.array([-0.5, 0.0, 0.5, 1.0, 2.0, np.nan, 0.2 / 255]), 8)
    np.testing.assert_array_equal(got, [0, 0, 128, 255, 255, 0, 0])
    assert to_uint(np.array([0.6 / 255]), 8)[0] == 1
    assert to_uint(np.array([1.0]), 16)[0] == 65535


def test_to_uint_refuses_integers_of_unknown_range():
    with pytest.raises(TypeError):
        to_uint(np.array([0, 255], dtype=np.int64), 8)


def test_to_uint_converts_between_integer_depths_exactly():
    eight = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(to_uint(eight, 16), eight.astype(np.uint16) * 257)
    np.testing.assert_array_equal(to_uint(to_uint(eight, 16), 8), eight)
    with pytest.raises(ValueError):
        to_uint(eight, 12)


def test_extensions():
    assert IMAGE_EXTENSIONS == {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}


# --------------------------------------------------------------------------- 8-bit round trips

LOSSLESS = [".png", ".tif", ".tiff", ".bmp"]
LOSSY = [".jpg", ".jpeg", ".webp"]


@pytest.mark.parametrize("ext", LOSSLESS + LOSSY)
def test_round_trip_8bit(tmp_path, ext):
    pixels = smooth_rgb8()
    path = tmp_path / f"image{ext}"
    write_image(path, from_uint(pixels))
    loaded = read_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.path == path
    assert loaded.bit_depth == 8 and not loaded.grey and loaded.alpha is None
    assert loaded.rgb.dtype == np.float32 and loaded.rgb.shape == (H, W, 3)
    assert loaded.rgb.flags.c_contiguous
    back = to_uint(loaded.rgb, 8)
    if ext in LOSSLESS:
        np.testing.assert_array_equal(back, pixels)
    else:
        difference = np.abs(back.astype(int) - pixels.astype(int))
        assert difference.mean() < 3.0, difference.mean()
        assert difference.max() < 40
    assert files_in(tmp_path) == [path.name]


def test_jpeg_quality_parameter(tmp_path):
    pixels = from_uint(smooth_rgb8(48, 64))
    write_image(tmp_path / "low.jpg", pixels, quality=10)
    write_image(tmp_path / "high.jpg", pixels)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size
    with pytest.raises(ValueError):
        write_image(tmp_path / "bad.jpg", pixels, quality=0)


def test_uint8_input_is_accepted(tmp_path):
    pixels = smooth_rgb8()
    write_image(tmp_path / "u8.png", pixels)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "u8.png")), pixels)


def test_content_decides_the_decoder_not_the_extension(tmp_path):
    pixels = smooth_rgb8()
    Image.fromarray(pixels).save(tmp_path / "really_a_png.jpg", format="PNG")
    np.testing.assert_array_equal(to_uint(read_image(tmp_path / "really_a_png.jpg").rgb, 8), pixels)


# --------------------------------------------------------------------------- 16 bits


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_round_trip_exact(tmp_path, ext, channels):
    shape = (H, W) if channels == 1 else (H, W, channels)
    values = random16(shape, seed=channels)
    # A file made by the other library, so reading is checked independently of writing.
    source = tmp_path / f"source{ext}"
    if ext == ".png":
        source.write_bytes(imagecodecs.png_encode(values))
    else:
        extras = ["unassalpha"] if channels in (2, 4) else None
        tifffile.imwrite(
            source,
            values,
            photometric="minisblack" if channels <= 2 else "rgb",
            planarconfig="contig" if channels > 1 else None,
            extrasamples=extras,
        )
    loaded = read_image(source)
    assert loaded.bit_depth == 16
    assert loaded.grey == (channels <= 2)
    colour = values if channels == 1 else values[..., : 1 if channels <= 2 else 3]
    colour = colour.reshape(H, W, -1)
    np.testing.assert_array_equal(to_uint(loaded.rgb, 16), np.broadcast_to(colour, (H, W, 3)))
    if channels in (2, 4):
        np.testing.assert_array_equal(to_uint(loaded.alpha, 16), values[..., -1])
    else:
        assert loaded.alpha is None

    out = tmp_path / f"out{ext}"
    write_image(
        out, loaded.rgb, alpha=loaded.alpha, bit_depth=loaded.bit_depth, grey=loaded.grey
    )
    if ext == ".png":
        written = imagecodecs.png_decode(out.read_bytes())
    else:
        written = tifffile.imread(out)
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written, values)


def test_16bit_written_to_8bit_only_format_becomes_8bit(tmp_path):
    rgb = from_uint(random16((H, W, 3)))
    write_image(tmp_path / "out.bmp", rgb, bit_depth=16)
    loaded = read_image(tmp_path / "out.bmp")
    assert loaded.bit_depth == 8
    np.testing.assert_array_equal(to_uint(loaded.rgb, 8), to_uint(rgb, 8))


# --------------------------------------------------------------------------- grey


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp", ".jpg"])
def test_grey_in_grey_out(tmp_path, ext):
    grey = smooth_rgb8()[..., 0]
    source = tmp_path / f"grey{ext}"
    Image.fromarray(grey, mode="L").save(source, quality=95)
    loaded = read_image(source)
    assert loaded.grey and loaded.bit_depth == 8
    assert loaded.rgb.shape == (H, W, 3)
    np.testing.assert_array_equal(loaded.rgb[..., 0], loaded.rgb[..., 1])
    np.testing.assert_array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])
    if ext != ".jpg":
        np.testing.assert_array_equal(to_uint(loaded.rgb[..., 0], 8), grey)

    out = tmp_path / f"out{ext}"
    write_image(out, loaded.rgb, grey=True)
    with Image.open(out) as written:
        assert written.mode == "L"
        tolerance = 3 if ext == ".jpg" else 0  # JPEG re-encodes lossily
        difference = np.asarray(written).astype(int) - to_uint(loaded.rgb[..., 0], 8)
        assert np.abs(difference).max() <= tolerance
    assert read_image(out).grey


def test_grey_output_is_rec601_luma(tmp_path):
    rgb = from_uint(smooth_rgb8())
    write_image(tmp_path / "y.png", rgb, grey=True)
    with Image.open(tmp_path / "y.png") as written:
        assert written.mode == "L"
        got = np.asarray(written)
    expected = np.rint(255 * (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]))
    assert np.abs(got.astype(int) - expected.astype(int)).max() == 0


def test_grey_webp_is_written_as_rgb_with_equal_channels(tmp_path):
    write_image(tmp_path / "g.webp", from_uint(smooth_rgb8()), grey=True)
    loaded = read_image(tmp_path / "g.webp")
    assert loaded.rgb.shape == (H, W, 3)
    np.testing.assert_allclose(loaded.rgb[..., 0], loaded.rgb[..., 1], atol=2 / 255)


# --------------------------------------------------------------------------- alpha


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
def test_rgba_alpha_preserved_exactly(tmp_path, ext):
    rgba = np.concatenate(
        [smooth_rgb8(), np.random.default_rng(5).integers(0, 256, (H, W, 1), dtype=np.uint8)],
        axis=2,
    )
    source = tmp_path / f"rgba{ext}"
    Image.fromarray(rgba, mode="RGBA").save(source, quality=95)
    loaded = read_image(source)
    assert loaded.alpha is not None and loaded.alpha.shape == (H, W)
    assert loaded.alpha.dtype == np.float32
    np.testing.assert_array_equal(to_uint(loaded.alpha, 8), rgba[..., 3])

    restored = np.clip(loaded.rgb * 0.9 + 0.05, 0, 1)  # the colour changes, alpha must not
    out = tmp_path / f"out{ext}"
    write_image(out, restored, alpha=loaded.alpha, bit_depth=loaded.bit_depth)
    with Image.open(out) as written:
        assert written.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(written)[..., 3], rgba[..., 3])


def test_grey_alpha_png_preserved(tmp_path):
    la = np.stack([smooth_rgb8()[..., 1], np.arange(H * W, dtype=np.uint8).reshape(H, W)], -1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    loaded = read_image(tmp_path / "la.png")
    assert loaded.grey and loaded.alpha is not None
    write_image(tmp_path / "out.png", loaded.rgb, alpha=loaded.alpha, grey=True)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "LA"
        np.testing.assert_array_equal(np.asarray(written), la)


def test_premultiplied_tiff_alpha_is_read_as_straight_colour(tmp_path):
    straight = np.full((4, 6, 3), 200, np.uint8)
    alpha = np.array([0, 51, 102, 255, 255, 128], np.uint8)[None, :].repeat(4, 0)
    premultiplied = np.rint(straight * (alpha[..., None] / 255.0)).astype(np.uint8)
    tifffile.imwrite(
        tmp_path / "assoc.tif",
        np.concatenate([premultiplied, alpha[..., None]], axis=-1),
        photometric="rgb",
        extrasamples=["assocalpha"],
    )
    loaded = read_image(tmp_path / "assoc.tif")
    np.testing.assert_array_equal(to_uint(loaded.alpha, 8), alpha)
    visible = to_uint(loaded.rgb, 8)[alpha > 0]
    assert np.abs(visible.astype(int) - 200).max() <= 3  # rounding at alpha 51
    assert (to_uint(loaded.rgb, 8)[alpha == 0] == 0).all()


def test_palette_and_min_is_white_tiffs(tmp_path):
    pixels = smooth_rgb8()
    palette_image = Image.fromarray(pixels).quantize(16)
    palette_image.save(tmp_path / "palette.tif")
    expected = np.asarray(palette_image.convert("RGB"))
    loaded = read_image(tmp_path / "palette.tif")
    assert not loaded.grey and loaded.bit_depth == 8
    np.testing.assert_array_equal(to_uint(loaded.rgb, 8), expected)

    grey = pixels[..., 0]
    tifffile.imwrite(tmp_path / "white.tif", grey, photometric="miniswhite")
    loaded = read_image(tmp_path / "white.tif")
    assert loaded.grey
    np.testing.assert_array_equal(to_uint(loaded.rgb[..., 0], 8), 255 - grey)


def test_alpha_dropped_with_warning_where_format_cannot_hold_it(tmp_path):
    rgb = from_uint(smooth_rgb8())
    with pytest.warns(UserWarning, match="alpha"):
        write_image(tmp_path / "out.jpg", rgb, alpha=np.ones((H, W), np.float32))
    assert read_image(tmp_path / "out.jpg").alpha is None


# --------------------------------------------------------------------------- EXIF orientation


def quadrant_image(h: int = 16, w: int = 32) -> np.ndarray:
    """Four flat blocks: red top-left, green top-right, blue bottom-left, white bottom-right."""
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 2, : w // 2] = (255, 0, 0)
    image[: h // 2, w // 2 :] = (0, 255, 0)
    image[h // 2 :, : w // 2] = (0, 0, 255)
    image[h // 2 :, w // 2 :] = (255, 255, 255)
    return image


def exif_with_orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


def block_colour(rgb: np.ndarray, row: float, col: float) -> tuple[int, ...]:
    """The colour near a relative position, rounded to pure 0 / 255 (JPEG blurs the edges)."""
    h, w = rgb.shape[:2]
    pixel = rgb[int(row * h), int(col * w)]
    return tuple(int(v > 0.5) * 255 for v in pixel)


RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


@pytest.mark.parametrize(
    "orientation, corners",
    [
        # Tag 6: the camera was turned clockwise; upright, the stored top-left is top-right.
        (6, {"top_left": BLUE, "top_right": RED, "bottom_left": WHITE, "bottom_right": GREEN}),
        # Tag 8: turned the other way; the stored top-left ends bottom-left.
        (8, {"top_left": GREEN, "top_right": WHITE, "bottom_left": RED, "bottom_right": BLUE}),
    ],
)
def test_exif_orientation_jpeg(tmp_path, orientation, corners):
    stored = quadrant_image()
    source = tmp_path / f"rotated{orientation}.jpg"
    Image.fromarray(stored).save(source, quality=95, exif=exif_with_orientation(orientation))
    loaded = read_image(source)
    assert loaded.rgb.shape == (32, 16, 3)  # height and width swapped
    assert block_colour(loaded.rgb, 0.1, 0.1) == corners["top_left"]
    assert block_colour(loaded.rgb, 0.1, 0.9) == corners["top_right"]
    assert block_colour(loaded.rgb, 0.9, 0.1) == corners["bottom_left"]
    assert block_colour(loaded.rgb, 0.9, 0.9) == corners["bottom_right"]

    out = tmp_path / "upright.jpg"
    write_image(out, loaded.rgb)
    with Image.open(out) as written:
        assert written.getexif().get(0x0112) is None
        assert written.size == (16, 32)  # (width, height): upright without any tag
    assert read_image(out).rgb.shape == (32, 16, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow(tmp_path, orientation):
    rgba = np.random.default_rng(orientation).integers(0, 256, (6, 10, 4), dtype=np.uint8)
    source = tmp_path / "o.png"
    Image.fromarray(rgba, mode="RGBA").save(source, exif=exif_with_orientation(orientation))
    with Image.open(source) as image:
        expected = np.asarray(ImageOps.exif_transpose(image))
    loaded = read_image(source)
    np.testing.assert_array_equal(to_uint(loaded.rgb, 8), expected[..., :3])
    np.testing.assert_array_equal(to_uint(loaded.alpha, 8), expected[..., 3])


def test_exif_orientation_tiff_16bit(tmp_path):
    values = random16((6, 10, 3))
    orientation_tag = (274, "H", 1, 6, True)  # code, type, count, value, write once
    tifffile.imwrite(tmp_path / "o.tif", values, photometric="rgb", extratags=[orientation_tag])
    loaded = read_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(to_uint(loaded.rgb, 16), np.rot90(values, -1))


def _png_with_chunk_before_pixels(png: bytes, kind: bytes, body: bytes) -> bytes:
    """``png`` with one more chunk right after its header chunk (IHDR is 8 + 25 bytes in)."""
    import struct
    import zlib

    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return png[:33] + chunk + png[33:]


def test_exif_orientation_png_16bit(tmp_path):
    values = random16((6, 10, 3))
    png = bytes(imagecodecs.png_encode(values))
    path = tmp_path / "o.png"
    path.write_bytes(_png_with_chunk_before_pixels(png, b"eXIf", exif_with_orientation(6).tobytes()))
    loaded = read_image(path)
    assert loaded.bit_depth == 16
    np.testing.assert_array_equal(to_uint(loaded.rgb, 16), np.rot90(values, -1))


def test_png_orientation_from_xmp(tmp_path):
    # Pillow reads the orientation from XMP where there is no EXIF block (as browsers do)
    rgb = smooth_rgb8()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="8"/></rdf:RDF></x:xmpmeta>'
    png = bytes(imagecodecs.png_encode(rgb))
    path = tmp_path / "xmp.png"
    path.write_bytes(_png_with_chunk_before_pixels(png, b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp))
    np.testing.assert_array_equal(to_uint(read_image(path).rgb, 8), np.rot90(rgb, 1))


# --------------------------------------------------------------------------- atomic writes


def test_write_replaces_existing_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "out.png"
    write_image(path, from_uint(smooth_rgb8(seed=1)))
    write_image(path, from_uint(smooth_rgb8(seed=2)))
    assert files_in(tmp_path) == ["out.png"]
    np.testing.assert_array_equal(to_uint(read_image(path).rgb, 8), smooth_rgb8(seed=2))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_written_file_has_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    write_image(tmp_path / "out.png", from_uint(smooth_rgb8()))
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_write_creates_missing_folders(tmp_path):
    path = tmp_path / "a" / "b" / "out.tif"
    write_image(path, from_uint(smooth_rgb8()))
    assert path.is_file()


def test_failing_encoder_leaves_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")

    def broken_encoder(pixels, quality, compress_level):
        raise RuntimeError("encoder exploded")

    monkeypatch.setitem(write.ENCODERS, "PNG", broken_encoder)
    with pytest.raises(VQCNIRError) as error:
        write_image(path, from_uint(smooth_rgb8()))
    one_line_naming(error, "out.png")
    assert path.read_bytes() == b"precious"
    assert files_in(tmp_path) == ["out.png"]


@pytest.mark.parametrize("broken", ["fsync", "replace"])
def test_failure_while_writing_removes_temporary_file(tmp_path, monkeypatch, broken):
    path = tmp_path / "out.jpg"
    path.write_bytes(b"precious")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, broken, fail)
    with pytest.raises(VQCNIRError, match="No space left") as error:
        write_image(path, from_uint(smooth_rgb8()))
    monkeypatch.undo()
    one_line_naming(error, "out.jpg")
    assert path.read_bytes() == b"precious"
    assert files_in(tmp_path) == ["out.jpg"]


def test_disk_full_halfway_keeps_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "out.tif"
    path.write_bytes(b"precious")
    real_open = open

    class HalfWriter:
        """A file that takes half of what it is given, then reports a full disk."""

        def __init__(self, file, mode="r", *args, **kwargs):
            self._file = real_open(file, mode, *args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._file.close()

        def write(self, data):
            self._file.write(data[: len(data) // 2])
            self._file.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._file, name)

    monkeypatch.setattr(atomic, "open", HalfWriter, raising=False)
    with pytest.raises(VQCNIRError, match="No space left"):
        write_image(path, from_uint(smooth_rgb8()))
    monkeypatch.undo()
    assert path.read_bytes() == b"precious"
    assert files_in(tmp_path) == ["out.tif"]


def test_write_errors(tmp_path):
    rgb = from_uint(smooth_rgb8())
    with pytest.raises(VQCNIRError, match="out.gif"):
        write_image(tmp_path / "out.gif", rgb)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(VQCNIRError, match="folder.png"):
        write_image(tmp_path / "folder.png", rgb)
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", rgb[..., :2])
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", rgb, bit_depth=12)
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", rgb, alpha=np.ones((3, 3)))
    assert files_in(tmp_path) == ["folder.png"]


# --------------------------------------------------------------------------- bad input


def _truncated(tmp_path, ext: str, fraction: float = 0.6):
    path = tmp_path / f"whole{ext}"
    Image.fromarray(smooth_rgb8(64, 64)).save(path, quality=95)
    data = path.read_bytes()
    broken = tmp_path / f"truncated{ext}"
    broken.write_bytes(data[: int(len(data) * fraction)])
    return broken


def _make_bad(tmp_path, case: str):
    if case == "missing":
        return tmp_path / "missing.png"
    if case == "folder":
        (tmp_path / "folder.jpg").mkdir()
        return tmp_path / "folder.jpg"
    if case == "extension":
        path = tmp_path / "notes.gif"
        Image.fromarray(smooth_rgb8()).save(path, format="PNG")
        return path
    if case == "not_an_image":
        path = tmp_path / "text.png"
        path.write_text("this is not a picture\n" * 4)
        return path
    if case == "empty":
        path = tmp_path / "empty.jpg"
        path.write_bytes(b"")
        return path
    if case == "garbage_after_signature":
        path = tmp_path / "garbage.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
        return path
    if case in ("truncated_jpeg", "truncated_png", "truncated_webp", "truncated_bmp"):
        extension = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp"}
        return _truncated(tmp_path, extension[case.split("_")[1]])
    if case == "truncated_tiff":
        path = tmp_path / "cut.tif"
        tifffile.imwrite(path, random16((64, 64, 3)), photometric="rgb", compression="zlib")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path
    if case == "one_pixel":
        path = tmp_path / "dot.png"
        Image.new("RGB", (1, 1)).save(path)
        return path
    if case == "one_row":
        path = tmp_path / "line.png"
        Image.new("RGB", (8, 1)).save(path)
        return path
    if case == "zero_size":
        path = tmp_path / "nothing.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tifffile.imwrite(path, np.zeros((0, 5), np.uint8))
        return path
    if case in ("five_channels", "grey_with_two_extras"):  # colour or grey, plus alpha and one more
        path = tmp_path / f"{case}.tif"
        channels, photometric = (5, "rgb") if case == "five_channels" else (3, "minisblack")
        tifffile.imwrite(path, np.zeros((4, 4, channels), np.uint8), photometric=photometric,
                         planarconfig="contig", extrasamples=["unassalpha", "unspecified"])
        return path
    if case == "float_tiff":
        path = tmp_path / "float.tif"
        tifffile.imwrite(path, np.full((4, 4, 3), 0.5, np.float32), photometric="rgb")
        return path
    if case == "int32_tiff":
        path = tmp_path / "int32.tif"
        tifffile.imwrite(path, np.zeros((4, 4), np.int32))
        return path
    if case == "cmyk_tiff":
        path = tmp_path / "cmyk.tif"
        tifffile.imwrite(path, np.zeros((4, 4, 4), np.uint8), photometric="separated")
        return path
    raise AssertionError(case)


BAD_CASES = {
    "missing": "no such file",
    "folder": "folder",
    "extension": "not a supported image type",
    "not_an_image": "not a",
    "empty": "empty",
    "garbage_after_signature": "not a valid PNG",
    "truncated_jpeg": "truncated",
    "truncated_png": "truncated",
    "truncated_webp": "truncated",
    "truncated_bmp": "truncated",
    "truncated_tiff": "truncated",
    "one_pixel": "1x1 pixels; at least 2x2",
    "one_row": "8x1 pixels",
    "zero_size": "zero size",
    "five_channels": "5 channels",
    "grey_with_two_extras": "3 channels",
    "float_tiff": "floating-point",
    "int32_tiff": "32-bit integer",
    "cmyk_tiff": "CMYK",
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_raises_one_clear_line(tmp_path, case):
    path = _make_bad(tmp_path, case)
    with pytest.raises(VQCNIRError, match=re.escape(BAD_CASES[case])) as error:
        read_image(path)
    one_line_naming(error, path.name)


def test_truncated_jpeg_is_not_silently_padded(tmp_path):
    # Only the last few bytes are missing: a lenient decoder would fill them with grey.
    path = _truncated(tmp_path, ".jpg", fraction=0.97)
    with pytest.raises(VQCNIRError, match="truncated"):
        read_image(path)


# --------------------------------------------------------------------------- list_images


def test_list_images(tmp_path):
    root = tmp_path / "photos"
    for relative in [
        "b.JPG", "a.png", "notes.txt", ".hidden.png", "sub/c.tif", "sub/deeper/d.webp",
        "sub/.cache/e.png", "z/f.bmp",
    ]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"x")
    single = tmp_path / "single.jpeg"
    single.write_bytes(b"x")

    flat = list_images([root], recursive=False)
    assert flat == [(root / "a.png", Path("a.png")), (root / "b.JPG", Path("b.JPG"))]

    deep = list_images([root, single], recursive=True)
    assert [relative.as_posix() for _, relative in deep] == [
        "a.png", "b.JPG", "sub/c.tif", "sub/deeper/d.webp", "z/f.bmp", "single.jpeg",
    ]
    for file, relative in deep[:-1]:
        assert file == root / relative
    assert deep[-1] == (single, Path("single.jpeg"))

    assert list_images([single, single], recursive=False) == [(single, Path("single.jpeg"))]
    (tmp_path / "empty").mkdir()
    assert list_images([tmp_path / "empty"], recursive=True) == []


def test_list_images_errors(tmp_path):
    with pytest.raises(VQCNIRError, match="nowhere"):
        list_images([tmp_path / "nowhere"], recursive=False)
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(VQCNIRError, match="readme.txt"):
        list_images([tmp_path / "readme.txt"], recursive=False)
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.png").write_bytes(b"x")
    with pytest.raises(VQCNIRError, match="same.png"):
        list_images([tmp_path / "one", tmp_path / "two"], recursive=False)
