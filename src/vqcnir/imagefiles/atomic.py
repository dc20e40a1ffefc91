"""Atomic file writes: a temporary file beside the target, moved over it only once complete.

The one atomic writer of the package: images, checkpoints, exports, records and reports all
go through ``atomic_path`` (or ``write_bytes`` / ``write_text`` for data already in memory).

A crash or error mid-write never leaves a half-written checkpoint, image or record behind, and
never clobbers an existing file (resume logic relies on that). With ``overwrite=False`` the
"never replace" rule holds at the moment of the move, not only when a caller looked earlier:
another process that wrote the same name meanwhile keeps its file.

Temporary files are named ``.<name>.<pid>-<random>.tmp``; a process killed mid-write leaves one
behind, and ``remove_stale_temporaries`` clears those whose process is gone (process ids are
those of this machine: do not run it while another machine writes into a shared folder).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

from ..errors import OutputExistsError, VQCNIRError, one_line

_TEMPORARY = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.tmp$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True):
    """Yield a temporary path in ``path``'s folder; on success it becomes ``path``.

    Without ``overwrite``, a ``path`` that exists when the write completes is kept and
    ``FileExistsError`` raised. The temporary file is removed whatever happens."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name[:180]}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        # some writers (safetensors) make the file private: give it the mode any new file gets
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        _publish(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # the file system refuses an existing name: an atomic no-clobber move
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network shares): claim the name, then fill it
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, path)


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically and durably (flushed to disk before the move).

    Failures raise one line naming the file: :class:`OutputExistsError` when ``overwrite`` is
    False and ``path`` exists, :class:`VQCNIRError` for the rest (a full disk, no permission)."""
    path = Path(path)
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
            f"{path}: cannot write the file ({error.strerror or one_line(error)})"
        ) from error


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> None:
    """``write_bytes`` for UTF-8 text (records, manifests, reports)."""
    write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _process_exists(pid: int) -> bool:
    if os.name == "nt":  # os.kill there would end the process: keep every file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a number we cannot ask about: keep its file
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete the temporary files that killed writes left in ``folder`` and below; returns how
    many. A file of a live process (a concurrent run writing into the same folder) is kept."""
    removed = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            match = _TEMPORARY.match(name)
            if match is None:
                continue
            if _process_exists(int(match.group(1))):
                continue
            try:
                (Path(root) / name).unlink()
                removed += 1
            except OSError:
                continue  # gone already, or not ours to delete
    return removed
