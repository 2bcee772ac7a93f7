"""CLINC150 intent benchmark of the local model (and ChatterBot when installed), as tables.

Modes (several may be given; the default is ``--model``):
- ``--model``: ``LocalModel.fit`` on ``train`` with ``oos_train`` as out-of-scope examples, scored on
  ``test`` / ``oos_test``; training time from scratch (vectors encoded into an empty cache) and again with
  the cache warm plus 10 new examples; answer latency through ``Knowledge.answer`` (question encoding
  included) with the 15,000 examples; peak memory.
- ``--pipeline``: what a user runs, as processes: ``teachbot train train.jsonl`` on a fresh data folder,
  ``teachbot test test.jsonl --json`` (in-scope accuracy) and ``teachbot test oos.jsonl --json`` (its fallback
  rate is the out-of-scope recall: no out-of-scope examples are given here, the background stands in), then
  10 corrections through ``teachbot chat`` and ``teachbot train`` again (cached vectors); then the time from
  starting ``teachbot chat`` on that folder to its first answer. Each process's own peak memory is reported.
- ``--tune``: the calibration choices on ``val`` / ``oos_val`` only (never on test): threshold sweep.
- ``--starter``: the starter set (what a new user meets) on CLINC150: the share of greeting / goodbye /
  thank_you / are_you_a_bot / what_is_your_name / what_can_i_ask_you questions it answers right, and the
  share of all other questions (in scope or not) it wrongly answers.
``--encoder SETTING`` (default ``minilm``; ``none`` is the model without meaning, as before it existed).
Run: ``.venv/bin/python bench/intents.py [--model] [--pipeline] [--tune] [--starter] [--encoder none]``.
"""

from __future__ import annotations

import compileall
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import latencies_ms, load_clinc, peak_memory_mb, percentile, table

import teachbot
from teachbot.answering.encoding import CachedEncoder, Encoder, lazy_encoder, load_encoder
from teachbot.answering.knowledge import Knowledge, LoadedVersion
from teachbot.answering.local_model import LocalModel
from teachbot.answering.nearest import TAUGHT_THRESHOLD
from teachbot.memory import map_large_blocks

Rows = list[tuple[str, str]]


def option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def score(model: LocalModel, inscope: Rows, oos: Rows) -> tuple[float, float]:
    right = sum(p.answer == i for p, (_, i) in zip(model.predict_many([t for t, _ in inscope]), inscope, strict=True))
    rejected = sum(p.answer is None for p in model.predict_many([t for t, _ in oos]))
    return right / len(inscope), rejected / len(oos)


def chatterbot_row(data: dict[str, Rows], sample: int = 300) -> list[object] | None:
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
    return ["ChatterBot", f"{acc:.1%} (n={sample})", "-", f"{train_s:.1f}", "-", f"{p50:.1f}", f"{p95:.1f}"]


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


def starter_rows(data: dict[str, Rows], encoder: Encoder | None) -> None:
    from teachbot.training.data import starter_examples

    examples = starter_examples()
    model = LocalModel.fit([e.prompt for e in examples], [e.answer for e in examples], encoder=encoder)
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


def tune(data: dict[str, Rows], encoder: Encoder | None) -> None:
    """The threshold sweep on val / oos_val (what DEFAULT_THRESHOLD and the calibration were chosen on)."""
    prompts, intents = [t for t, _ in data["train"]], [i for _, i in data["train"]]
    for given in (True, False):
        oos = [t for t, _ in data["oos_train"]] if given else []
        model = LocalModel.fit(prompts, intents, out_of_scope=oos, encoder=encoder)
        rows = []
        for threshold in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
            model.threshold = threshold
            acc, rec = score(model, data["val"], data["oos_val"])
            rows.append([threshold, f"{acc:.1%}", f"{rec:.1%}"])
        how = "with oos_train" if given else "without out-of-scope examples"
        table(f"threshold sweep on val / oos_val, {how}", ["threshold", "in-scope acc", "oos recall"], rows)


