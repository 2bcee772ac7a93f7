"""Giving freed memory back to the operating system after the few steps that churn through a lot of it.

Loading the sentence encoder, loading a model and training allocate far more than they keep (onnxruntime
reads and rewrites the whole graph; liblinear copies the training matrix per thread). glibc keeps what was
freed in its heaps for reuse, so the process stays as large as its busiest moment: after loading the
encoder 58 MB of its 169 MB were such free heap. ``malloc_trim`` hands it back. On other C libraries
(musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

__all__ = ["release_free_memory"]

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the C heap's free memory to the operating system; whether the C library could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
