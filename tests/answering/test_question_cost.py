"""What one question costs: a question asked again, or a taught or training prompt asked word for word, is
answered without running the model, with the same answer as when it was encoded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from encoders import CountingEncoder

from teachbot.answering.batching import AnswerQueue
from teachbot.answering.encoding import CachedEncoder, OnnxEncoder, lazy_encoder
from teachbot.answering.encoding.recent import RecentVectors
from teachbot.answering.knowledge import Knowledge, LoadedVersion
from teachbot.answering.local_model import LocalModel, Prediction
from teachbot.answering.nearest import TAUGHT_THRESHOLD
from teachbot.answering.protocols import Answer

PROMPTS = ["what is the weather like", "will it rain today", "what is your name", "who are you"]
ANSWERS = ["Sunny.", "Sunny.", "Teachbot.", "Teachbot."]
QUESTIONS = ["is it going to rain", "tell me your name", "How do I reset my password?", "how is the weather", "hi"]


class CountingModel(CountingEncoder):
    """Counts the texts that reach the ONNX session itself (below the encoder's memory of recent inputs)."""

    def __init__(self, inner: OnnxEncoder) -> None:
        super().__init__(inner)
        self.runs = 0
        self._run = inner._run

        def counted(batch: object) -> np.ndarray:
            self.runs += len(batch)  # type: ignore[arg-type]
            return self._run(batch)  # type: ignore[arg-type]

        inner._run = counted  # type: ignore[method-assign]

    def restore(self) -> None:
        self.inner._run = self._run  # type: ignore[attr-defined]


@pytest.fixture
def fresh(minilm: OnnxEncoder) -> OnnxEncoder:
    """The session's encoder with an empty memory of recent inputs."""
    minilm.recent = RecentVectors()
    return minilm


@pytest.fixture
def model(minilm: OnnxEncoder) -> LocalModel:
    return LocalModel.fit(PROMPTS, ANSWERS, encoder=minilm)


def knowledge(model: LocalModel, encoder: object) -> Knowledge:
    k = Knowledge(threshold=0.35, taught_threshold=TAUGHT_THRESHOLD, fallback="?", encoder=encoder)  # type: ignore[arg-type]
    k.set_model("global", LoadedVersion("v1", model, ()))
    return k


def test_an_input_seen_recently_is_not_run_again(fresh: OnnxEncoder) -> None:
    counted = CountingModel(fresh)
    try:
        first = fresh.encode(["Hello there", "what time is it"])
        assert counted.runs == 2
        again = fresh.encode(["hello   there"])  # the same token ids for this (uncased) model
        assert counted.runs == 2
        np.testing.assert_array_equal(again[0], first[0])
        twice = fresh.encode(["a new question", "a new question", "what time is it"])  # one run for the repeat
        assert counted.runs == 3
        np.testing.assert_array_equal(twice[0], twice[1])
        np.testing.assert_allclose(twice[2], first[1])
    finally:
        counted.restore()


def test_the_memory_of_recent_inputs_is_bounded(fresh: OnnxEncoder) -> None:
    fresh.recent = RecentVectors(size=3)
    counted = CountingModel(fresh)
    try:
        for n in range(5):
            fresh.encode([f"question number {n}"])
        assert len(fresh.recent) == 3
        fresh.encode(["question number 4"])
        assert counted.runs == 5  # the newest are still known
        fresh.encode(["question number 0"])
        assert counted.runs == 6  # the oldest was dropped
    finally:
        counted.restore()


def test_a_training_run_does_not_push_questions_out(fresh: OnnxEncoder) -> None:
    fresh.encode(["what is the weather like"])
    fresh.encode([f"training prompt {n}" for n in range(40)])
    assert len(fresh.recent) == 1


def test_answers_from_remembered_vectors_equal_fresh_ones(model: LocalModel, fresh: OnnxEncoder) -> None:
    k = knowledge(model, fresh)
    k.teach("global", 1, "How do I reset my password?", "Use the reset link.")
    first = [k.answer(q) for q in QUESTIONS]
    assert len(fresh.recent) >= len(QUESTIONS)
    again = [k.answer(q) for q in QUESTIONS]
    assert again == first
    assert first[2].text == "Use the reset link." and first[0].text == "Sunny."


def test_a_taught_or_training_prompt_asked_word_for_word_does_not_run_the_encoder(
    tmp_path: Path, minilm: OnnxEncoder
) -> None:
    counting = CountingEncoder(minilm)
    with CachedEncoder(counting, tmp_path) as cached:
        trained = LocalModel.fit(PROMPTS, ANSWERS, encoder=cached)
        k = knowledge(trained, cached)
        k.teach("global", 1, "How do I reset my password?", "Use the reset link.")
        k.settle()
        before = counting.encoded
        taught = k.answer("How do I reset my password?")
        known = k.answer("what is your name")
        assert counting.encoded == before  # both came from the vectors stored when they were learned
        assert taught.text == "Use the reset link." and known.text == "Teachbot."
        k.answer("what is your name, please")  # a new question is encoded
        assert counting.encoded == before + 1
    plain = knowledge(trained, minilm)  # the same answers when the question is encoded
    plain.teach("global", 1, "How do I reset my password?", "Use the reset link.")
    assert plain.answer("How do I reset my password?").text == taught.text
    fresh = plain.answer("what is your name")
    assert (fresh.text, fresh.matched_prompt) == (known.text, known.matched_prompt)
    assert fresh.confidence == pytest.approx(known.confidence, abs=1e-4)


def test_a_stored_vector_is_found_without_loading_the_encoder(tmp_path: Path, minilm: OnnxEncoder) -> None:
    with CachedEncoder(minilm, tmp_path) as cached:
        stored = cached.encode(["what is your name"])[0]
    lazy = lazy_encoder("minilm")
    assert lazy is not None
    with CachedEncoder(lazy, tmp_path) as cached:
        vector = cached.known("what is your name")
        assert cached.known("something never encoded") is None
        assert not lazy.is_loaded
    assert vector is not None and vector.dtype == np.float32
    np.testing.assert_array_equal(vector, stored)


def test_questions_answered_together_get_the_answers_of_one_by_one(model: LocalModel, minilm: OnnxEncoder) -> None:
    k = knowledge(model, minilm)
    k.teach("global", 1, "How do I reset my password?", "Use the reset link.")
    k.teach("guild", 2, "what is your name", "I am the guild's bot.")
    questions = [(q, scope) for q in [*QUESTIONS, "what is your name", "hi"] for scope in ("global", "guild")]
    alone = [k.answer(text, scope) for text, scope in questions]
    assert k.answer_each(questions) == alone
    assert {a.text for a in alone} >= {"Use the reset link.", "I am the guild's bot.", "Teachbot.", "?"}


async def test_questions_waiting_together_go_in_one_trip(model: LocalModel, minilm: OnnxEncoder) -> None:
    k = knowledge(model, minilm)
    k.teach("global", 1, "How do I reset my password?", "Use the reset link.")
    queue = AnswerQueue(k, max_batch=4)
    questions = [(q, "global") for q in QUESTIONS * 2]  # 10 questions asked at once
    answers = await asyncio.gather(*(queue.answer(text, scope) for text, scope in questions))
    assert answers == [k.answer(text, scope) for text, scope in questions]
    assert queue.batches == 3  # all ten waited before the first trip: 4 + 4 (max_batch) + 2
    assert await queue.answer("hi", "global") == k.answer("hi")
    assert queue.batches == 4


async def test_a_question_that_fails_costs_only_its_own_answer(model: LocalModel, minilm: OnnxEncoder) -> None:
    class Failing(Knowledge):
        def _answer(
            self, text: str, scope: str, vector: np.ndarray | None, prediction: Prediction | None = None
        ) -> Answer:
            if text == "boom":
                raise RuntimeError("this question breaks the model")
            return super()._answer(text, scope, vector, prediction)

    k = Failing(threshold=0.35, taught_threshold=TAUGHT_THRESHOLD, fallback="?", encoder=minilm)
    k.set_model("global", LoadedVersion("v1", model, ()))
    queue = AnswerQueue(k)
    results = await asyncio.gather(
        *(queue.answer(text, "global") for text in ["will it rain today", "boom", "who are you", "boom"]),
        return_exceptions=True,
    )
    assert [r.text if isinstance(r, Answer) else type(r) for r in results] == [
        "Sunny.",
        RuntimeError,
        "Teachbot.",
        RuntimeError,
    ]
    assert (await queue.answer("what is your name", "global")).text == "Teachbot."  # the queue still works


def test_a_question_asked_again_is_answered_from_memory_until_the_knowledge_changes(
    model: LocalModel, minilm: OnnxEncoder
) -> None:
    counting = CountingEncoder(minilm)
    k = knowledge(model, counting)
    asked = [("is it going to rain", "global"), ("is it going to rain", "guild"), ("who are you", "global")]
    first = k.answer_each(asked)
    encoded = counting.encoded
    assert k.answer_each(asked[::-1]) == first[::-1] and counting.encoded == encoded  # nothing encoded again

    k.teach("guild", 1, "is it going to rain", "Take an umbrella.")  # that guild only
    taught = k.answer_each(asked)
    assert [a.text for a in taught] == [first[0].text, "Take an umbrella.", first[2].text]
    k.forget("guild", 1)
    assert k.answer_each(asked) == first

    retrained = LocalModel.fit(PROMPTS, ["Rain.", "Rain.", "Teachbot.", "Teachbot."], encoder=minilm)
    k.set_model("global", LoadedVersion("v2", retrained, ()))
    again = k.answer_each(asked)
    assert again[0].text == "Rain." and again[0].model_version == "v2"
    assert again == [k.answer(text, scope) for text, scope in asked]  # the same as answering afresh
