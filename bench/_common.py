"""Shared helpers for teachbot benchmarks: where the data is, and timing and table printing."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CLINC = DATA / "clinc150" / "data_full.json"


def load_clinc() -> dict[str, list[tuple[str, str]]]:
    """CLINC150 splits as (text, intent) lists; exits 0 with a note when the data is absent."""
    if not CLINC.is_file():
        print(f"CLINC150 not found at {CLINC.resolve()}: nothing to measure.")
        sys.exit(0)
    raw = json.loads(CLINC.read_text(encoding="utf-8"))
    return {split: [(str(t), str(i)) for t, i in rows] for split, rows in raw.items()}


def latencies_ms(fn: Callable[[str], object], texts: Sequence[str]) -> list[float]:
    """Wall time of ``fn`` on each text, one at a time, in milliseconds."""
    out = []
    for text in texts:
        start = time.perf_counter()
        fn(text)
        out.append((time.perf_counter() - start) * 1000)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain-text table (copyable into reports)."""
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
