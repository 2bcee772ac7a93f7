"""Meaning, not words: with the sentence encoder a correction reaches other ways of asking, a refusal covers
them too, LLM prompts get only close examples, and retraining encodes only what is new."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from encoders import CountingEncoder
from faq import ANSWERS, PROMPTS

from teachbot.answering import local_model
from teachbot.answering.encoding import CachedEncoder, OnnxEncoder, lazy_encoder
from teachbot.answering.knowledge import Knowledge, LoadedVersion, build_reference
from teachbot.answering.local_model import EncoderMismatch, LocalModel
from teachbot.answering.nearest import TAUGHT_THRESHOLD
from teachbot.training.data import starter_examples

RESET = "Use the 'forgot password' link on the login page."


@pytest.fixture(scope="module")
def faq(minilm: OnnxEncoder) -> LocalModel:
    return LocalModel.fit(PROMPTS, ANSWERS, encoder=minilm)


def knowledge(model: LocalModel | None, encoder: object | None) -> Knowledge:
    k = Knowledge(threshold=0.35, taught_threshold=TAUGHT_THRESHOLD, fallback="?", encoder=encoder)  # type: ignore[arg-type]
    if model is not None:
        k.set_model("global", LoadedVersion("v1", model, ()))
    return k


def test_the_model_answers_paraphrases_and_refuses_the_rest(faq: LocalModel) -> None:
    assert faq.encoder_id is not None and faq.encoder_id.startswith("all-MiniLM-L6-v2")
    assert faq.predict("will it be sunny later").answer == "It is sunny and warm today."
    assert faq.predict("How should I address you?").answer == "My name is Teachbot."
    for text in ("how do I cook rice", "who won the world cup in 2018", "what is 17 times 23"):
        assert faq.predict(text).answer is None, text


def test_a_correction_reaches_paraphrases(faq: LocalModel, minilm: OnnxEncoder) -> None:
    paraphrase = "I forgot my password, what do I do?"  # shares almost no words with what was taught
    for encoder, reached in ((minilm, True), (None, False)):
        k = knowledge(faq, encoder)
        k.teach("global", 1, "How do I reset my password?", RESET)
        assert k.answer("how do I reset my password").text == RESET
        assert (k.answer(paraphrase).text == RESET) is reached


def test_a_neighbouring_topic_is_not_stolen(faq: LocalModel, minilm: OnnxEncoder) -> None:
    k = knowledge(faq, minilm)
    k.teach("global", 1, "How do I reset my password?", RESET)
    assert k.answer("how do I reset my router").text != RESET  # the same words, another question
    assert k.answer("what is the weather like today").text == "It is sunny and warm today."
    # two taught neighbours: a question goes to the one it is clearly closest to, or to neither
    k.teach("global", 2, "what is the weather in Paris", "Rainy in Paris.")
    k.teach("global", 3, "what time is it in Paris", "It is noon in Paris.")
    assert k.answer("is it raining in Paris").text == "Rainy in Paris."
    assert k.answer("what's the current time in Paris?").text == "It is noon in Paris."


def test_a_refusal_covers_questions_that_mean_the_same(faq: LocalModel, minilm: OnnxEncoder) -> None:
    k = knowledge(faq, minilm)
    asked = "Could you tell me your name, please?"
    assert k.answer(asked).text == "My name is Teachbot."
    k.teach("global", 7, "can you tell me your name?", "My name is Teachbot.", negative=True)
    assert k.answer(asked).text != "My name is Teachbot."
    assert k.answer("what would you eat for dinner").text == "Pizza is my favourite food."  # others untouched


@pytest.mark.parametrize(
    ("taught", "again", "other"),
    [
        ("Как тебя зовут?", "как тебя зовут", "Какая погода будет завтра?"),
        ("Πώς σε λένε;", "πώς σε λένε", "Τι καιρό θα κάνει αύριο;"),
        ("तुम्हारा नाम क्या है?", "तुम्हारा नाम क्या है", "कल मौसम कैसा रहेगा?"),
        ("ما اسمك؟", "ما اسمك", "أين محطة القطار؟"),
    ],
)
def test_a_language_the_encoder_does_not_know_still_learns(
    faq: LocalModel, minilm: OnnxEncoder, taught: str, again: str, other: str
) -> None:
    """The bundled encoder cannot read these scripts (their questions all look alike to it, cosine 0.6 to
    0.85): a correction applies by its characters, and never to another question in that language."""
    k = knowledge(faq, minilm)
    k.teach("global", 1, taught, "ANSWER")
    assert k.answer(again).text == "ANSWER"
    assert k.answer(other).text != "ANSWER"
    assert k.answer("what is your name").text == "My name is Teachbot."  # English questions untouched


def test_teaching_is_instant_and_the_next_question_encodes_it(faq: LocalModel, counting: CountingEncoder) -> None:
    k = knowledge(faq, counting)
    k.teach("global", 1, "How do I reset my password?", RESET)
    assert counting.encoded == 0  # nothing encoded while teaching: it runs on the event loop
    assert k.answer("I forgot my password, what do I do?").text == RESET
    assert counting.encoded == 2  # the taught prompt and the question
    k.forget("global", 1)
    assert k.answer("I forgot my password, what do I do?").text != RESET


def test_retrieval_shows_only_close_examples(minilm: OnnxEncoder) -> None:
    examples = starter_examples()
    starter = LocalModel.fit([e.prompt for e in examples], [e.answer for e in examples], encoder=minilm)
    k = knowledge(None, minilm)
    k.set_model("global", LoadedVersion("v1", starter, (), build_reference(starter, ())))
    for unrelated in ("What is the capital of France?", "What is love?", "Name three fruits.", "Explain tides"):
        assert k.retrieve(unrelated, "global") == [], unrelated
    found = k.retrieve("who are you exactly?", "global")
    assert found and found[0].answer.startswith("I'm teachbot")
    k.teach("global", 5, "What is the capital of France?", "Paris.")
    taught = k.retrieve("Which city is the capital of France?", "global")
    assert [(e.example_id, e.answer) for e in taught] == [(5, "Paris.")]


def test_a_saved_model_keeps_its_vectors_and_its_encoder(
    faq: LocalModel, minilm: OnnxEncoder, counting: CountingEncoder, tmp_path: Path
) -> None:
    faq.save(tmp_path / "v1")
    loaded = LocalModel.load(tmp_path / "v1", counting)
    assert counting.encoded == 0  # the training vectors come from the file
    questions = ["will it be sunny later", "How should I address you?", "play jazz"]
    vectors = minilm.encode(questions)
    for question, vector in zip(questions, vectors, strict=True):
        before, after = faq.predict(question, vector), loaded.predict(question, vector)
        assert before.answer == after.answer
        assert after.confidence == pytest.approx(before.confidence, abs=0.01)
    with pytest.raises(EncoderMismatch, match="encoder=none"):
        LocalModel.load(tmp_path / "v1", None)
    with pytest.raises(EncoderMismatch, match="another-model"):
        LocalModel.load(tmp_path / "v1", CountingEncoder(minilm, model_id="another-model:1234"))
    LocalModel.fit(PROMPTS, ANSWERS).save(tmp_path / "plain")  # trained without an encoder: loads with one
    assert LocalModel.load(tmp_path / "plain", minilm).predict("what is your name").answer == "My name is Teachbot."


def test_retraining_encodes_only_what_is_new(counting: CountingEncoder, tmp_path: Path) -> None:
    with CachedEncoder(counting, tmp_path / "cache") as cache:
        LocalModel.fit(PROMPTS, ANSWERS, encoder=cache)
        first = counting.encoded
        assert first >= len(PROMPTS)  # the prompts and the background questions
        new = [f"new question number {n} about pizza toppings" for n in range(10)]
        LocalModel.fit(PROMPTS + new, ANSWERS + ["Pizza is my favourite food."] * 10, encoder=cache)
        assert counting.encoded == first + 10


def test_confidence_means_something_with_meaning(faq: LocalModel) -> None:
    sure = faq.predict("what is your name")
    unsure = faq.predict("what do you like")
    assert sure.confidence > unsure.confidence
    assert 0.0 <= unsure.confidence <= sure.confidence <= 1.0
    assert sure.meaning == pytest.approx(1.0, abs=1e-3)  # the matched example is the question itself
    assert faq.predict("").answer is None and faq.predict("!!!").answer is None


def test_predictions_in_a_batch_equal_one_at_a_time(faq: LocalModel, caplog: pytest.LogCaptureFixture) -> None:
    questions = ["what's the weather", "who are you", "tell me a joke", "what food do you like"]
    with caplog.at_level(logging.WARNING):
        together = faq.predict_many(questions)
    alone = [faq.predict(q) for q in questions]
    assert [p.answer for p in together] == [p.answer for p in alone]
    np.testing.assert_allclose([p.confidence for p in together], [p.confidence for p in alone], atol=1e-4)


def test_a_large_fit_releases_a_lazily_loaded_encoder_until_it_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lazy = lazy_encoder("minilm")
    assert lazy is not None
    with CachedEncoder(lazy, tmp_path) as cached:
        LocalModel.fit(PROMPTS, ANSWERS, encoder=cached)  # a small fit keeps it
        assert lazy.is_loaded
        monkeypatch.setattr(local_model, "RELEASE_ENCODER_FROM", len(PROMPTS))
        model = LocalModel.fit(PROMPTS, ANSWERS, encoder=cached)
        assert not lazy.is_loaded  # released before the SVM
        assert model.predict("will it be sunny later").answer == "It is sunny and warm today."
        assert lazy.is_loaded  # the question needed it
