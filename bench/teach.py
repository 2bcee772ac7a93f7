"""Do corrections apply at once, reach other ways of asking, and leave everything else alone?

On CLINC150, through ``Knowledge`` (the overlay rule the bot uses), with the ``encoder`` setting
(``--encoder``, default ``minilm``; ``none`` is the wording-only overlay as it was before meaning):

1. Corrections: a model trained on ``train`` (with ``oos_train``); 200 test questions it gets wrong are taught
   (their intent as the answer). Reported: (a) the taught questions, (b) other questions of the same intents
   that were wrong before (does a correction reach other ways of asking?), (c) the rest of the test set (is
   anything stolen?), (d) out-of-scope questions still refused; at once (the overlay) and after the next
   training run (the model learns the taught questions beside ``train``; the overlay keeps them).
2. One correction per intent: a new bot (the starter model) is taught one ``train`` question of each intent;
   every test question is asked: the share answered with its own intent's taught answer, the share given
   another intent's taught answer, and the share of out-of-scope questions given a taught answer.
3. Worked examples for LLM prompts (``Knowledge.retrieve`` over a version trained on ``train``): the share of
   examples shown that are of the question's intent, the share of questions given at least one such, the share
   of out-of-scope questions given any; and for a new bot, how often an unrelated question pulls a starter
   example (small talk about teachbot itself) into the prompt.
4. ``NearestIndex`` (the wording index) at 100,000 entries: build and search time, memory.

The overlay's cut-offs are chosen on ``val`` (teaching ``train`` / wrong ``val`` questions the same way), the
margin over the model's evidence on ``train`` cross-fitted (val has too few wrong questions to teach);
``--tune`` prints the sweeps. Nothing is chosen on test.
Run: ``.venv/bin/python bench/teach.py [--tune] [--no-index] [--index-only] [--encoder none]``.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import latencies_ms, load_clinc, peak_memory_mb, percentile, table

from teachbot.answering import knowledge, meaning, overlay
from teachbot.answering.encoding import CachedEncoder, Encoder, load_encoder
from teachbot.answering.knowledge import Knowledge, LoadedVersion, build_reference
from teachbot.answering.local_model import LocalModel, Prediction
from teachbot.answering.nearest import TAUGHT_THRESHOLD, NearestIndex
from teachbot.training.data import TAUGHT_WEIGHT

Rows = list[tuple[str, str]]
N_CORRECTIONS = 200
INDEX_RUNS = 5
MARGINS = (-0.05, 0.0, 0.05, 0.1, 0.15, 0.2)  # how much closer than the model's own example a taught one must be
SAME = (0.58, 0.6, 0.62, 0.64, 0.66, 0.68, 0.7, 0.75)  # cosine of meaning that counts as the same question
TAUGHT_MARGINS = (0.0, 0.03, 0.06)  # over the nearest taught example with another answer
CONFIDENT_MEANINGS = (0.0, 0.75, 0.8, 0.85)  # 0: no such guard
MAX_WRONG = 0.03  # on val, at most this share may get another intent's taught answer (target on test: 5 %)


@contextmanager
def constants(**values: float) -> Iterator[None]:
    """Set overlay cut-offs for a while (module constants, read where they are used)."""
    homes = {
        "SAME_MEANING": (meaning, overlay),
        "TAUGHT_MARGIN": (meaning, overlay),
        "MEANING_OVERLAY_MARGIN": (knowledge,),
        "OVERLAY_MARGIN": (knowledge,),
        "CONFIDENT_MEANING": (knowledge,),
        "RETRIEVE_MEANING": (meaning, knowledge),
        "RETRIEVE_WORDING": (knowledge,),
    }
    saved = {(m, k): getattr(m, k) for k in values for m in homes[k]}
    for k, v in values.items():
        for m in homes[k]:
            setattr(m, k, v)
    try:
        yield
    finally:
        for (m, k), v in saved.items():
            setattr(m, k, v)


def remember_predictions(model: LocalModel) -> None:
    """Answer each question once: sweeps change only the overlay rule, never the model's prediction."""
    original, original_many, memo = model.predict, model.predict_many, {}

    def predict(text: str, vector: np.ndarray | None = None) -> Prediction:
        if text not in memo:
            memo[text] = original(text, vector)
        return memo[text]

    def predict_many(texts: Sequence[str], vectors: np.ndarray | None = None) -> list[Prediction]:
        new = [n for n, text in enumerate(texts) if text not in memo]
        if new:
            given = vectors[new] if vectors is not None else None
            memo.update(zip([texts[n] for n in new], original_many([texts[n] for n in new], given), strict=True))
        return [memo[text] for text in texts]

    model.predict = predict  # type: ignore[method-assign]
    model.predict_many = predict_many  # type: ignore[method-assign]


