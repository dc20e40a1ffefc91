"""Finding the image files to process: in the inputs a user named, or below a data folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from ..errors import VQCNIRError
from .formats import IMAGE_EXTENSIONS
from .read import check_input_file


def is_image_name(name: str, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> bool:
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
            if is_image_name(entry.name, extensions) and entry.is_file():
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
                if is_image_name(name, extensions) and (root_path / name).is_file():
                    file = root_path / name
                    found.append((file, file.relative_to(folder)))
    found.sort(key=lambda pair: pair[1].parts)
    return found


def _images_of_input(path: Path, recursive: bool, exclude: Path | None,
                     extensions: frozenset[str] = IMAGE_EXTENSIONS) -> list[tuple[Path, Path]]:
    if path.is_dir():
        return _images_in_folder(path, recursive, exclude, extensions)
    if not path.exists():
        raise VQCNIRError(f"{path}: no such file or folder")
    check_input_file(path, extensions)
    return [(path, Path(path.name))]


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


def images_under(root: str | os.PathLike) -> list[Path]:
    """Every image below the data folder ``root`` (hidden file names skipped), sorted by
    relative path as text, so that every machine builds the same dataset order."""
    root = Path(root)
    if not root.exists():
        raise VQCNIRError(f"folder not found: {root}")
    if not root.is_dir():
        raise VQCNIRError(f"not a folder: {root}")
    files = [p for p in root.rglob("*") if is_image_name(p.name) and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())
