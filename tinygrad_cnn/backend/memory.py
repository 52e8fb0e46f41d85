"""Keep freed multi-MB buffers in the process instead of giving them back to the OS.

Why: glibc's malloc serves blocks above a threshold (128 KiB at start) with
fresh `mmap` pages and unmaps them on free. Every training step allocates
activations and gradients of several MB, so every step would touch brand-new
pages, and each first touch is a page fault that zero-fills 4 KiB. On the
2-core VMs this project is measured on, nine 1.6 MB GEMM outputs kept alive
together took 62 ms with the default settings and 2.8 ms with the settings
below (docs/im2col.md). Raising the mmap threshold to its maximum (32 MiB on
64-bit) and the trim threshold to 1 GiB makes freed blocks go back to malloc's
free lists, where the next step finds them already mapped.

This changes a process-wide setting; `configure()` (backend/__init__.py) applies it,
on the first operation that splits work or when called. ``TINYGRAD_CNN_KEEP_MALLOC=1``
leaves malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024


def tune_malloc() -> bool:
    """Apply the settings above on glibc; return whether they were applied."""
    if os.environ.get("TINYGRAD_CNN_KEEP_MALLOC") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
