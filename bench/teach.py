"""Do corrections apply at once without breaking anything else? And how fast is the index at 100k?

On CLINC150: train on ``train``, take 200 test questions the model gets wrong, teach each one's
right intent through a ``NearestIndex`` overlay (``answer_with_overlay``), then measure the
corrected questions, their same-intent siblings, and everything else. Then time searches in an
index of 100,000 entries. Run: ``.venv/bin/python bench/teach.py``.
"""

from __future__ import annotations

import random
import sys
import time

from _common import latencies_ms, load_clinc, peak_memory_mb, percentile, table

from teachbot.answering.local_model import LocalModel, answer_with_overlay
from teachbot.answering.nearest import TAUGHT_THRESHOLD, NearestIndex

N_CORRECTIONS = 200


def corrections(model: LocalModel, test: list[tuple[str, str]]) -> None:
    before = [p.answer for p in model.predict_many([t for t, _ in test])]
    wrong = [n for n, (b, (_, i)) in enumerate(zip(before, test, strict=True)) if b != i]
    taught = set(random.Random(0).sample(wrong, min(N_CORRECTIONS, len(wrong))))
    overlay = NearestIndex()
    for n in sorted(taught):
        overlay.add(n, test[n][0], test[n][1])
    after = [answer_with_overlay(model, overlay, t, overlay_threshold=TAUGHT_THRESHOLD).answer for t, _ in test]
    taught_intents = {test[n][1] for n in taught}
    siblings = [n for n in range(len(test)) if n not in taught and test[n][1] in taught_intents and n in wrong]
    rest = [n for n in range(len(test)) if n not in taught and n not in siblings]

    def right(ids: list[int], answers: list[str | None]) -> float:
        return sum(answers[n] == test[n][1] for n in ids) / max(1, len(ids))

    rows = [
        [
            "(a) taught questions",
            len(taught),
            f"{right(sorted(taught), before):.1%}",
            f"{right(sorted(taught), after):.1%}",
        ],
        [
            "(b) same intent, wrong before",
            len(siblings),
            f"{right(siblings, before):.1%}",
            f"{right(siblings, after):.1%}",
        ],
        ["(c) the rest of the test set", len(rest), f"{right(rest, before):.2%}", f"{right(rest, after):.2%}"],
    ]
    table(
        f"corrections through the overlay (threshold {TAUGHT_THRESHOLD})", ["questions", "n", "before", "after"], rows
    )


def index_speed(texts: list[str], size: int = 100_000) -> None:
    rng = random.Random(0)
    words = [w for t in texts for w in t.split()]
    index = NearestIndex()
    start = time.perf_counter()
    batch = []
    for key in range(size):
        base = texts[key % len(texts)]
        prompt = base if key < len(texts) else f"{base} {rng.choice(words)} {rng.choice(words)}"
        batch.append((key, prompt, f"answer {key}"))
    index.add_many(batch)
    build_s = time.perf_counter() - start
    queries = texts[:50] + [f"{t} please" for t in texts[1000:1500]]
    latencies_ms(lambda t: index.search(t, k=5), queries[:50])
    lat = latencies_ms(lambda t: index.search(t, k=5), queries)
    index.add(size, "a freshly taught question about otters", "otters")
    fresh = index.search("a freshly taught question about otters", k=1)
    table(
        f"NearestIndex at {len(index):,} entries",
        ["build s", "search p50 ms", "search p99 ms", "fresh entry found", "peak MB"],
        [
            [
                f"{build_s:.1f}",
                f"{percentile(lat, 50):.2f}",
                f"{percentile(lat, 99):.2f}",
                bool(fresh and fresh[0].key == size),
                f"{peak_memory_mb():.0f}",
            ]
        ],
    )


def main() -> None:
    data = load_clinc()
    model = LocalModel.fit(
        [t for t, _ in data["train"]], [i for _, i in data["train"]], out_of_scope=[t for t, _ in data["oos_train"]]
    )
    corrections(model, data["test"])
    if "--no-index" not in sys.argv:
        index_speed([t for t, _ in data["train"]])


if __name__ == "__main__":
    main()