def model_rows(data: dict[str, Rows], setting: str) -> None:
    prompts, intents = [t for t, _ in data["train"]], [i for _, i in data["train"]]
    oos_train = [t for t, _ in data["oos_train"]]
    with tempfile.TemporaryDirectory() as cache_dir:
        gc.collect()
        start = time.perf_counter()
        cpu = time.process_time()
        # as the bot does: loaded when first needed (the time counts: a first training run pays it), with the
        # prepared copy kept beside the cache, and released while a large fit's SVM runs
        raw = lazy_encoder(setting, cache_dir=Path(cache_dir))
        encoder = CachedEncoder(raw, Path(cache_dir)) if raw is not None else None
        model = LocalModel.fit(prompts, intents, out_of_scope=oos_train, encoder=encoder)
        train_s, train_cpu = time.perf_counter() - start, time.process_time() - cpu
        extra = [f"a brand new question number {n} about my account" for n in range(10)]
        start = time.perf_counter()
        model.extended(extra, ["balance"] * 10, [2.0] * 10)  # what an update does (training/updates.py)
        extended_s = time.perf_counter() - start
        start = time.perf_counter()
        LocalModel.fit(prompts + extra, intents + ["balance"] * 10, out_of_scope=oos_train, encoder=encoder)
        again_s = time.perf_counter() - start
        acc, rec = score(model, data["test"], data["oos_test"])
        knowledge = Knowledge(
            threshold=model.threshold, taught_threshold=TAUGHT_THRESHOLD, fallback="?", encoder=encoder
        )
        knowledge.set_model("global", LoadedVersion("bench", model, ()))
        texts = [t for t, _ in data["test"]]
        latencies_ms(knowledge.answer, texts[:200])  # warm up
        lat = latencies_ms(knowledge.answer, texts[:2000])
        peak = peak_memory_mb()  # before ChatterBot loads into the same process
        if encoder is not None:
            encoder.close()
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    rows: list[list[object]] = [
        [
            f"teachbot local ({setting})",
            f"{acc:.1%}",
            f"{rec:.1%}",
            f"{train_s:.1f} ({train_cpu:.0f} cpu)",
            f"{again_s:.1f} / {extended_s:.1f}",
            f"{p50:.2f}",
            f"{p95:.2f}",
        ]
    ]
    cb = chatterbot_row(data, int(option("--chatterbot-sample", "300")))
    if cb is not None:
        rows.append(cb)
    else:
        print("(chatterbot not installed: its row is skipped)")
    table(
        f"CLINC150 full, model trained on train + oos_train (threshold {model.threshold}; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end)",
        [
            "system",
            "in-scope acc",
            "oos recall",
            "train s (scratch)",
            "+10 s: from scratch (cached) / extended",
            "answer p50 ms",
            "p95 ms",
        ],
        rows,
    )
    print(f"peak memory of the process (teachbot alone): {peak:.0f} MB")


def run_teachbot(data_dir: Path, setting: str, *args: str, stdin: str = "") -> tuple[float, str, float]:
    """Run ``teachbot ARGS`` on a data folder as a user would; its wall time, standard output and peak memory (MB)."""
    source = str(Path(teachbot_source()).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEACHBOT_")}
    env |= {"TEACHBOT_DATA_DIR": str(data_dir), "TEACHBOT_ENCODER": setting, "TEACHBOT_LOG_LEVEL": "WARNING"}
    env["PYTHONPATH"] = os.pathsep.join([source, env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    command = [sys.executable, "-m", "teachbot", *args]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env, text=True)
        assert child.stdin is not None
        child.stdin.write(stdin)
        child.stdin.close()
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest of all children
        child.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        out.seek(0), err.seek(0)
        if child.returncode:
            sys.exit(f"teachbot {' '.join(args)} failed ({child.returncode}):\n{err.read()[-2000:]}")
        return elapsed, out.read(), usage.ru_maxrss / 1024


def first_answer_s(data_dir: Path, setting: str, runs: int = 5) -> tuple[float, float]:
    """Median and best time from starting ``teachbot chat`` to the first line of its answer to a piped question.

    teachbot's modules are compiled first, as a second start finds them (this bench may run with
    PYTHONDONTWRITEBYTECODE set, which would make every start compile them again)."""
    compileall.compile_dir(teachbot_source(), quiet=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEACHBOT_")}
    env |= {"TEACHBOT_DATA_DIR": str(data_dir), "TEACHBOT_ENCODER": setting, "TEACHBOT_LOG_LEVEL": "WARNING"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(teachbot_source()).parent), env.get("PYTHONPATH", "")])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        command = [sys.executable, "-m", "teachbot", "chat"]
        with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True) as chat:
            assert chat.stdin is not None and chat.stdout is not None
            chat.stdin.write("how much money is in my bank account\n")
            chat.stdin.close()
            if not chat.stdout.readline().strip():
                sys.exit("teachbot chat gave no answer")
            times.append(time.perf_counter() - start)
            chat.stdout.read()
    return statistics.median(times), min(times)


