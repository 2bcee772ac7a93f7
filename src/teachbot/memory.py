"""Giving freed memory back to the operating system after the few steps that churn through a lot of it.

Loading the sentence encoder, loading a model and training allocate far more than they keep (onnxruntime
reads and rewrites the whole graph; liblinear copies the training matrix per thread). glibc keeps what was
freed in its heaps for reuse, so the process stays as large as its busiest moment: after loading the
encoder 58 MB of its 169 MB were such free heap. ``malloc_trim`` hands it back. On other C libraries
(musl, macOS) this does nothing.

glibc also raises its threshold for serving a block from ``mmap`` each time such a block is freed, up to
32 MB, after which large arrays come from the heap and stay there when freed: ``map_large_blocks`` keeps the
threshold at 1 MB, so arrays above it go back to the system as soon as they are freed (a CLINC150 fit held
64 MB less after its SVM and peaked 29 MB lower, in the same time; encoding ran as fast).

Releasing the sentence encoder frees its heap but not the code that ran it: onnxruntime's and tokenizers'
libraries stay resident (26 MB) though nothing runs them until the encoder loads again. ``page_out_files``
asks Linux (5.4 on, ``MADV_PAGEOUT``) to drop such file pages, read back from the file when next run: in a
CLINC150 train from scratch the fit's SVM, which follows the release, peaked at 420-431 MB instead of
436-447. Linux drops only pages no other process maps, of files the process could write (a package installed
by another user stays resident); on other systems this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable

__all__ = ["map_large_blocks", "page_out_files", "release_free_memory"]

log = logging.getLogger(__name__)


_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
LARGE_BLOCK = 2**20  # bytes from which a block gets its own mapping
_MADV_PAGEOUT = 21  # madvise's advice number in Linux's mman-common.h (5.4 on)


@functools.cache
def _libc_function(name: str, argtypes: tuple[type, ...], restype: type) -> Callable[..., int] | None:
    """A function of glibc's, or None on a C library without it. Looked up among the symbols the process has
    loaded already: ``ctypes.util.find_library`` runs ldconfig, 4 ms of every start. ``ctypes.get_errno``
    gives the error of its last call."""
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):  # not glibc
        return None
    function.argtypes, function.restype = list(argtypes), restype
    return function


def release_free_memory() -> bool:
    """Return the C heap's free memory to the operating system; whether the C library could."""
    trim = _libc_function("malloc_trim", (ctypes.c_size_t,), ctypes.c_int)
    if trim is None:
        return False
    trim(0)
    return True


def map_large_blocks() -> bool:
    """Serve blocks of ``LARGE_BLOCK`` bytes and more from their own mappings, for the rest of the process, so
    freeing them returns them at once; whether the C library could. Called once, when a teachbot process starts."""
    mallopt = _libc_function("mallopt", (ctypes.c_int, ctypes.c_int), ctypes.c_int)
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK))


def page_out_files(folders: Iterable[str | os.PathLike[str]]) -> int:
    """Ask Linux to drop from memory this process's pages of the files under ``folders`` that it maps read-only
    (shared libraries' code and constants), until they are next used; the bytes of the mappings it was asked
    about, 0 if it could not be (not Linux, no ``madvise``, a kernel before 5.4) or nothing matched. Writable
    and anonymous mappings are left alone: their pages are no copy of a file (nor are the few pages of a
    read-only mapping the loader wrote, relocations, 1 MB for onnxruntime and tokenizers: Linux sends them to
    swap if there is one, or keeps them)."""
    madvise = None
    if sys.platform.startswith("linux"):
        madvise = _libc_function("madvise", (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int), ctypes.c_int)
    prefixes = tuple(os.path.join(os.path.realpath(folder), "") for folder in folders)  # as /proc names them
    if madvise is None or not prefixes:
        return 0
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="surrogateescape") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return 0
    advised = 0
    for line in lines:
        # start-end perms offset device inode path; a path may hold spaces
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or not fields[1].startswith(("r--", "r-x")) or not fields[5].startswith(prefixes):
            continue
        start, end = (int(address, 16) for address in fields[0].split("-"))
        if madvise(start, end - start, _MADV_PAGEOUT) != 0:  # EINVAL: a kernel without MADV_PAGEOUT
            log.debug("madvise(MADV_PAGEOUT) refused for %s: %s", fields[5], os.strerror(ctypes.get_errno()))
            return 0
        advised += end - start
    return advised
