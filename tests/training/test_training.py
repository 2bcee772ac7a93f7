"""Training runs and versions through the services, on small generated datasets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.config import ActivationPolicy
from teachbot.datasets.examples import Example
from teachbot.errors import DataFormatError, UserError
from teachbot.training.data import starter_examples
from teachbot.training.runs import RunCancelled

TOPICS = {
    "The shop opens at nine.": [
        "when does the shop open",
        "what time do you open",
        "opening hours of the shop",
        "is the shop open in the morning",
        "when can I come to the shop",
    ],
    "Delivery takes two days.": [
        "how long is delivery",
        "when will my parcel arrive",
        "delivery time please",
        "how many days to ship",
        "how fast do you deliver",
    ],
    "We accept cards and cash.": [
        "can I pay by card",
        "which payment methods do you take",
        "do you take cash",
        "how can I pay",
        "is paying with a credit card possible",
    ],
}


def write_csv(path: Path, rows: dict[str, list[str]]) -> Path:
    lines = ["question,answer"]
    for answer, prompts in rows.items():
        lines += [f'"{p}","{answer}"' for p in prompts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def ask(app: App, text: str, scope: str = "global") -> str:
    return (await app.chat.ask(text, Origin(scope, "c", "u"))).answer.text


async def test_starter_version_exists_and_knows_about_itself(app: App) -> None:
    versions = await app.versions.in_scope("global")
    assert [v.name for v in versions] == ["v1"] and versions[0].active
    assert "teachbot" in (await ask(app, "who are you?")).lower()
    assert len(starter_examples()) >= 10


async def test_train_on_a_file_answers_its_questions(app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "shop.csv", TOPICS)
    info = await app.datasets.import_file("global", path, author="t")
    assert info.rows == 15 and info.name == "shop"
    outcome = await app.training.train("global", author="t")
    assert outcome.activated and outcome.version.name == "v2"
    assert await ask(app, "what time does the shop open") == "The shop opens at nine."
    assert await ask(app, "how long does delivery take") == "Delivery takes two days."


async def test_same_content_makes_no_new_dataset_version(app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "shop.csv", TOPICS)
    first = await app.datasets.import_file("global", path, author="t")
    again = await app.datasets.import_file("global", path, author="t")
    assert (first.version, again.version, again.new_version) == (1, 1, False)


async def test_malformed_file_imports_nothing(app: App, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "answer": "b"}\n{"prompt": "c", "answer": \n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2"):
        await app.datasets.import_file("global", path, author="t")
    assert await app.datasets.list_datasets("global") == []


async def test_activate_and_rollback_switch_answers(app: App, tmp_path: Path) -> None:
    await app.datasets.import_file("global", write_csv(tmp_path / "shop.csv", TOPICS), author="t")
    await app.training.train("global", author="t")
    assert await ask(app, "how can I pay") == "We accept cards and cash."
    await app.versions.rollback("global", author="t")
    assert await ask(app, "how can I pay") != "We accept cards and cash."
    await app.versions.activate("global", "v2", author="t")
    assert await ask(app, "how can I pay") == "We accept cards and cash."


async def test_server_trains_its_own_version_without_changing_others(app: App, tmp_path: Path) -> None:
    await app.datasets.import_file("42", write_csv(tmp_path / "shop.csv", TOPICS), author="t")
    outcome = await app.training.train("42", author="t")
    assert outcome.version.name == "42-v1"
    assert await ask(app, "how can I pay", "42") == "We accept cards and cash."
    assert await ask(app, "how can I pay", "43") != "We accept cards and cash."
    assert await ask(app, "who are you", "42") == await ask(app, "who are you", "global")


async def test_never_policy_keeps_the_active_version(app: App, tmp_path: Path) -> None:
    await app.datasets.import_file("global", write_csv(tmp_path / "shop.csv", TOPICS), author="t")
    outcome = await app.training.train("global", author="t", activation=ActivationPolicy.NEVER)
    assert not outcome.activated
    assert app.knowledge.model_version("global") == "v1"


async def test_test_report_scores_the_active_model(app: App, tmp_path: Path) -> None:
    await app.datasets.import_file("global", write_csv(tmp_path / "shop.csv", TOPICS), author="t")
    await app.training.train("global", author="t")
    from teachbot.datasets.examples import Example

    report = await app.testing.test(
        "global", [Example("when do you open the shop", "The shop opens at nine."), Example("zzzz qqqq", "Unknown.")]
    )
    assert report.examples == 2
    assert report.accuracy == pytest.approx(0.5)
    assert report.fallback_rate == pytest.approx(0.5)
    assert report.previous is not None and report.previous["model_version"] == "v1"


async def test_selected_negative_dataset_stops_answers(app: App, tmp_path: Path) -> None:
    await app.datasets.import_file("global", write_csv(tmp_path / "shop.csv", TOPICS), author="t")
    await app.training.train("global", author="t")
    assert await ask(app, "how can I pay") == "We accept cards and cash."
    bad = {"We accept cards and cash.": ["how can I pay", "which payment methods do you take"]}
    await app.datasets.import_file("global", write_csv(tmp_path / "never.csv", bad), author="t")
    await app.datasets.select("global", "never", "negative")
    await app.training.train("global", author="t", activation=ActivationPolicy.ALWAYS)
    assert await ask(app, "how can I pay") != "We accept cards and cash."


@pytest.mark.slow
async def test_chat_keeps_answering_while_a_run_trains(app: App, tmp_path: Path) -> None:
    import asyncio
    import time

    rows = {f"answer number {a}": [f"topic {a} variant {v} words w{a * 7 + v}" for v in range(20)] for a in range(120)}
    await app.datasets.import_file("global", write_csv(tmp_path / "big.csv", rows), author="t")
    run = asyncio.create_task(app.training.train("global", author="t"))
    answered = 0
    latencies = []
    while not run.done():
        started = time.perf_counter()
        assert "teachbot" in (await ask(app, "who are you?")).lower()
        latencies.append(time.perf_counter() - started)
        answered += 1
        await asyncio.sleep(0.01)
    outcome = await run
    assert outcome.activated
    assert answered >= 5, "chat was blocked while the run trained"
    assert max(latencies) < 2.0
    jobs = await app.runs.recent("global")
    assert jobs[0].state == "succeeded" and jobs[0].version == outcome.version.name


async def test_test_without_a_file_scores_the_held_out_split_and_versions(app: App, tmp_path: Path) -> None:
    from teachbot.transports.catalogue import Door
    from teachbot.transports.handlers import Call, CommandHandlers

    handlers = CommandHandlers(app)
    call = Call(Origin("global", "c", "trainer"), Door.CONSOLE)
    with pytest.raises(UserError, match="held-out"):
        await handlers.test(call)
    rows = {f"answer {a}": [f"question about thing {a} number {v}" for v in range(12)] for a in range(6)}
    await app.datasets.import_file("global", write_csv(tmp_path / "many.csv", rows), author="t")
    outcome = await app.training.train("global", author="t")
    held = await app.testing.holdout_examples("global")
    assert held and outcome.report is not None and outcome.report.examples == len(held)
    report = (await handlers.test(call)).report
    assert report is not None and report.examples == len(held)
    old = (await handlers.test(call, version="v1")).report
    assert old is not None and old.model_version == "v1" and old.accuracy < report.accuracy


async def test_a_cancelled_run_stops_and_changes_nothing(app: App, tmp_path: Path) -> None:
    rows = {f"answer {a}": [f"question about thing {a} number {v}" for v in range(10)] for a in range(40)}
    await app.datasets.import_file("global", write_csv(tmp_path / "many.csv", rows), author="t")
    training = asyncio.Event()

    def progress(stage: str, _done: float) -> None:
        if stage.startswith("training on"):
            training.set()

    run = asyncio.create_task(app.training.train("global", author="t", progress=progress))
    await training.wait()  # the model is being fitted in a thread: the next step checks for a cancel
    [newest, *_] = await app.runs.recent("global")
    assert newest.state == "running" and newest.kind == "local"
    await app.training.cancel("global", newest.run_id)
    with pytest.raises(RunCancelled):
        await run
    [cancelled, *_] = await app.runs.recent("global")
    assert (cancelled.run_id, cancelled.state, cancelled.version) == (newest.run_id, "cancelled", None)
    assert app.knowledge.model_version("global") == "v1"
    assert [v.name for v in await app.versions.in_scope("global")] == ["v1"]
    with pytest.raises(UserError, match="is cancelled; only a running run can be cancelled"):
        await app.training.cancel("global", newest.run_id)
    with pytest.raises(UserError, match="There is no run #999 here"):
        await app.training.cancel("global", 999)
    assert await app.runs.kind("global", newest.run_id) == "local"
    assert await app.runs.kind("42", newest.run_id) is None  # another scope's run


async def test_a_server_sees_its_own_and_global_versions_only(app: App, tmp_path: Path) -> None:
    await app.datasets.import_file("42", write_csv(tmp_path / "shop.csv", TOPICS), author="t")
    await app.training.train("42", author="t")
    question = [Example("how can I pay", "We accept cards and cash.")]
    with pytest.raises(UserError, match="There is no model version `42-v1` here"):
        await app.versions.activate("43", "42-v1", author="t")
    with pytest.raises(UserError, match="There is no model version `42-v1` here"):
        await app.testing.test("43", question, version="42-v1")
    with pytest.raises(UserError, match="There is no model version `42-v1` here"):
        await app.versions.load("43", "42-v1")
    with pytest.raises(UserError, match="belongs to the global scope"):
        await app.versions.activate("42", "v1", author="t")
    assert (await app.testing.test("42", question, version="v1")).model_version == "v1"
    assert (await app.testing.test("42", question, version="42-v1")).accuracy == 1.0
    assert (await app.versions.load("42", "v1")).version == "v1"
    with pytest.raises(UserError, match="no earlier version"):
        await app.versions.rollback("42", author="t")


def held_out_prompts(count: int, template: str) -> list[str]:
    """Prompts the hash split holds out (``holdout_fraction`` 0.1), found by trying numbers in ``template``."""
    from teachbot.training.data import is_held_out

    found = [template.format(n) for n in range(10_000) if is_held_out(template.format(n), 0.1)]
    return found[:count]


async def test_the_version_that_serves_learned_the_held_out_questions(app: App, tmp_path: Path) -> None:
    rows = {f"answer {a}": [f"question about thing {a} number {v}" for v in range(12)] for a in range(6)}
    hidden = held_out_prompts(3, "what is the secret word {}")
    rows["The secret word is plover."] = hidden  # an answer only the held-out split teaches
    await app.datasets.import_file("global", write_csv(tmp_path / "many.csv", rows), author="t")
    stages: list[str] = []
    outcome = await app.training.train("global", author="t", progress=lambda stage, _done: stages.append(stage))
    held = await app.testing.holdout_examples("global")
    assert {e.prompt for e in held} >= set(hidden)
    assert outcome.report is not None and outcome.report.examples == len(held)
    # the gate model, scored on the held-out split, never saw the secret word: it got those wrong
    assert [o for o in outcome.report.outcomes if o.prompt in hidden and o.correct] == []
    assert "then learned from all" in outcome.report.summary()
    assert any(s.startswith("training the final version on all") for s in stages)
    # the version that serves learned every selected example, the held-out ones too
    assert outcome.version.examples == len(starter_examples()) + sum(len(p) for p in rows.values())
    assert await ask(app, hidden[0]) == "The secret word is plover."
    answer = app.knowledge.answer(hidden[1])
    assert answer.matched_example_id is not None, "held-out examples keep their ids in the version"
    [row] = [v for v in await app.versions.in_scope("global") if v.name == outcome.version.name]
    assert row.metrics["accuracy"] == outcome.report.to_json()["accuracy"]
    # loaded from disk the same
    loaded = await app.versions.load("global", outcome.version.name)
    assert set(hidden) <= set(loaded.model.prompts)


@pytest.mark.parametrize("one_shot", [False, True])
async def test_retraining_on_the_same_data_compares_fairly_and_activates(
    app: App, tmp_path: Path, one_shot: bool
) -> None:
    """Also as the train command runs (``one_shot``: the active version leaves memory once scored)."""
    assert app.trainer is not None
    app.trainer.one_shot = one_shot
    rows = {f"answer {a}": [f"question about thing {a} number {v}" for v in range(12)] for a in range(6)}
    rows["The secret word is plover."] = held_out_prompts(3, "what is the secret word {}")
    await app.datasets.import_file("global", write_csv(tmp_path / "many.csv", rows), author="t")
    first = await app.training.train("global", author="t")
    assert first.activated and first.report is not None and first.report.accuracy < 1.0
    # the active version learned the held-out questions; compared on them it would look perfect and
    # block every new version. It is compared by what its gate model scored before learning them.
    from teachbot.training.data import is_held_out

    extra = next(f"one more question {n}" for n in range(100) if not is_held_out(f"one more question {n}", 0.1))
    await app.datasets.import_file("global", write_csv(tmp_path / "more.csv", {"answer 0": [extra]}), author="t")
    again = await app.training.train("global", author="t", activation=ActivationPolicy.IF_NOT_WORSE)  # new data
    assert again.report is not None and again.report.previous is not None
    assert again.report.previous["model_version"] == first.version.name
    assert again.report.previous["accuracy"] == pytest.approx(first.report.accuracy)
    assert again.report.previous["questions"] == again.report.examples
    assert again.activated and app.knowledge.model_version("global") == again.version.name


async def test_test_on_learned_questions_says_so(app: App, tmp_path: Path) -> None:
    from teachbot.transports.catalogue import Door
    from teachbot.transports.handlers import Call, CommandHandlers

    rows = {f"answer {a}": [f"question about thing {a} number {v}" for v in range(12)] for a in range(6)}
    await app.datasets.import_file("global", write_csv(tmp_path / "many.csv", rows), author="t")
    outcome = await app.training.train("global", author="t")
    assert outcome.report is not None
    call = Call(Origin("global", "c", "trainer"), Door.CONSOLE)
    reply = await CommandHandlers(app).test(call)
    held = await app.testing.holdout_examples("global")
    assert f"{outcome.version.name} learned {len(held)} of these {len(held)} questions in training" in reply.text
    assert f"before learning it: accuracy {outcome.report.accuracy:.1%}" in reply.text
    assert reply.report is not None and reply.report.to_json()["note"] == reply.report.note
    fresh = await app.testing.test("global", [Example("when is thing 3 discussed", "answer 3")])
    assert fresh.note == "", "a test set of new questions needs no note"


async def test_a_version_of_another_encoder_is_trained_again_not_used(
    app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Versions remember their sentence encoder: with another one they are never used; at start the bot
    trains the same data again for that scope and says why, and activating the old version is refused."""
    from teachbot.config import load_settings

    assert app.encoder is not None and app.knowledge.has_model("global")
    await app.datasets.import_file("global", write_csv(tmp_path / "faq.csv", TOPICS), author="t")
    trained = (await app.training.train("global", author="t")).version.name
    assert await ask(app, "At what hour does the shop open?") == "The shop opens at nine."  # by meaning
    await app.close()  # the only process on this database: the next one may train again
    plain = await App.start(load_settings(data_dir=app.settings.data_dir, encoder="none"))
    try:
        assert plain.encoder is None
        assert "trained with the sentence encoder all-MiniLM-L6-v2" in caplog.text
        assert "the sentence encoder changed since scope global was trained" in caplog.text
        active = plain.knowledge.active("global")
        assert active is not None and active.version != trained
        assert await ask(plain, "when does the shop open") == "The shop opens at nine."  # the same data
        with pytest.raises(UserError, match="encoder=none"):
            await plain.versions.activate("global", trained, author="t")
    finally:
        await plain.close()


