"""Night video: decode, restore frame by frame through the one engine, steady the result over
time, encode, and copy the audio untouched. See docs/video.md.

Importing this package costs nothing: PyAV and OpenCV are imported by the modules that need
them, so image-only use never loads them, and a missing PyAV gives one line saying how to
install it (``require_av``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import VQCNIRError

# Containers recognised as video by `vqcnir restore` and `vqcnir evaluate` (by extension; the
# contents are checked when the file is opened).
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".3gp", ".mpg", ".mpeg", ".wmv", ".flv"}
)

INSTALL_HINT = "video needs PyAV and OpenCV: pip install 'vqcnir[video]'"


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def require_av():
    """The ``av`` module, or one clear error saying how to install it."""
    try:
        import av
    except ImportError:
        raise VQCNIRError(INSTALL_HINT) from None
    return av


def require_cv2():
    try:
        import cv2
    except ImportError:
        raise VQCNIRError(INSTALL_HINT) from None
    return cv2