def knowledge_with(
    model: LocalModel, encoder: Encoder | None, taught: list[tuple[int, str, str]], learned: bool = False
) -> Knowledge:
    """A bot with ``model`` and the ``taught`` (key, question, answer) examples; ``learned``: the model was
    trained on them after its own training rows, as after the next training run."""
    k = Knowledge(threshold=model.threshold, taught_threshold=TAUGHT_THRESHOLD, fallback="?", encoder=encoder)
    ids = (*[None] * (len(model.prompts) - len(taught)), *(key for key, _, _ in taught)) if learned else ()
    k.set_model("global", LoadedVersion("bench", model, ids))
    for key, prompt, answer in taught:
        k.teach("global", key, prompt, answer)
    return k


def answers_of(k: Knowledge, texts: list[str]) -> list[str | None]:
    return [None if a.is_fallback else a.text for a in k.answer_many(texts)]


@dataclass
class Corrections:
    """One split with some wrong answers taught: which questions are which, and the answers before."""

    rows: Rows  # (text, intent); intent "oos" for out-of-scope questions
    before: list[str | None]
    taught: list[int]
    siblings: list[int]
    rest: list[int]
    oos: list[int]

    def right(self, ids: list[int], answers: list[str | None]) -> float:
        return sum(answers[n] == self.rows[n][1] for n in ids) / max(1, len(ids))

    def rejected(self, answers: list[str | None]) -> float:
        return sum(answers[n] is None for n in self.oos) / max(1, len(self.oos))


