"""CLINC150 intent benchmark of the local model (and ChatterBot when installed), as a table.

Trains on ``train`` with ``oos_train`` as out-of-scope examples; picks nothing on test. The
threshold is the model's default (chosen on ``val`` + ``oos_val``; ``--tune`` shows that sweep).
``--starter`` also measures the starter set (what a new user meets) on CLINC150: the share of
greeting / goodbye / thank_you / are_you_a_bot / what_is_your_name / what_can_i_ask_you questions
it answers right, and the share of all other questions (in scope or not) it wrongly answers.
Run: ``.venv/bin/python bench/intents.py [--tune] [--starter]``.
"""

from __future__ import annotations

import gc
import random
import sys
import tempfile
import time

from _common import latencies_ms, load_clinc, peak_memory_mb, percentile, table

from teachbot.answering.local_model import LocalModel


def score(model: LocalModel, inscope: list[tuple[str, str]], oos: list[tuple[str, str]]) -> tuple[float, float]:
    right = sum(p.answer == i for p, (_, i) in zip(model.predict_many([t for t, _ in inscope]), inscope, strict=True))
    rejected = sum(p.answer is None for p in model.predict_many([t for t, _ in oos]))
    return right / len(inscope), rejected / len(oos)


def chatterbot_row(data: dict[str, list[tuple[str, str]]], sample: int = 300) -> list[object] | None:
    """ChatterBot 1.2 measured the same way on a sample (it answers in seconds, not milliseconds)."""
    try:
        from chatterbot import ChatBot  # type: ignore[import-not-found]
        from chatterbot.tagging import LowercaseTagger  # type: ignore[import-not-found]
        from chatterbot.trainers import ListTrainer  # type: ignore[import-not-found]
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        bot = ChatBot("bench", database_uri=f"sqlite:///{tmp}/db.sqlite3", tagger=LowercaseTagger)
        start = time.perf_counter()
        trainer = ListTrainer(bot, show_training_progress=False)
        for text, intent in data["train"]:
            trainer.train([text, intent])
        train_s = time.perf_counter() - start
        picked = random.Random(0).sample(data["test"], sample)
        answers: list[str] = []
        lat = latencies_ms(lambda t: answers.append(str(bot.get_response(t))), [t for t, _ in picked])
        acc = sum(a == i for a, (_, i) in zip(answers, picked, strict=True)) / sample
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    return ["ChatterBot", f"{acc:.1%} (n={sample})", "-", f"{train_s:.1f}", f"{p50:.1f}", f"{p95:.1f}"]


STARTER_INTENTS = {  # CLINC intent → the start of the starter answer that fits it
    "greeting": "Hello!",
    "goodbye": "Goodbye",
    "thank_you": "You're welcome",
    "are_you_a_bot": "I'm teachbot",
    "what_is_your_name": "I'm teachbot",
    "what_can_i_ask_you": "I answer",
}
#: About the bot, but no starter answer fits well: counted neither way.
UNCLEAR_INTENTS = {"who_made_you", "who_do_you_work_for", "where_are_you_from", "how_old_are_you", "user_name"}


def starter_rows(data: dict[str, list[tuple[str, str]]]) -> None:
    from teachbot.training.data import starter_examples

    examples = starter_examples()
    model = LocalModel.fit([e.prompt for e in examples], [e.answer for e in examples])
    rows = []
    for split in ("val", "test"):
        questions = data[split] + [(t, "oos") for t, _ in data[f"oos_{split}"]]
        mine = [(t, i) for t, i in questions if i in STARTER_INTENTS]
        other = [t for t, i in questions if i not in STARTER_INTENTS and i not in UNCLEAR_INTENTS]
        answers = model.predict_many([t for t, _ in mine])
        right = sum((p.answer or "").startswith(STARTER_INTENTS[i]) for p, (_, i) in zip(answers, mine, strict=True))
        wrong = sum(p.answer is not None for p in model.predict_many(other))
        rows.append([split, f"{right / len(mine):.1%} (n={len(mine)})", f"{wrong / len(other):.2%} (n={len(other)})"])
    table("starter set on CLINC150", ["split", "own intents answered right", "others answered"], rows)


def main() -> None:
    data = load_clinc()
    if "--starter" in sys.argv:
        starter_rows(data)
    prompts, intents = [t for t, _ in data["train"]], [i for _, i in data["train"]]
    gc.collect()
    start = time.perf_counter()
    model = LocalModel.fit(prompts, intents, out_of_scope=[t for t, _ in data["oos_train"]])
    train_s = time.perf_counter() - start
    if "--tune" in sys.argv:
        rows = []
        for threshold in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
            model.threshold = threshold
            acc, rec = score(model, data["val"], data["oos_val"])
            rows.append([threshold, f"{acc:.1%}", f"{rec:.1%}"])
        table("threshold sweep on val / oos_val", ["threshold", "in-scope acc", "oos recall"], rows)
        model = LocalModel.fit(prompts, intents, out_of_scope=[t for t, _ in data["oos_train"]])
    acc, rec = score(model, data["test"], data["oos_test"])
    texts = [t for t, _ in data["test"]]
    latencies_ms(model.predict, texts[:200])  # warm up
    lat = latencies_ms(model.predict, texts[:2000])
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    rows: list[list[object]] = [
        ["teachbot local", f"{acc:.1%}", f"{rec:.1%}", f"{train_s:.1f}", f"{p50:.2f}", f"{p95:.2f}"]
    ]
    teachbot_peak = peak_memory_mb()  # before ChatterBot loads into the same process
    sample = int(sys.argv[sys.argv.index("--chatterbot-sample") + 1]) if "--chatterbot-sample" in sys.argv else 300
    cb = chatterbot_row(data, sample)
    if cb is not None:
        rows.append(cb)
        rows.append(
            [
                "ratio (ChatterBot ÷ teachbot)",
                "",
                "",
                f"{float(cb[3]) / train_s:.1f}×",
                f"{float(cb[4]) / p50:,.0f}×",
                f"{float(cb[5]) / p95:,.0f}×",
            ]
        )
    else:
        print("(chatterbot not installed: its row is skipped)")
    table(
        f"CLINC150 full (threshold {model.threshold}; targets ≥93.0% / ≥50% / ≤10 s / p95 ≤5 ms / ≤300 MB)",
        ["system", "in-scope acc", "oos recall", "train s", "p50 ms", "p95 ms"],
        rows,
    )
    print(f"peak memory of the process (teachbot alone): {teachbot_peak:.0f} MB")


if __name__ == "__main__":
    main()
