"""Freed C heap goes back to the operating system after the steps that churn through memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
    source = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True,
        env={"PYTHONPATH": source, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    released, before, after = done.stdout.split()
    assert released == "True"
    assert float(after) < float(before) - 100, done.stdout


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
    source = str(Path(__file__).resolve().parents[1] / "src")

    def kept_mb(mode: str) -> tuple[str, float]:
        done = subprocess.run(
            [sys.executable, "-c", LARGE_SCRIPT, mode], capture_output=True, text=True, timeout=120, check=True,
            env={"PYTHONPATH": source, "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        mapped, kept = done.stdout.split()
        return mapped, float(kept)

    mapped, kept = kept_mb("map")
    assert mapped == "True"
    assert kept < 20, kept  # the 160 MB of freed arrays went back
    assert kept_mb("heap")[1] > 100  # without it they stay: the test sees the difference it claims
