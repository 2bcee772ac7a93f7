"""How fast is the sentence encoder, what does loading it cost, and what does its cache save?

Usage: python bench/encoder.py [--sentences N] [--runs R] [--encoder SETTING]
Encodes N questions (CLINC150 test questions from ../shared/data, else the 16 reference sentences of
the tests, repeated) with the ``encoder`` setting (default ``minilm``): sentences per second one at a
time and in batches of 32 (the default) and 64 (batches also stop at 1,024 padded tokens), on one and
two onnxruntime threads (best of R runs: the machine is shared); the time of one question (median and
p95); the time and memory (RSS) that loading adds; and the vector cache: N texts encoded the first
time, again, after a reopen, and with 10 new texts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from _common import CLINC, latencies_ms, percentile, table

from teachbot.answering.encoding import Encoder

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "answering" / "data" / "minilm_reference.json"


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process now (VmRSS) or at its peak (VmHWM), in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Count VmHWM again from the current RSS (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def questions(n: int) -> tuple[list[str], str]:
    if CLINC.is_file():
        rows = json.loads(CLINC.read_text(encoding="utf-8"))["test"]
        return [str(text) for text, _ in rows][:n], "CLINC150 test questions"
    print(f"CLINC150 not found at {CLINC.resolve()}: using the 16 reference sentences, repeated.")
    sentences = json.loads(REFERENCE.read_text(encoding="utf-8"))["sentences"]
    return [sentences[i % len(sentences)] + f" {i}" for i in range(n)], "reference sentences"


class Counting:
    """An encoder that counts the texts reaching it."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.encoded = inner, 0
        self.model_id, self.dim = inner.model_id, inner.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded += len(texts)
        return self.inner.encode(texts)

    def reads(self, text: str) -> bool:
        return self.inner.reads(text)


def best_rate(encode_all: Callable[[Sequence[str]], object], texts: Sequence[str], runs: int) -> float:
    """Sentences per second: the best of ``runs`` passes."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        encode_all(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=640)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--encoder", default="minilm")
    args = parser.parse_args()
    texts, source = questions(args.sentences)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")

    base = rss_mb()
    start = time.perf_counter()
    import onnxruntime  # noqa: F401  (timed on its own: the first load pays for it)
    import tokenizers  # noqa: F401

    from teachbot.answering.encoding import CachedEncoder, OnnxEncoder, load_encoder
    from teachbot.answering.encoding.cache import CACHE_FILE

    imported = time.perf_counter()
    encoder = load_encoder(args.encoder, threads=2)
    loaded = time.perf_counter()
    if not isinstance(encoder, OnnxEncoder):
        print(f"encoder={args.encoder}: no encoder to measure.")
        return
    memory = [rss_mb() - base]
    encoder.encode(texts)
    memory.append(rss_mb() - base)
    reset_peak()
    encoder.encode(["word " * 200] * 64)  # full batches of 128 tokens
    memory += [rss_mb("VmHWM") - base, rss_mb() - base]
    tokens = statistics.mean(len(encoder._tokenizer.encode(t).ids) for t in texts)
    model_id, dim, default_batch = encoder.model_id, encoder.dim, encoder.batch_size
    del encoder

    rows, latency = [], {}
    singles = texts[: max(50, len(texts) // 4)]
    for threads in (1, 2):
        encoder = load_encoder(args.encoder, threads=threads)
        assert isinstance(encoder, OnnxEncoder)
        rate = {1: best_rate(lambda ts, e=encoder: [e.encode([t]) for t in ts], singles, args.runs)}
        for size in (64, default_batch):
            encoder.batch_size = size
            cpu = time.process_time()
            rate[size] = best_rate(encoder.encode, texts, args.runs)
        cpu_ms = (time.process_time() - cpu) * 1000 / (args.runs * len(texts))  # at the default batch
        latency[threads] = latencies_ms(lambda t, e=encoder: e.encode([t]), singles)
        rows.append([threads, *(f"{rate[size]:.0f}" for size in (1, default_batch, 64)), f"{cpu_ms:.1f}"])
        cached = encoder if threads == 2 else None
    table(
        f"Sentences per second ({len(texts)} {source}, {tokens:.1f} tokens on average; best of {args.runs})",
        ["threads", "batch 1", f"batch {default_batch}", "batch 64", f"CPU ms per sentence (batch {default_batch})"],
        rows,
    )
    table(
        f"One question ({len(singles)} questions, one at a time)",
        ["threads", "median ms", "p95 ms"],
        [[t, f"{statistics.median(v):.1f}", f"{percentile(v, 95):.1f}"] for t, v in latency.items()],
    )
    table(
        f"Loading ({model_id}, {dim} dimensions; memory is RSS added to the process)",
        ["imports", "load", "loaded", f"after the {len(texts)}", "peak at 64 x 128 tokens", "after that"],
        [[f"{imported - start:.2f} s", f"{loaded - imported:.2f} s", *(f"{mb:.0f} MB" for mb in memory)]],
    )

    assert cached is not None
    cached.batch_size = default_batch
    counting = Counting(cached)
    steps = [("first time", texts, True), ("again", texts, False), ("after a reopen", texts, True)]
    steps.append(("+10 new texts", texts + [f"a new correction {n}" for n in range(10)], False))
    cache_rows = []
    with tempfile.TemporaryDirectory() as folder:
        cache = None
        for step, batch, reopen in steps:
            counting.encoded = 0
            begin = time.perf_counter()
            if reopen:
                if cache is not None:
                    cache.close()
                cache = CachedEncoder(counting, Path(folder))
            opened = time.perf_counter()
            assert cache is not None
            cache.encode(batch)
            done = time.perf_counter()
            size = sum(f.stat().st_size for f in Path(folder).glob(f"{CACHE_FILE}*")) / 2**20
            ms = (f"{(opened - begin) * 1000:.0f}", f"{(done - opened) * 1000:.0f}")
            cache_rows.append([step, len(batch), counting.encoded, *ms, f"{size:.1f}"])
        if cache is not None:
            cache.close()
    table(
        "Vector cache (SQLite, 2 threads)",
        ["pass", "texts", "encoded", "open ms", "encode ms", "files MB"],
        cache_rows,
    )


if __name__ == "__main__":
    main()
