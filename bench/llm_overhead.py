"""The bot's own time per LLM answer, against a loopback server that answers instantly.

Usage: python bench/llm_overhead.py [--examples N] [--questions Q] [--freeze]
Stores N taught examples (default 100,000) in a ``NearestIndex``, then for Q questions (with a
6-turn history) times: retrieval of taught examples, prompt building (token counting included),
the two together (the bot's own work before the request), the HTTP round trip through the openai
SDK, and the whole ``OpenAIChatModel.answer``, in wall time and in CPU time (on a loaded machine
wall time includes waiting for a core). The fake server runs in its own process so its work does
not count as the bot's. Target: the bot's own work ≤ 5 ms at p99 on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.openai_server import FakeOpenAIServer

from teachbot.answering.nearest import NearestIndex
from teachbot.answering.protocols import Question, TaughtExample, Turn
from teachbot.config import load_settings
from teachbot.llm import OpenAIChatModel

_COMMON = [
    "the",
    "a",
    "to",
    "is",
    "of",
    "and",
    "in",
    "it",
    "you",
    "that",
    "for",
    "on",
    "with",
    "what",
    "how",
    "why",
    "when",
    "where",
    "who",
    "can",
    "do",
    "i",
    "my",
    "we",
    "this",
    "be",
    "are",
]


def _vocabulary(size: int, rng: random.Random) -> list[str]:
    """Pseudo-words: real text has a long tail of rare words, so posting lists stay short."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return _COMMON + ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(size)]


_WORDS = _vocabulary(20_000, random.Random(3))
_CUMULATIVE = list(itertools.accumulate(1.0 / (rank + 1) ** 1.05 for rank in range(len(_WORDS))))  # Zipf-like


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(_WORDS, cum_weights=_CUMULATIVE, k=rng.randint(low, high)))


def build_index(count: int, rng: random.Random) -> NearestIndex:
    index = NearestIndex()
    batch: list[tuple[int, str, str]] = []
    for key in range(count):
        batch.append((key, sentence(rng, 4, 20) + f" {key}?", sentence(rng, 8, 60) + "."))
        if len(batch) == 5000:
            index.add_many(batch)
            batch = []
    index.add_many(batch)
    return index


def _serve(urls: multiprocessing.Queue[str], stop: Any) -> None:
    async def serve() -> None:
        server = FakeOpenAIServer()
        server.reply = lambda body: "ok"
        urls.put(await server.start())
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        await server.close()

    asyncio.run(serve())


class ServerProcess:
    """The fake server in its own process, answering "ok" at once, so it does not compete for the GIL."""

    def __init__(self) -> None:
        self._urls: multiprocessing.Queue[str] = multiprocessing.Queue()
        self._stop = multiprocessing.Event()
        self._process = multiprocessing.Process(target=_serve, args=(self._urls, self._stop), daemon=True)
        self.url = ""

    def __enter__(self) -> ServerProcess:
        self._process.start()
        self.url = self._urls.get(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(timeout=10)


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


class Timer:
    """Wall time and this thread's CPU time of a block, in ms: on a loaded machine the wall time
    includes waiting for a core, the CPU time is the work itself."""

    def __init__(self, rows: dict[str, tuple[list[float], list[float]]], name: str) -> None:
        self.wall, self.cpu = rows.setdefault(name, ([], []))

    def __enter__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.thread_time()

    def __exit__(self, *exc: object) -> None:
        self.wall.append((time.perf_counter() - self._wall) * 1000)
        self.cpu.append((time.thread_time() - self._cpu) * 1000)


async def run(examples: int, questions: int, freeze: bool) -> None:
    rng = random.Random(11)
    started = time.perf_counter()
    index = build_index(examples, rng)
    built_s = time.perf_counter() - started
    if freeze:
        gc.collect()
        gc.freeze()  # what a long-running bot can do after loading: the index leaves the GC's scans

    def retrieve(question: Question) -> Sequence[TaughtExample]:
        hits = index.search(question.text, k=5, min_score=0.2)
        return [TaughtExample(h.key, h.prompt, h.answer, h.score) for h in hits]

    asked = [
        Question(
            sentence(rng, 5, 30) + "?",
            scope="guild",
            user_id=f"u{i % 50}",
            history=[Turn("user" if t % 2 == 0 else "assistant", sentence(rng, 10, 60)) for t in range(6)],
        )
        for i in range(questions)
    ]
    rows: dict[str, tuple[list[float], list[float]]] = {}
    with ServerProcess() as server:
        settings = load_settings(
            data_dir=Path("/tmp/teachbot-bench"),
            llm_base_url=server.url,
            llm_api_key="bench",
            llm_model="bench-model",
            llm_max_retries=0,
        )
        model = OpenAIChatModel.from_settings(settings, retrieve=retrieve)
        try:
            for question in asked[:20]:  # warm up: connection pool, caches
                await model.answer(question)
            used = 0
            for question in asked:
                with Timer(rows, "retrieval"):
                    found = retrieve(question)
                with Timer(rows, "prompt build"):
                    model.prompts.build(question, found)
                with Timer(rows, "retrieval + build"):
                    built = model.prepare(question)
                used += len(built.example_ids)
                with Timer(rows, "HTTP round trip"):
                    await model.client.chat.completions.create(model="bench-model", messages=built.messages)  # type: ignore[arg-type]
                with Timer(rows, "answer()"):
                    await model.answer(question)
        finally:
            await model.close()

    print(
        f"{examples:,} stored examples (index built in {built_s:.1f} s), {questions} questions, "
        f"{os.cpu_count()} CPUs, {used / questions:.1f} taught examples per prompt on average"
        + (", gc.freeze() after loading" if freeze else "")
    )
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} (wall times include waiting for a core when it exceeds the CPU count)")
    print(f"{'step':<20} {'wall p50':>9} {'wall p99':>9} {'cpu p50':>9} {'cpu p99':>9}  (ms)")
    for name, (wall, cpu) in rows.items():
        print(
            f"{name:<20} {percentiles(wall)[0]:>9.2f} {percentiles(wall)[1]:>9.2f} "
            f"{percentiles(cpu)[0]:>9.2f} {percentiles(cpu)[1]:>9.2f}"
        )
    own_wall, own_cpu = percentiles(rows["retrieval + build"][0])[1], percentiles(rows["retrieval + build"][1])[1]
    verdict = "within" if own_wall <= 5 else ("within (CPU time)" if own_cpu <= 5 else "OVER")
    print(f"bot's own work p99: {own_wall:.2f} ms wall, {own_cpu:.2f} ms CPU: {verdict} the 5 ms target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() once the index is loaded")
    args = parser.parse_args()
    asyncio.run(run(args.examples, args.questions, args.freeze))


if __name__ == "__main__":
    main()
