"""Read one entry out of an Eet archive, EFL's container format (Enlightenment's .edj themes and
backgrounds hold their photos this way). No Python library reads Eet, and only stored entries are
needed, so this is the directory walk alone."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from ..errors import VQCNIRError

EET_MAGIC = 0x1EE70F42  # Eet file format 2 (EFL's eet_lib.c: EET_MAGIC_FILE2)
_EET_COMPRESSED, _EET_CIPHERED, _EET_ALIAS = 0x1, 0x2, 0x4


def read_eet_entry(archive: bytes | str | Path, entry: str, *, label: str | None = None) -> bytes:
    """The stored bytes of the entry named `entry` in an Eet archive (EFL's container format, used
    by Enlightenment's .edj themes and backgrounds), given as a file path or as the file's bytes.

    The format (file format 2, as `eet_flush2` in EFL's eet_lib.c writes it), every integer a
    32-bit big-endian unsigned int, every offset counted from the start of the file:

        header      magic 0x1ee70f42, number of directory entries N, number of dictionary entries D
        directory   N x 6 ints: data offset, stored size, uncompressed size, name offset,
                    name size (including the name's terminating NUL), flags
        dictionary  D x 5 ints (string table of serialised data structures; not needed here)
        then the entry names, the dictionary strings and the entries' data (8-byte aligned),
        and optionally a signature block at the end.

    Flags: bit 0 compressed (bits 3-10 say with what: zlib, LZ4, LZ4HC), bit 1 ciphered, bit 2 the
    entry is an alias (its data is another entry's name). Only plain stored entries are read: a
    compressed, ciphered or alias entry, a missing name or a malformed file raises VQCNIRError.
    """
    if isinstance(archive, (bytes, bytearray, memoryview)):
        data = bytes(archive)
        return _eet_entry(io.BytesIO(data), len(data), entry, label or "the Eet data")
    path = Path(archive)
    with path.open("rb") as f:
        return _eet_entry(f, path.stat().st_size, entry, label or str(path))


def _eet_entry(f, size: int, entry: str, label: str) -> bytes:
    def bad(why: str) -> VQCNIRError:
        return VQCNIRError(f"{label} is not a readable Eet archive: {why}")

    head = f.read(12)
    if len(head) < 12:
        raise bad("shorter than its 12-byte header")
    magic, count, _ = struct.unpack(">3I", head)
    if magic != EET_MAGIC:
        raise bad(f"magic {magic:#010x}, expected {EET_MAGIC:#010x}")
    if 12 + 24 * count > size:
        raise bad(f"its directory of {count} entries runs past the end of the file")
    directory = f.read(24 * count)
    wanted = entry.encode("utf-8")
    names = []
    for i in range(count):
        offset, stored, raw, name_offset, name_size, flags = struct.unpack_from(">6I", directory, 24 * i)
        if name_size == 0 or name_offset + name_size > size:
            raise bad(f"entry {i}'s name lies outside the file")
        f.seek(name_offset)
        name = f.read(name_size).rstrip(b"\0")
        if name != wanted:
            names.append(name.decode("utf-8", "replace"))
            continue
        if flags & _EET_CIPHERED:
            raise VQCNIRError(f"{label}: entry {entry!r} is encrypted; only stored entries can be read")
        if flags & _EET_COMPRESSED:
            raise VQCNIRError(f"{label}: entry {entry!r} is compressed (type {(flags >> 3) & 0xFF}, "
                              f"{raw} bytes packed into {stored}); only stored entries can be read")
        if flags & _EET_ALIAS:
            raise VQCNIRError(f"{label}: entry {entry!r} is an alias of another entry; "
                              "only stored entries can be read")
        if offset + stored > size:
            raise bad(f"entry {entry!r}'s data runs past the end of the file")
        f.seek(offset)
        return f.read(stored)
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    raise VQCNIRError(f"{label} has no entry {entry!r} (it has {count}: {shown})")
