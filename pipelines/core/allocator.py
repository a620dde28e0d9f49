"""Keep freed tensor memory in the process instead of handing it back to the OS (glibc only).

A denoising loop allocates and frees the same large activations every forward. glibc serves
blocks above its mmap threshold with fresh mmaps and unmaps them on free, so every forward pays
page faults (and kernel zeroing) on tens of MB; a video model's forward runs measurably faster
once freed blocks are kept (docs/BENCHMARKS.md, "Kernels and memory").
The process keeps its peak heap instead of shrinking after a call — what a CLI or app wants.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 2**20  # glibc's ceiling on 64-bit; blocks up to it come from the heap
_TRIM_THRESHOLD = 2**30  # free heap top kept before trimming back to the OS


def keep_freed_memory() -> bool:
    """Sets both glibc thresholds (setting only the trim one fixes the mmap threshold at 128 KiB,
    which made a forward much slower; docs/BENCHMARKS.md). Returns whether it applied; a no-op off
    glibc Linux."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