def corrections_on(
    model: LocalModel, encoder: Encoder | None, inscope: Rows, oos: Rows
) -> tuple[Corrections, Knowledge]:
    rows = inscope + [(t, "oos") for t, _ in oos]
    before = answers_of(knowledge_with(model, encoder, []), [t for t, _ in rows])
    wrong = [n for n in range(len(inscope)) if before[n] != inscope[n][1]]
    # at most half of the wrong ones, so some wrong questions of the same intents remain to be reached
    taught = sorted(random.Random(0).sample(wrong, min(N_CORRECTIONS, len(wrong) // 2)))
    intents = {inscope[n][1] for n in taught}
    siblings = [n for n in wrong if n not in set(taught) and inscope[n][1] in intents]
    rest = [n for n in range(len(inscope)) if n not in set(taught) and n not in set(siblings)]
    k = knowledge_with(model, encoder, [(n, inscope[n][0], inscope[n][1]) for n in taught])
    return Corrections(rows, before, taught, siblings, rest, list(range(len(inscope), len(rows)))), k


def tune_margin(model: LocalModel, encoder: Encoder | None, data: dict[str, Rows]) -> tuple[float, float]:
    """The margin over the model's evidence (and how close a correction must be to override a model at least
    ``CONFIDENT`` sure) with the most siblings fixed among those that cost the rest at most 0.1 point.

    Val has few wrong questions (about 60 to teach), so the choice is made on CLINC150 train, cross-fitted:
    a model trained on one half is corrected on the other, both ways (about 260 taught and 180 siblings);
    val is shown beside it. Nothing comes from test."""
    name = "MEANING_OVERLAY_MARGIN" if encoder is not None else "OVERLAY_MARGIN"
    rows = data["train"][:]
    random.Random(5).shuffle(rows)
    half = len(rows) // 2
    splits = []
    for fit_on, corrected in ((rows[:half], rows[half:]), (rows[half:], rows[:half])):
        part = LocalModel.fit(
            [t for t, _ in fit_on],
            [i for _, i in fit_on],
            out_of_scope=[t for t, _ in data["oos_train"]],
            encoder=encoder,
        )
        remember_predictions(part)
        splits.append(corrections_on(part, encoder, corrected, data["oos_val"]))
    splits.append(corrections_on(model, encoder, data["val"], data["oos_val"]))
    table_rows, best, best_key = [], (getattr(knowledge, name), knowledge.CONFIDENT_MEANING), (-1.0, 0.0, 0.0)
    guards = CONFIDENT_MEANINGS if encoder is not None else (knowledge.CONFIDENT_MEANING,)
    for margin, guard in [(m, g) for m in MARGINS for g in guards]:
        figures = []
        with constants(**{name: margin, "CONFIDENT_MEANING": guard}):
            for split, k in splits:
                after = answers_of(k, [t for t, _ in split.rows])
                figures.append((split, after))
        crossed = figures[:2]
        siblings = sum(s.right(s.siblings, a) * len(s.siblings) for s, a in crossed) / sum(
            len(s.siblings) for s, _ in crossed
        )
        drop = sum((s.right(s.rest, s.before) - s.right(s.rest, a)) * len(s.rest) for s, a in crossed)
        drop /= sum(len(s.rest) for s, _ in crossed)
        val, after = figures[2]
        table_rows.append(
            [
                margin,
                guard,
                f"{siblings:.1%}",
                f"{drop * 100:.3f}",
                f"{val.right(val.siblings, after):.1%}",
                f"{(val.right(val.rest, val.before) - val.right(val.rest, after)) * 100:.3f}",
            ]
        )
        key = (siblings, guard, -margin)  # ties: the stricter guard, then the smaller margin
        if drop <= 0.001 and key > best_key:
            best, best_key = (margin, guard), key
    if "--tune" in sys.argv:
        table(
            f"{name} sweep (train halves cross-fitted: {sum(len(s.taught) for s, _ in splits[:2])} taught; "
            f"val: {len(splits[2][0].taught)} taught)",
            [
                "margin",
                "sure model needs",
                "train: (b) siblings",
                "train: (c) drop, points",
                "val: (b)",
                "val: (c) drop",
            ],
            table_rows,
        )
    return best


def corrections(model: LocalModel, encoder: Encoder | None, data: dict[str, Rows], chosen: tuple[float, float]) -> None:
    """The taught questions through the overlay at once, and again after the next training run (``!train``): the
    model then learned them beside ``train``, and the overlay still holds them, as in the bot."""
    name = "MEANING_OVERLAY_MARGIN" if encoder is not None else "OVERLAY_MARGIN"
    margin, guard = chosen
    test, k = corrections_on(model, encoder, data["test"], data["oos_test"])
    texts = [t for t, _ in test.rows]
    taught = [(n, *test.rows[n]) for n in test.taught]
    retrained = LocalModel.fit(
        [t for t, _ in data["train"]] + [t for _, t, _ in taught],
        [i for _, i in data["train"]] + [i for _, _, i in taught],
        out_of_scope=[t for t, _ in data["oos_train"]],
        encoder=encoder,
        weights=[1.0] * len(data["train"]) + [TAUGHT_WEIGHT] * len(taught),  # as a training run weighs them
    )
    with constants(**{name: margin, "CONFIDENT_MEANING": guard}):
        after = answers_of(k, texts)
        trained = answers_of(knowledge_with(retrained, encoder, taught, learned=True), texts)
    answers = (test.before, after, trained)
    table(
        f"corrections through the overlay on test ({name} {margin}, CONFIDENT_MEANING {guard}; chosen on train)",
        ["questions", "n", "before", "after (overlay)", "after the next training run"],
        [
            ["(a) taught questions", len(test.taught), *(f"{test.right(test.taught, a):.1%}" for a in answers)],
            [
                "(b) same intent, wrong before",
                len(test.siblings),
                *(f"{test.right(test.siblings, a):.1%}" for a in answers),
            ],
            ["(c) the rest of the test set", len(test.rest), *(f"{test.right(test.rest, a):.2%}" for a in answers)],
            ["(d) out-of-scope rejected", len(test.oos), *(f"{test.rejected(a):.1%}" for a in answers)],
        ],
    )


def one_per_intent(
    starter: LocalModel, encoder: Encoder | None, teach_from: Rows, ask: Rows, oos: Rows, seed: int
) -> Callable[[], tuple[float, float, float]]:
    """A new bot taught one question of each intent; returns a scorer of (own, other, out-of-scope taken)."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in teach_from:
        by_intent.setdefault(intent, []).append(text)
    rng = random.Random(seed)
    taught = [
        (n, rng.choice(texts), f"taught answer for {intent}")
        for n, (intent, texts) in enumerate(sorted(by_intent.items()))
    ]
    k = knowledge_with(starter, encoder, taught)
    texts = [t for t, _ in ask] + [t for t, _ in oos]

    def score() -> tuple[float, float, float]:
        got = answers_of(k, texts)
        own = sum(a == f"taught answer for {i}" for a, (_, i) in zip(got, ask, strict=False)) / len(ask)
        other = sum(
            a is not None and a.startswith("taught answer for ") and a != f"taught answer for {i}"
            for a, (_, i) in zip(got, ask, strict=False)
        ) / len(ask)
        taken = sum(a is not None and a.startswith("taught answer for ") for a in got[len(ask) :]) / len(oos)
        return own, other, taken

    return score


def tune_reach(starter: LocalModel, encoder: Encoder, data: dict[str, Rows]) -> tuple[float, float]:
    """SAME_MEANING and TAUGHT_MARGIN with the most own answers on val among those giving at most MAX_WRONG
    of the questions another intent's taught answer."""
    score = one_per_intent(starter, encoder, data["train"], data["val"], data["oos_val"], seed=0)
    rows, best, best_own = [], (meaning.SAME_MEANING, meaning.TAUGHT_MARGIN), -1.0
    for same in SAME:
        for margin in TAUGHT_MARGINS:
            with constants(SAME_MEANING=same, TAUGHT_MARGIN=margin):
                own, other, taken = score()
            rows.append([same, margin, f"{own:.1%}", f"{other:.1%}", f"{taken:.1%}"])
            if other <= MAX_WRONG and own > best_own:
                best, best_own = (same, margin), own
    if "--tune" in sys.argv:
        table(
            f"SAME_MEANING / TAUGHT_MARGIN sweep on val (one train question taught per intent; at most {MAX_WRONG:.0%} "
            "may get another intent's answer)",
            ["same meaning", "taught margin", "own taught answer", "another intent's", "out-of-scope given one"],
            rows,
        )
    return best


RETRIEVE_CUTS = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
MIN_PRECISION = 0.9  # on val, at least this share of the examples shown must be of the question's intent
ABOUT_THE_BOT = {
    "greeting", "goodbye", "thank_you", "are_you_a_bot", "what_is_your_name", "what_can_i_ask_you",
    "who_made_you", "who_do_you_work_for", "where_are_you_from", "how_old_are_you", "user_name", "meaning_of_life",
}  # fmt: skip


def retrieval(k: Knowledge, ask: Rows, oos: Rows, intent_of: dict[str, str]) -> tuple[float, float, float]:
    """Worked examples an LLM prompt would get: (precision, questions with one of their intent, oos given any)."""
    shown = right = covered = 0
    for text, intent in ask:
        examples = k.retrieve(text, "global")
        shown += len(examples)
        same = sum(intent_of.get(e.prompt) == intent for e in examples)
        right += same
        covered += same > 0
    given = sum(bool(k.retrieve(text, "global")) for text, _ in oos)
    return right / max(1, shown), covered / len(ask), given / len(oos)


def retrieval_rows(model: LocalModel, starter: LocalModel, encoder: Encoder | None, data: dict[str, Rows]) -> None:
    """The cut-off for worked examples (chosen on val), then test, and starter examples on unrelated questions."""
    intent_of = dict(data["train"])
    k = knowledge_with(model, encoder, [])
    k.set_model("global", LoadedVersion("bench", model, (), build_reference(model, ())))
    name = "RETRIEVE_MEANING" if encoder is not None else "RETRIEVE_WORDING"
    chosen = getattr(knowledge if encoder is None else meaning, name)
    if encoder is not None:
        rows, chosen = [], max(RETRIEVE_CUTS)
        for cut in RETRIEVE_CUTS:
            with constants(RETRIEVE_MEANING=cut):
                precision, covered, given = retrieval(k, data["val"][::4], data["oos_val"], intent_of)
            rows.append([cut, f"{precision:.1%}", f"{covered:.1%}", f"{given:.1%}"])
            if precision >= MIN_PRECISION:
                chosen = min(chosen, cut)
        if "--tune" in sys.argv:
            table(
                f"RETRIEVE_MEANING sweep on val (every 4th question; precision must reach {MIN_PRECISION:.0%})",
                ["cut-off", "examples of the question's intent", "questions with one", "out-of-scope given any"],
                rows,
            )
        print(f"RETRIEVE_MEANING chosen on val: {chosen} (module default {meaning.RETRIEVE_MEANING})")
    with constants(**{name: chosen}):
        precision, covered, given = retrieval(k, data["test"][::3], data["oos_test"][::3], intent_of)
        fresh = knowledge_with(starter, encoder, [])
        fresh.set_model("global", LoadedVersion("starter", starter, (), build_reference(starter, ())))
        unrelated = [t for t, i in data["test"] if i not in ABOUT_THE_BOT][::3]
        pulled = sum(bool(fresh.retrieve(t, "global")) for t in unrelated) / len(unrelated)
    table(
        f"worked examples for LLM prompts on test (top 5, {name} {chosen})",
        ["examples of the question's intent", "questions with one", "out-of-scope given any",
         "new bot: unrelated questions given a starter example"],
        [[f"{precision:.1%}", f"{covered:.1%}", f"{given:.1%}", f"{pulled:.1%} (n={len(unrelated)})"]],
    )  # fmt: skip


def index_speed(texts: list[str], size: int = 100_000) -> None:
    rng = random.Random(0)
    words = [w for t in texts for w in t.split()]
    batch = []
    for key in range(size):
        base = texts[key % len(texts)]
        prompt = base if key < len(texts) else f"{base} {rng.choice(words)} {rng.choice(words)}"
        batch.append((key, prompt, f"answer {key}"))
    gc.collect()
    before_mb = peak_memory_mb()
    index = NearestIndex()
    start = time.perf_counter()
    index.add_many(batch)
    build_s = time.perf_counter() - start
    del batch
    queries = texts[:50] + [f"{t} please" for t in texts[1000:1500]]
    latencies_ms(lambda t: index.search(t, k=5), queries[:50])
    p50s, p99s = [], []
    for _ in range(INDEX_RUNS):
        lat = latencies_ms(lambda t: index.search(t, k=5), queries)
        p50s.append(percentile(lat, 50))
        p99s.append(percentile(lat, 99))
    index.add(size, "a freshly taught question about otters", "otters")
    fresh = index.search("a freshly taught question about otters", k=1)
    arrays = [v for v in vars(index).values() if isinstance(v, np.ndarray)]
    table(
        f"NearestIndex at {len(index):,} entries (latency: best / median of {INDEX_RUNS} runs)",
        ["build s", "search p50 ms", "search p99 ms", "fresh entry found", "index arrays MB", "peak MB (before)"],
        [
            [
                f"{build_s:.1f}",
                f"{min(p50s):.2f} / {statistics.median(p50s):.2f}",
                f"{min(p99s):.2f} / {statistics.median(p99s):.2f}",
                bool(fresh and fresh[0].key == size),
                f"{sum(a.nbytes for a in arrays) / 2**20:.0f}",
                f"{peak_memory_mb():.0f} ({before_mb:.0f})",
            ]
        ],
    )


def main() -> None:
    data = load_clinc()
    if "--index-only" in sys.argv:
        index_speed([t for t, _ in data["train"]])
        return
    setting = sys.argv[sys.argv.index("--encoder") + 1] if "--encoder" in sys.argv else "minilm"
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start; encoder {setting}")
    with tempfile.TemporaryDirectory() as cache_dir:
        raw = load_encoder(setting)
        encoder = CachedEncoder(raw, Path(cache_dir)) if raw is not None else None
        from teachbot.training.data import starter_examples

        starter_set = starter_examples()
        starter = LocalModel.fit([e.prompt for e in starter_set], [e.answer for e in starter_set], encoder=encoder)
        remember_predictions(starter)
        if encoder is not None:
            same, taught_margin = tune_reach(starter, encoder, data)
            print(
                f"chosen on val: SAME_MEANING {same}, TAUGHT_MARGIN {taught_margin} "
                f"(module defaults {meaning.SAME_MEANING}, {meaning.TAUGHT_MARGIN})"
            )
        else:
            same, taught_margin = meaning.SAME_MEANING, meaning.TAUGHT_MARGIN
        with constants(SAME_MEANING=same, TAUGHT_MARGIN=taught_margin):
            rows = []
            for seed in (0, 1, 2):
                own, other, taken = one_per_intent(
                    starter, encoder, data["train"], data["test"], data["oos_test"], seed
                )()
                rows.append([seed, f"{own:.1%}", f"{other:.1%}", f"{taken:.1%}"])
            table(
                "one correction per intent, on test (a new bot taught one train question of each of the 150 intents)",
                ["seed", "answered as taught", "another intent's taught answer", "out-of-scope given a taught answer"],
                rows,
            )
            model = LocalModel.fit(
                [t for t, _ in data["train"]],
                [i for _, i in data["train"]],
                out_of_scope=[t for t, _ in data["oos_train"]],
                encoder=encoder,
            )
            remember_predictions(model)
            chosen = tune_margin(model, encoder, data)
            name = "MEANING_OVERLAY_MARGIN" if encoder is not None else "OVERLAY_MARGIN"
            print(
                f"{name}, CONFIDENT_MEANING chosen: {chosen} "
                f"(module defaults {getattr(knowledge, name)}, {knowledge.CONFIDENT_MEANING})"
            )
            corrections(model, encoder, data, chosen)
            retrieval_rows(model, starter, encoder, data)
        if encoder is not None:
            encoder.close()
    if "--no-index" not in sys.argv:
        index_speed([t for t, _ in data["train"]])


if __name__ == "__main__":
    main()
