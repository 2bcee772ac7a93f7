"""Freed C heap goes back to the operating system after the steps that churn through memory."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from teachbot.memory import release_free_memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and needs glibc")
def test_freed_heap_is_returned() -> None:
    # many blocks below glibc's mmap threshold live in the heap, and stay there when freed
    blocks = [np.ones(8_000, dtype=np.float64) for _ in range(4_000)]  # 64 KB each, 256 MB in all
    del blocks
    before = _rss_mb()
    assert release_free_memory() is True
    assert _rss_mb() < before - 100
