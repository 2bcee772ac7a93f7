"""Freed C heap goes back to the operating system after the steps that churn through memory."""

from __future__ import annotations

import mmap
import subprocess
import sys
from pathlib import Path

import pytest

from teachbot import memory


def fresh_process(script: str, *args: str) -> list[str]:
    """What ``script`` prints, run in a fresh interpreter with teachbot's sources, split into words."""
    source = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, check=True,
        env={"PYTHONPATH": source, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return done.stdout.split()


# In a fresh interpreter, so the heap holds nothing but what the script frees (a long test run's heap is
# fragmented by everything before it).
SCRIPT = """
import numpy as np
from teachbot.memory import release_free_memory

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

blocks, kept = [], []
for n in range(4_000):  # 64 KB each (below glibc's mmap threshold), 256 MB in all
    blocks.append(np.ones(8_000))
    if n % 16 == 0:
        kept.append(np.ones(2_000))  # a small live block now and then: freed holes, not a free heap top
del blocks
before = rss_mb()
released = release_free_memory()
print(released, before, rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and needs glibc")
def test_freed_heap_is_returned() -> None:
    printed = fresh_process(SCRIPT)
    released, before, after = printed
    assert released == "True"
    assert float(after) < float(before) - 100, printed


LARGE_SCRIPT = """
import sys
import numpy as np
from teachbot.memory import map_large_blocks

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

mapped = map_large_blocks() if sys.argv[1] == "map" else False
big = np.ones(4_000_000)  # 32 MB; freeing it makes glibc serve blocks up to 32 MB from its heap from now on
del big
before = rss_mb()
blocks, small = [], []
for _ in range(40):  # 4 MB arrays interleaved with small live objects, as a fit's arrays are
    blocks.append(np.ones(500_000))
    small.append(np.ones(2_000))  # 16 KB, from the C heap
del blocks
print(mapped, rss_mb() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and needs glibc")
def test_large_blocks_go_back_when_freed() -> None:
    def kept_mb(mode: str) -> tuple[str, float]:
        mapped, kept = fresh_process(LARGE_SCRIPT, mode)
        return mapped, float(kept)

    mapped, kept = kept_mb("map")
    assert mapped == "True"
    assert kept < 20, kept  # the 160 MB of freed arrays went back
    assert kept_mb("heap")[1] > 100  # without it they stay: the test sees the difference it claims


# Whether the kernel takes MADV_PAGEOUT (Linux 5.4 on), asked of an anonymous mapping: a helper that finds
# nothing to page out also returns 0, and that must fail the tests, not skip them.
PROBE = """
import mmap

def pages_out():
    try:
        mmap.mmap(-1, mmap.PAGESIZE).madvise(21)
    except (OSError, AttributeError):
        return False
    return True
"""

PAGE_OUT_SCRIPT = (
    PROBE
    + """
import os, sys
from teachbot.memory import page_out_files

folder = sys.argv[1]

def written(name):
    path = os.path.join(folder, name)
    with open(path, "wb") as file:
        file.write(os.urandom(16 * 2**20))
        file.flush()
        os.fsync(file.fileno())  # clean pages: paging out never writes back
    return path

def mapped(path, access):
    with open(path, "rb" if access == mmap.ACCESS_READ else "r+b") as file:
        pages = mmap.mmap(file.fileno(), 0, access=access)
    sum(pages[n] for n in range(0, len(pages), mmap.PAGESIZE))  # every page resident
    return pages

def resident_kb(path):
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        if line[0] in "0123456789abcdef" and "-" in line.split()[0]:  # a mapping's header names its file
            inside = line.rstrip().endswith(path)
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total

read_only, private = written("read-only.bin"), written("private.bin")
pages = mapped(read_only, mmap.ACCESS_READ)
copied = mapped(private, mmap.ACCESS_COPY)  # rw-p: writable, left alone
content = pages[:]
before = resident_kb(read_only), resident_kb(private)
advised = page_out_files([folder])
after = resident_kb(read_only), resident_kb(private)
same = pages[:] == content  # faulted back from the file
print(pages_out(), advised, *before, *after, same)
"""
)


def _filesystem(path: Path) -> str:
    """The type of the file system holding ``path`` (the longest mount point above it)."""
    mounts = [line.split()[1:3] for line in Path("/proc/self/mounts").read_text().splitlines()]
    above = [(point, kind) for point, kind in mounts if path.is_relative_to(point)]
    return max(above, key=lambda mount: len(mount[0]))[1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and needs Linux's MADV_PAGEOUT")
def test_read_only_file_pages_are_paged_out(tmp_path: Path) -> None:
    folder = tmp_path.resolve()
    if _filesystem(folder) in ("tmpfs", "ramfs"):
        pytest.skip("the temporary folder is in memory: its pages have no file to go back to")
    printed = fresh_process(PAGE_OUT_SCRIPT, str(folder))
    supported, advised, read_before, private_before, read_after, private_after, same = printed
    if supported != "True":
        pytest.skip("the kernel refuses MADV_PAGEOUT (Linux before 5.4?)")
    assert int(advised) == 16 * 2**20  # the read-only mapping only
    assert int(read_before) >= 15 * 1024, printed
    assert int(read_after) < 1024, printed  # 16 MB left memory
    assert int(private_after) == int(private_before), printed  # the writable mapping kept its pages
    assert same == "True"


ENCODER_SCRIPT = (
    PROBE
    + """
import numpy as np
from teachbot.answering.encoding import lazy_encoder, release_model
from teachbot.answering.encoding.lazy import _library_folders
from teachbot.memory import page_out_files

lazy = lazy_encoder("minilm")
texts = [f"question {n}: when does the meetup on day {n % 7} start?" for n in range(300)]
first = lazy.encode(texts)
release_model(lazy)  # pages onnxruntime's and tokenizers' code out
assert not lazy.is_loaded
again = lazy.encode(texts)  # which runs again, read back from the files
print(pages_out(), page_out_files(_library_folders()), np.array_equal(first, again))
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pages out on Linux only")
def test_a_released_encoder_encodes_the_same_after_its_code_was_paged_out() -> None:
    # a fresh process, whose libraries are those the encoder loaded; how much left memory is not asserted:
    # Linux leaves the pages another process maps too (a test run or bot using onnxruntime meanwhile)
    supported, advised, same = fresh_process(ENCODER_SCRIPT)
    assert same == "True"
    if supported == "True":
        assert int(advised) > 20 * 2**20  # the release path names the folders of the libraries' mapped files


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="asks Linux's madvise")
def test_a_refused_page_out_says_so_and_raises_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pages.bin"
    path.write_bytes(b"x" * 4 * mmap.PAGESIZE)
    with path.open("rb") as file:
        pages = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        assert memory.page_out_files([tmp_path / "elsewhere"]) == 0  # nothing mapped there
        monkeypatch.setattr(memory, "_MADV_PAGEOUT", 999)  # advice no kernel knows: EINVAL, as before Linux 5.4
        assert memory.page_out_files([tmp_path]) == 0
    finally:
        pages.close()
