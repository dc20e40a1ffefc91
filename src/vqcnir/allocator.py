"""Keep freed memory in the process (glibc) so full-resolution feature maps stop page-faulting.

glibc serves every allocation above its mmap threshold (32 MiB at most by default) straight
from the kernel and hands it back on free. A 1 MP restore makes hundreds of such feature maps,
so each one is page-faulted in again and zero-filled by the kernel: about 3.8 million page
faults and a third of the wall time (14.3 s -> 9.6 s for the first default model
(docs/first_default.md), 2 threads; see benchmarks/restore_speed.py --allocators). Raising the mmap and trim thresholds keeps freed
blocks in the heap for the next tensor. The price: the process keeps its peak memory until it
exits, and the heap fragments, so the peak itself grows (1.25x to 1.75x, which
``engine.auto_tile_plan`` allows for).

The CLI turns this on for restore and evaluate; library users opt in with ``keep_freed_memory()``.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt() parameters (malloc.h) and the largest value its int argument takes
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LARGEST = 2**31 - 1
# a user who tuned glibc's allocator through the environment keeps their setting
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")

_active = False


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks up to 2 GiB for reuse. True if it now does (or already did);
    False on other C libraries or when the environment already tunes glibc's allocator."""
    global _active
    if _active:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _LARGEST) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _LARGEST) == 1
    except (OSError, AttributeError):
        return False
    _active = bool(ok)
    return _active


def keeps_freed_memory() -> bool:
    """Whether ``keep_freed_memory()`` took effect in this process."""
    return _active


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def reusable_bytes() -> int:
    """Freed memory this process holds for reuse (0 unless keeping). The system counts it as used,
    so ``engine.default_memory_budget`` adds it back to the RAM it sees as available."""
    if not _active:
        return 0
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2  # glibc 2.33 and later
    except (OSError, AttributeError):
        return 0
    mallinfo2.restype = _MallInfo2
    return int(mallinfo2().fordblks)
