"""Image files in and out: the one place where pixels touch the disk.

Inside the package every image is float32 RGB in [0, 1]. This package turns a file into that and
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
  target folder, flushed to disk and moved to the target. If anything fails the temporary file
  is removed and an existing target is left untouched; with ``overwrite=False`` an existing
  target is never replaced, even one that appeared meanwhile.
* **Decompression bombs.** An image whose header claims more than the pixel limit is refused
  before a pixel is decoded.

Modules: ``formats`` (extensions, signatures, limits), ``decode`` (bytes to pixels, and which
library decodes what), ``read``, ``write``, ``atomic`` (every atomic write of the package),
``convert`` (uint <-> float, luma, tensors) and ``listing`` (which files to process).
Colour profiles (ICC) and other metadata are not carried over to the output.

Every problem a user can cause raises :class:`vqcnir.errors.VQCNIRError` with one line that
names the file; a wrong argument from calling code (a bad shape, an unknown bit depth) raises
``ValueError`` or ``TypeError``.
"""

from .atomic import atomic_path, remove_stale_temporaries, write_bytes, write_text
from .convert import LUMA_WEIGHTS, from_uint, luma, to_tensor, to_uint
from .formats import DEFAULT_MAX_MEGAPIXELS, IMAGE_EXTENSIONS, MAX_MEGAPIXELS_ENV, resolve_max_megapixels
from .listing import images_under, list_images
from .read import LoadedImage, read_image, read_rgb, read_tensor
from .write import write_image

__all__ = [
    "DEFAULT_MAX_MEGAPIXELS",
    "IMAGE_EXTENSIONS",
    "LUMA_WEIGHTS",
    "MAX_MEGAPIXELS_ENV",
    "LoadedImage",
    "atomic_path",
    "from_uint",
    "images_under",
    "list_images",
    "luma",
    "read_image",
    "read_rgb",
    "read_tensor",
    "remove_stale_temporaries",
    "resolve_max_megapixels",
    "to_tensor",
    "to_uint",
    "write_bytes",
    "write_image",
    "write_text",
]
