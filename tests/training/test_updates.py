"""Updates: a run that only adds a few examples to the active version's fits once and is checked against it."""

from __future__ import annotations

from pathlib import Path

from teachbot.answering.chat import Origin
from teachbot.answering.local_model import LocalModel
from teachbot.app import App
from teachbot.config import ActivationPolicy
from teachbot.datasets.examples import Example
from teachbot.training.data import is_held_out
from teachbot.training.service import SERVED, TrainOutcome
from teachbot.training.updates import UPDATE, UPDATE_SHARE, UpdateCheck, learned_pairs, update_budget, update_size
from teachbot.transports import wording

# 20 answers × 12 questions + the 22 built-in small-talk examples: 1 % of them is 2.6 examples
ROWS = {f"answer {a}": [f"question about thing {a} number {v}" for v in range(12)] for a in range(20)}


def write_csv(path: Path, rows: dict[str, list[str]]) -> Path:
    lines = ["question,answer"] + [f'"{p}","{answer}"' for answer, prompts in rows.items() for p in prompts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def trained_on(pairs: list[tuple[str, str]], negatives: list[tuple[str, str]] = ()) -> LocalModel:  # type: ignore[assignment]
    return LocalModel.fit([p for p, _ in pairs], [a for _, a in pairs], negatives=negatives)


def examples(pairs: list[tuple[str, str]]) -> list[Example]:
    return [Example(p, a) for p, a in pairs]


PAIRS = [(f"question {n} about {topic}", topic) for topic in ("cats", "dogs", "birds") for n in range(4)]


def sized(model: LocalModel, given: list[Example], negatives: list[tuple[str, str]]) -> tuple[int, int] | None:
    """(examples added, examples the model learned), or None when the run would not be an update."""
    learned = learned_pairs(model)
    added = update_size(model, learned, given, negatives)
    return None if added is None else (added, sum(learned.values()))


def test_update_size_counts_what_was_added_and_refuses_other_changes() -> None:
    model = trained_on(PAIRS)
    assert sized(model, examples(PAIRS), []) == (0, len(PAIRS))
    more = [*PAIRS, ("what do parrots eat", "birds"), ("what do parrots eat", "birds")]
    assert sized(model, examples(more), []) == (2, len(PAIRS))  # a copy is one more example too
    assert sized(model, examples(PAIRS[1:]), []) is None  # an example it learned is gone
    changed = [(PAIRS[0][0], "dogs"), *PAIRS[1:]]
    assert sized(model, examples(changed), []) is None  # an answer changed: one gone, one added
    assert sized(model, examples(PAIRS), [("question 0 about cats", "dogs")]) is None  # refusals changed


def test_refused_examples_are_left_out_as_the_model_leaves_them_out() -> None:
    refusal = [("Question 0 about CATS", "cats")]
    model = trained_on(PAIRS, refusal)
    assert sized(model, examples(PAIRS), refusal) == (0, len(PAIRS) - 1)


def test_update_budget_adds_up_since_the_last_gate_and_needs_a_large_enough_model() -> None:
    assert update_budget({}, learned=10_000, added=10) == 10
    assert update_budget({}, learned=10_000, added=int(10_000 * UPDATE_SHARE) + 1) is None
    assert update_budget({}, learned=1_000, added=1) is None  # a small model fits quickly: a full run
    assert update_budget({}, learned=1_000, added=1, smallest=100) == 1
    after_one = {UPDATE: UpdateCheck("v2", 60, 60, 10, 9, 9, "v2", 0.9).to_json()}
    assert update_budget(after_one, learned=10_000, added=40) == 100
    assert update_budget(after_one, learned=10_000, added=41) is None
    assert UpdateCheck.from_json({"base": "v2"}) is None and UpdateCheck.from_json("junk") is None


def not_held_out(template: str, count: int) -> list[str]:
    return [p for p in (template.format(n) for n in range(1000)) if not is_held_out(p, 0.1)][:count]


async def train_if_not_worse(app: App) -> tuple[TrainOutcome, list[str]]:
    """A run that activates its version only if it is not worse; its outcome and the stages it went through."""
    stages: list[str] = []
    outcome = await app.training.train(
        "global",
        author="t",
        activation=ActivationPolicy.IF_NOT_WORSE,
        progress=lambda stage, _done: stages.append(stage),
    )
    return outcome, stages


async def test_a_few_new_examples_are_fitted_once_and_checked_against_the_active_version(
    app: App, tmp_path: Path
) -> None:
    assert app.trainer is not None
    app.trainer.update_from = 200  # the default waits for a model of 5,000 examples
    await app.datasets.import_file("global", write_csv(tmp_path / "faq.csv", ROWS), author="t")
    first = await app.training.train("global", author="t")
    assert first.update is None and first.report is not None  # nothing to update: a full run

    new = not_held_out("where can I find thing number {}", 3)
    await app.datasets.import_file("global", write_csv(tmp_path / "one.csv", {"answer 7": new[:2]}), author="t")
    second, stages = await train_if_not_worse(app)
    check = second.update
    assert check is not None and check.base == first.version.name and check.added == 2
    assert not any(s.startswith("training on") for s in stages)  # no gate model was fitted
    assert not any(s.startswith("asking") for s in stages)  # the active version's answers were recorded
    assert "learning 2 new examples beside 262" in stages  # the active version, extended
    held = await app.testing.holdout_examples("global")
    assert check.questions == len(held) and check.right >= check.base_right
    assert check.gate_version == first.version.name and check.gate_accuracy == first.report.accuracy
    assert second.activated and app.knowledge.model_version("global") == second.version.name
    answer = await app.chat.ask(new[0], Origin("global", "c", "u"))
    assert answer.answer.text == "answer 7"
    [row] = [v for v in await app.versions.in_scope("global") if v.name == second.version.name]
    assert row.metrics["accuracy"] == first.report.accuracy  # the last gate's figure, carried
    assert UpdateCheck.from_json(row.metrics[UPDATE]) == check
    text = wording.train_outcome(second, "!")
    assert f"2 new examples since {first.version.name}" in text
    assert f"{second.version.name} answers {check.right} right" in text and "is now active" in text
    assert "Too few" not in text
    listed = wording.version_info(row)
    assert f"holdout accuracy {first.report.accuracy:.1%} ({first.version.name}'s, +2 examples since)" in listed

    # one more would make 3 since the last gate, over 1 % of 262: a full run measures again
    await app.datasets.import_file("global", write_csv(tmp_path / "two.csv", {"answer 7": new[2:]}), author="t")
    third = await app.training.train("global", author="t")
    assert third.update is None and third.report is not None
    assert third.report.previous is not None and third.report.previous["model_version"] == second.version.name


async def test_an_update_that_breaks_answers_is_not_activated(app: App, tmp_path: Path) -> None:
    assert app.trainer is not None
    app.trainer.update_from = 200
    # 60 answers × 12 questions + 22: 1 % of them is 7.4 examples
    rows = {f"answer {a}": [f"question about thing {a} number {v}" for v in range(12)] for a in range(60)}
    await app.datasets.import_file("global", write_csv(tmp_path / "faq.csv", rows), author="t")
    first = await app.training.train("global", author="t")
    # a version made before its own held-out answers were recorded is asked them
    metrics = dict(first.version.metrics)
    assert metrics.pop(SERVED)["right"]
    await app.versions.store_metrics(first.version.name, metrics)
    held = await app.testing.holdout_examples("global")
    victim = next(e for e in held if e.answer == "answer 3")
    # the same held-out question, taught 7 times with another answer: the active version answered it right
    wrong = {"answer 5": [victim.prompt] * 7}
    await app.datasets.import_file("global", write_csv(tmp_path / "bad.csv", wrong), author="t")
    outcome, stages = await train_if_not_worse(app)
    assert f"asking {first.version.name} {len(held)} held-out questions" in stages
    assert outcome.update is not None and outcome.update.right < outcome.update.base_right
    assert not outcome.activated and app.knowledge.model_version("global") == first.version.name
    assert f"Kept {first.version.name} active" in wording.train_outcome(outcome, "!")


def test_what_members_taught_weighs_more_than_imported_examples() -> None:
    from teachbot.datasets.service import TrainingSet
    from teachbot.training.data import TAUGHT_WEIGHT, split_training_set

    imported = [Example(f"imported question {n}", "a") for n in range(30)]
    taught = Example("a taught question", "b")
    training = TrainingSet([*imported, taught], [*range(30), 99], [], [True] * 30 + [False])
    split = split_training_set(training, [Example("hi", "Hello!")], 0.1)
    weights = dict(zip([e.prompt for e in split.train], split.train_weights, strict=True))
    assert weights["a taught question"] == TAUGHT_WEIGHT > 1.0
    assert weights["hi"] == 1.0 and all(weights[e.prompt] == 1.0 for e in split.train if e in imported)
    assert split.held and split.weights() == [*split.train_weights, *[1.0] * len(split.held)]
