"""How fast teachbot validates a large chat JSONL file, and how much memory it needs.

Usage: python bench/validate.py [FILE] [--examples N]
Without FILE it writes an N-example (default 100,000) OpenAI chat JSONL in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from teachbot.datasets.validation import ValidationReport, validate_file

_VOCABULARY = (
    "teach bot answer question discord server channel message learn model train data set example why how "
    "what when where who remember correct wrong right again please thanks hello friend help voice speak"
)
_WORDS = _VOCABULARY.split()


def make_chat_jsonl(path: Path, count: int, seed: int = 7) -> None:
    """Realistic-looking chat lines: a system prompt on most, a 5-40 word question, a 10-120 word answer."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for n in range(count):
            question = " ".join(rng.choices(_WORDS, k=rng.randint(5, 40))) + f" #{n}?"
            answer = " ".join(rng.choices(_WORDS, k=rng.randint(10, 120))) + "."
            messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            if n % 4:
                messages.insert(0, {"role": "system", "content": "You are teachbot, a helpful Discord bot."})
            handle.write(json.dumps({"messages": messages}) + "\n")


def measure(path: Path, *, trace: bool) -> tuple[float, int, ValidationReport]:
    """Seconds and peak traced bytes (0 when not traced) for one validation of ``path``."""
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    report = validate_file(path)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    return seconds, peak, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path)
    parser.add_argument("--examples", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.file
        if path is None:
            path = Path(folder) / "bench.jsonl"
            start = time.perf_counter()
            make_chat_jsonl(path, args.examples)
            print(f"wrote {args.examples:,} examples to a temp file in {time.perf_counter() - start:.1f} s")
        seconds, _, report = measure(path, trace=False)
        traced_seconds, peak, _ = measure(path, trace=True)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        size = path.stat().st_size
        rows = [
            ("file", f"{path.name} ({size / 1024 / 1024:.1f} MiB)"),
            ("records", f"{report.records:,}"),
            ("tokens", f"{report.tokens.total:,}"),
            ("issues", f"{report.error_count:,} errors, {report.warning_count:,} warnings"),
            ("total seconds", f"{seconds:.2f}"),
            ("examples/s", f"{report.records / seconds:,.0f}"),
            ("peak traced memory", f"{peak / 1024 / 1024:.1f} MiB (traced run: {traced_seconds:.1f} s)"),
            ("peak RSS (process)", f"{rss:.0f} MiB"),
        ]
        width = max(len(name) for name, _ in rows)
        print(f"{'measure':<{width}} | value\n{'-' * width}-+-{'-' * 30}")
        for name, value in rows:
            print(f"{name:<{width}} | {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
