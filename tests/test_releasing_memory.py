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

blocks = [np.ones(8_000) for _ in range(4_000)]  # 64 KB each (below glibc's mmap threshold), 256 MB in all
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
