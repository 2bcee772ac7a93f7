"""What a run says about the data it learned and how far to trust its figures; identical inputs and
duplicate datasets (issue: the first hour)."""

from __future__ import annotations

from pathlib import Path

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.config import ActivationPolicy
from teachbot.training.data import starter_examples
from teachbot.training.service import DataCounts
from teachbot.transports import wording

TOPICS = {
    "The shop opens at nine.": ["when does the shop open", "what time do you open", "opening hours of the shop",
                                "is the shop open in the morning", "when can I come to the shop"],
    "Delivery takes two days.": ["how long is delivery", "when will my parcel arrive", "delivery time please",
                                 "how many days to ship", "how fast do you deliver"],
    "We accept cards and cash.": ["can I pay by card", "which payment methods do you take", "do you take cash",
                                  "how can I pay", "is paying with a credit card possible"],
}  # fmt: skip


def write_csv(path: Path, rows: dict[str, list[str]]) -> Path:
    lines = ["question,answer"] + [f'"{p}","{a}"' for a, prompts in rows.items() for p in prompts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_training_says_what_is_yours_and_what_is_built_in(app: App, tmp_path: Path) -> None:
    await app.datasets.import_file("global", write_csv(tmp_path / "shop.csv", TOPICS), author="t")
    outcome = await app.training.train("global", author="t")
    built_in = len(starter_examples())
    assert outcome.data == DataCounts(15, 3, built_in)
    text = wording.train_outcome(outcome, "!")
    assert text.startswith(f"Trained v2 on 15 of your examples (3 answers) + {built_in} built-in small talk.")
    # 15 examples: no held-out split at all, so every example is answered once by a model that never saw it
    assert outcome.report is None and outcome.crossval is not None
    assert outcome.crossval.report.examples == 15 and outcome.crossval.folds == 5
    assert "Cross-validation: each of your 15 examples answered by a model that had not learned it (5 folds)" in text
    assert "accuracy" in text and "held-out" not in text.lower()


async def test_a_handful_of_held_out_questions_is_not_reported_as_a_score(app: App, tmp_path: Path) -> None:
    rows = {f"answer {a}": [f"question about thing {a} number {v}" for v in range(8)] for a in range(6)}
    await app.datasets.import_file("global", write_csv(tmp_path / "many.csv", rows), author="t")
    outcome = await app.training.train("global", author="t")
    assert outcome.report is not None and 0 < outcome.report.examples < 30 and outcome.few_held_out
    text = wording.train_outcome(outcome, "!")
    held = outcome.report.examples
    assert f"of {held} questions right, too few to judge by (each one is {1 / held:.0%})" in text
    assert "macro-F1" not in text  # the percentage summary of a handful is left out
    assert outcome.crossval is not None and "Cross-validation: each of your 48 examples" in text


async def test_few_examples_say_they_are_too_few_to_measure(app: App, tmp_path: Path) -> None:
    small = {"The shop opens at nine.": ["when does the shop open", "what time do you open"]}
    await app.datasets.import_file("global", write_csv(tmp_path / "small.csv", small), author="t")
    outcome = await app.training.train("global", author="t")
    assert outcome.crossval is None and outcome.report is None
    assert "Too few of your examples (2) to measure accuracy" in wording.train_outcome(outcome, "!")


async def test_identical_inputs_keep_the_version_instead_of_making_a_new_one(app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "shop.csv", TOPICS)
    await app.datasets.import_file("global", path, author="t")
    first = await app.training.train("global", author="t")
    again = await app.training.train("global", author="t")
    assert again.reused and again.version.name == first.version.name == "v2" and again.version.active
    assert [v.name for v in await app.versions.in_scope("global")] == ["v1", "v2"]
    said = wording.train_outcome(again, "!")
    assert said.startswith("Nothing new to learn: v2 learned exactly this (15 of your examples")
    assert said.endswith("so no new version was made. v2 stays active.")
    runs = await app.runs.recent("global")
    assert runs[0].message.startswith("Kept v2: same data, settings and encoder")

    await app.versions.rollback("global", author="t")  # v1 answers; the same data again brings v2 back
    back = await app.training.train("global", author="t")
    assert back.reused and back.activated and app.knowledge.model_version("global") == "v2"
    assert "v2 is active again" in wording.train_outcome(back, "!")
    await app.versions.rollback("global", author="t")
    kept = await app.training.train("global", author="t", activation=ActivationPolicy.NEVER)
    assert kept.reused and not kept.activated and app.knowledge.model_version("global") == "v1"
    assert "`!models activate v2` switches to it" in wording.train_outcome(kept, "!")

    await app.versions.activate("global", "v2", author="t")
    reply = await app.chat.ask("when does the shop open", Origin("global", "c", "t"))
    target = await app.chat.find_answer("global", answer_id=reply.answer_id)
    await app.teaching.correct(Origin("global", "c", "t"), target, "At nine sharp.", trusted=True)
    changed = await app.training.train("global", author="t")  # a correction is new data: a new version
    assert not changed.reused and changed.version.name == "v3"


async def test_a_dataset_with_another_datasets_content_is_named(app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "shop.csv", TOPICS)
    first = await app.datasets.import_file("global", path, author="t")
    assert first.same_as == ()
    copy = await app.datasets.import_file("global", path, author="t", name="copy")
    assert copy.new_version and copy.same_as == ("shop",)
    line = wording.dataset_info(copy, imported=True, prefix="!")
    assert "Warning: dataset `shop` has the same examples" in line and "`!datasets delete shop`" in line
    assert "Warning" not in wording.dataset_info(copy)  # a listing does not warn
    other = write_csv(tmp_path / "other.csv", {"Yes.": ["is it open", "are you open"]})
    assert (await app.datasets.import_file("global", other, author="t", name="other")).same_as == ()
    server = await app.datasets.import_file("42", path, author="t", name="mine")
    assert set(server.same_as) == {"copy", "shop"}  # a server sees the global datasets too


async def test_cross_validation_asks_a_dataset_imported_twice_once(app: App, tmp_path: Path) -> None:
    """A copy in a fold would let the model of another fold learn the very question it is asked."""
    await app.datasets.import_file("global", write_csv(tmp_path / "shop.csv", TOPICS), author="t")
    await app.datasets.import_file("global", write_csv(tmp_path / "shop copy.csv", TOPICS), author="t")
    outcome = await app.training.train("global", author="t")
    assert outcome.crossval is not None
    assert outcome.crossval.report.examples == 15 and outcome.crossval.folds == 5