def teachbot_source() -> str:
    return str(Path(teachbot.__file__).resolve().parent)


def write_jsonl(path: Path, rows: Rows) -> Path:
    path.write_text("".join(json.dumps({"prompt": t, "answer": a}) + "\n" for t, a in rows), encoding="utf-8")
    return path


def pipeline_rows(data: dict[str, Rows], setting: str) -> None:
    """``teachbot train`` + ``teachbot test --json`` on CLINC150, then 10 corrections and a retrain."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, data_dir = Path(tmp), Path(tmp) / "data"
        train = write_jsonl(folder / "train.jsonl", data["train"])
        test = write_jsonl(folder / "test.jsonl", data["test"])
        oos = write_jsonl(folder / "oos.jsonl", [(t, "(out of scope)") for t, _ in data["oos_test"]])
        first_s, _, first_mb = run_teachbot(data_dir, setting, "chat")  # the first start trains the starter version
        train_s, _, train_mb = run_teachbot(data_dir, setting, "train", str(train))
        test_s, out, test_mb = run_teachbot(data_dir, setting, "test", str(test), "--json")
        accuracy = json.loads(out.splitlines()[0])["accuracy"]
        _, out, _ = run_teachbot(data_dir, setting, "test", str(oos), "--json")
        recall = json.loads(out.splitlines()[0])["fallback_rate"]
        picked = random.Random(1).sample(data["val"], 10)
        lines = "".join(f"{text}\n!correct {intent}\n" for text, intent in picked)
        _, _, chat_mb = run_teachbot(data_dir, setting, "chat", stdin=lines)
        retrain_s, _, retrain_mb = run_teachbot(data_dir, setting, "train")
        answer_s, best_answer_s = first_answer_s(data_dir, setting)
    table(
        f"CLINC150 through `teachbot train` / `teachbot test --json`, encoder {setting} (processes, wall time; "
        f"load average {os.getloadavg()[0]:.1f} at the end)",
        [
            "in-scope acc",
            "oos recall",
            "first start s",
            "train s",
            "test s",
            "retrain after 10 corrections s",
            "peak MB: first start / train / test / chat / retrain",
            "chat: first answer s (median, best of 5)",
        ],
        [
            [
                f"{accuracy:.1%}",
                f"{recall:.1%}",
                f"{first_s:.1f}",
                f"{train_s:.1f}",
                f"{test_s:.1f}",
                f"{retrain_s:.1f}",
                f"{first_mb:.0f} / {train_mb:.0f} / {test_mb:.0f} / {chat_mb:.0f} / {retrain_mb:.0f}",
                f"{answer_s:.2f} ({best_answer_s:.2f})",
            ]
        ],
    )


def main() -> None:
    map_large_blocks()  # as every teachbot process does when it starts
    data = load_clinc()
    setting = option("--encoder", "minilm")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start; encoder {setting}")
    modes = {m for m in ("--model", "--pipeline", "--tune", "--starter") if m in sys.argv} or {"--model"}
    if "--starter" in modes or "--tune" in modes:
        raw = load_encoder(setting)
        if "--starter" in modes:
            starter_rows(data, raw)
        if "--tune" in modes:
            tune(data, raw)
    if "--model" in modes:
        model_rows(data, setting)
    if "--pipeline" in modes:
        pipeline_rows(data, setting)


if __name__ == "__main__":
    main()