async def test_back_to_the_encoder_after_a_run_without_it_answers_by_meaning_again(
    app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One start with encoder=none trains a wording-only version and activates it; that version answers under
    any encoder, so without a check the bot stayed on wording after the setting went back. At start it is
    recognised and its data trained again, which finds the version trained with meaning and activates it."""
    from teachbot.config import load_settings

    await app.datasets.import_file("global", write_csv(tmp_path / "faq.csv", TOPICS), author="t")
    trained = (await app.training.train("global", author="t")).version.name
    await app.close()
    plain = await App.start(load_settings(data_dir=app.settings.data_dir, encoder="none"))
    wording = plain.knowledge.model_version("global")
    await plain.close()
    assert wording not in (None, trained)

    again = await App.start(load_settings(data_dir=app.settings.data_dir))
    try:
        assert f"model {wording} of scope global was trained without a sentence encoder" in caplog.text
        assert again.knowledge.model_version("global") == trained, "the version trained with meaning is back"
        assert await ask(again, "At what hour does the shop open?") == "The shop opens at nine."  # by meaning
        names = [row.name for row in await again.versions.in_scope("global")]
        assert names[-1] == wording, "nothing was trained again: the stored version with the same inputs served"
        with pytest.raises(UserError, match="trained without a sentence encoder"):
            await again.versions.activate("global", wording, author="t")
    finally:
        await again.close()


async def test_another_encoder_beside_a_running_process_trains_nothing(
    app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes on one database with different encoders must not retrain each other's versions in
    turn: the newcomer says what is wrong and leaves the active version alone."""
    from teachbot.config import load_settings

    await app.datasets.import_file("global", write_csv(tmp_path / "faq.csv", TOPICS), author="t")
    trained = (await app.training.train("global", author="t")).version.name
    shared = app.settings.effective_database_url
    plain = await App.start(load_settings(data_dir=tmp_path / "other", database_url=shared, encoder="none"))
    try:
        assert "give every process the same `encoder` setting" in caplog.text
        assert not plain.knowledge.has_model("global")
        assert (await plain.versions.active_rows())[0].name == trained
        assert await ask(app, "At what hour does the shop open?") == "The shop opens at nine."  # still served
    finally:
        await plain.close()


async def test_retraining_encodes_only_new_examples(app: App, tmp_path: Path) -> None:
    await app.datasets.import_file("global", write_csv(tmp_path / "faq.csv", TOPICS), author="t")
    await app.training.train("global", author="t")
    assert app.encoder is not None
    inner = app.encoder.inner
    calls: list[int] = []
    original = inner.encode

    def counting(texts: list[str]) -> object:
        calls.append(len(texts))
        return original(texts)

    inner.encode = counting  # type: ignore[method-assign]
    more = {"Returns are free for 30 days.": ["can I return an item", "what is your return policy"]}
    await app.datasets.import_file("global", write_csv(tmp_path / "more.csv", more), author="t")
    await app.training.train("global", author="t")
    assert sum(calls) == 2  # the two new prompts, once: the gate's fit and the final one share the cache
    assert await ask(app, "is it possible to send a product back?") == "Returns are free for 30 days."
