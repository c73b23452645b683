"""Keep freed CPU memory in the process, so that a training step's large tensors do not
page-fault on every step.

A training step allocates and frees the same large tensors every step (at batch 256 on the
40 -> 256 -> 10 network: currents, spikes, surrogate slopes and their gradients, 26-33 MB
each). torch's CPU allocator is glibc's malloc, which serves blocks above its mmap threshold
(at most 32 MB) with fresh mmap'd pages and returns them to the kernel when freed: the next
step's first write to each page then faults and the kernel zeroes it (measured with
bench/profile_step.py's setup, sparse dcls at 0.98: 12,000-28,000 minor faults and
20-45 ms of system time per 150 ms step on one thread). ``keep_freed_memory`` sets glibc's
M_MMAP_MAX to 0 (every block comes from the heap) and M_TRIM_THRESHOLD to 2 GiB (freed heap
memory is kept for reuse), as glibc's MALLOC_MMAP_MAX_ / MALLOC_TRIM_THRESHOLD_ environment
variables would. Results are unchanged (only where memory comes from); the process holds its
peak memory until it exits. Other C libraries: nothing is changed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1          # glibc mallopt parameters (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2 ** 31 - 1   # bytes of free heap kept before trimming (an int)

_state: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Set glibc malloc to keep freed memory (module docstring), once per process. Returns
    whether it is in effect: False where the C library is not glibc (nothing changed)."""
    if "done" not in _state:
        _state["done"] = _set_glibc()
    return _state["done"]


def _set_glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
