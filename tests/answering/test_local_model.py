"""The embedded local model: answers, refusals, negatives, determinism and safe persistence."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from faq import ANSWERS, PROMPTS

from teachbot.answering import local_model
from teachbot.answering.encoding import OnnxEncoder
from teachbot.answering.knowledge import Knowledge, LoadedVersion, taught_wins
from teachbot.answering.local_model import DEFAULT_THRESHOLD, LocalModel, Prediction
from teachbot.answering.nearest import TAUGHT_THRESHOLD
from teachbot.answering.overlay import Match
from teachbot.errors import TeachbotError

OUT_OF_SCOPE = ["how do i change a tyre", "play some jazz music", "book a flight to rome"]


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return LocalModel.fit(PROMPTS, ANSWERS, out_of_scope=OUT_OF_SCOPE)


def test_answers_known_questions_and_paraphrases(model: LocalModel) -> None:
    assert model.predict("what is your name").answer == "My name is Teachbot."
    paraphrase = model.predict("What's the weather like today?")
    assert paraphrase.answer == "It is sunny and warm today."
    assert 0.0 <= paraphrase.confidence <= 1.0
    assert paraphrase.example_index is not None
    assert ANSWERS[paraphrase.example_index] == paraphrase.answer
    assert paraphrase.matched_prompt == PROMPTS[paraphrase.example_index]


@pytest.mark.parametrize("text", ["xqzv kjhw plmb", "quantum chromodynamics lattice gauge", "book a flight to rome"])
def test_falls_back_on_unrelated_text(model: LocalModel, text: str) -> None:
    prediction = model.predict(text)
    assert prediction.answer is None
    assert prediction.confidence < model.threshold


def test_confidence_orders_sure_above_unsure(model: LocalModel) -> None:
    assert model.predict("what is your name").confidence > model.predict("name of the weather food").confidence


def test_is_deterministic() -> None:
    a = LocalModel.fit(PROMPTS, ANSWERS, seed=3).predict_many([*PROMPTS, "what to eat"])
    b = LocalModel.fit(PROMPTS, ANSWERS, seed=3).predict_many([*PROMPTS, "what to eat"])
    assert a == b


@pytest.mark.parametrize("with_meaning", [False, True])
def test_many_questions_at_once_get_the_answers_they_get_one_at_a_time(
    with_meaning: bool, minilm: OnnxEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """predict_many compares chunks of questions by matrix products; predict one question by its postings."""
    monkeypatch.setattr(local_model, "PREDICT_CHUNK", 4)  # several chunks, the last one short
    negatives = [("who are you", "My name is Teachbot.")]
    encoder = minilm if with_meaning else None
    trained = LocalModel.fit(PROMPTS, ANSWERS, negatives=negatives, out_of_scope=OUT_OF_SCOPE, encoder=encoder)
    questions = [*PROMPTS[:6], "who are you?", "", "zzqx vvkj", "what's for dinner", "!!!", "book a flight to rome"]
    together = trained.predict_many(questions)
    alone = [trained.predict(q) for q in questions]
    assert [(p.answer, p.example_index) for p in together] == [(p.answer, p.example_index) for p in alone]
    assert [p.confidence for p in together] == pytest.approx([p.confidence for p in alone], abs=1e-5)
    assert together[7] == Prediction(None, 0.0)  # no known n-gram: no answer, as alone
    assert together[6].answer != "My name is Teachbot."  # the refusal holds in a batch too


def test_negative_stops_an_answer_for_the_prompt_and_close_paraphrases() -> None:
    question = "what would you eat for dinner"
    before = LocalModel.fit(PROMPTS, ANSWERS).predict(question)
    assert before.answer == "Pizza is my favourite food."
    model = LocalModel.fit(PROMPTS, ANSWERS, negatives=[(question, "Pizza is my favourite food.")])
    assert model.predict(question).answer != "Pizza is my favourite food."
    assert model.predict("What would you eat for dinner?").answer != "Pizza is my favourite food."
    assert model.predict("what is your favourite food").answer == "Pizza is my favourite food."


def test_one_example_and_one_class() -> None:
    single = LocalModel.fit(["hello there"], ["Hi!"])
    assert single.predict("hello there").answer == "Hi!"
    assert single.predict("completely different topic about trains").answer is None
    one_class = LocalModel.fit(["hi", "hello", "hey there"], ["Hi!"] * 3)
    assert one_class.predict("hello").answer == "Hi!"
    assert one_class.predict("what is the capital of peru").answer is None


@pytest.mark.slow
def test_many_classes() -> None:
    prompts = [f"question number {n} about topic{n}" for n in range(2000)]
    answers = [f"answer {n}" for n in range(2000)]
    model = LocalModel.fit(prompts, answers)
    assert model.predict("question number 1234 about topic1234").answer == "answer 1234"


@pytest.mark.parametrize("text", ["", "   \n\t ", "?!...", "a" * 1_000_000, "word " * 200_000, "😀 ☃ ﬁ"])
def test_odd_inputs_do_not_crash(model: LocalModel, text: str) -> None:
    prediction = model.predict(text)
    assert isinstance(prediction, Prediction)
    assert 0.0 <= prediction.confidence <= 1.0


def test_rejects_bad_training_input() -> None:
    with pytest.raises(TeachbotError):
        LocalModel.fit([], [])
    with pytest.raises(TeachbotError):
        LocalModel.fit(["a", "b"], ["x"])


def test_save_load_round_trip(model: LocalModel, tmp_path: Path) -> None:
    trained = LocalModel.fit(PROMPTS, ANSWERS, negatives=[("who are you", "My name is Teachbot.")])
    trained.save(tmp_path / "m")
    loaded = LocalModel.load(tmp_path / "m")
    questions = [*PROMPTS, "who are you?", "gibberish zzkq", "what's for dinner"]
    assert loaded.predict_many(questions) == trained.predict_many(questions)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["arrays.npz", "model.json"]


@pytest.mark.parametrize("version", [2, 3])
def test_loads_versions_saved_in_earlier_formats(model: LocalModel, tmp_path: Path, version: int) -> None:
    """Formats 2 and 3 stored the training rows as rows × features (every array or the integer ones compressed),
    format 2 the SVM's weights as one dense array: such versions still answer the same."""
    model.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    held = (arrays.pop("xt_data"), arrays.pop("xt_indices"), arrays.pop("xt_indptr"))
    rows = sp.csr_matrix(held, shape=(model.features.size, len(arrays["labels"]))).T.tocsr()
    arrays |= {"x_data": rows.data, "x_indices": rows.indices, "x_indptr": rows.indptr}
    if version == 2:
        parts = (arrays.pop("weights_data"), arrays.pop("weights_indices"), arrays.pop("weights_indptr"))
        arrays["weights"] = sp.csr_matrix(parts, shape=(model.features.size, len(arrays["bias"]))).toarray()
    np.savez_compressed(tmp_path / "m" / "arrays.npz", **arrays)
    meta = json.loads((tmp_path / "m" / "model.json").read_text(encoding="utf-8"))
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta | {"format": version}), encoding="utf-8")
    questions = [*PROMPTS, "who are you?", "gibberish zzkq", "how do i change a tyre"]
    assert LocalModel.load(tmp_path / "m").predict_many(questions) == model.predict_many(questions)


def test_load_missing_or_corrupt_raises(model: LocalModel, tmp_path: Path) -> None:
    with pytest.raises(TeachbotError):
        LocalModel.load(tmp_path / "nothing-here")
    model.save(tmp_path / "m")
    (tmp_path / "m" / "arrays.npz").write_bytes(b"not a zip")
    with pytest.raises(TeachbotError):
        LocalModel.load(tmp_path / "m")
    model.save(tmp_path / "n")
    (tmp_path / "n" / "model.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(TeachbotError):
        LocalModel.load(tmp_path / "n")
    model.save(tmp_path / "o")
    (tmp_path / "o" / "model.json").unlink()
    with pytest.raises(TeachbotError):
        LocalModel.load(tmp_path / "o")


def test_overlay_wins_over_the_model(model: LocalModel) -> None:
    knowledge = Knowledge(threshold=DEFAULT_THRESHOLD, taught_threshold=TAUGHT_THRESHOLD, fallback="?")
    knowledge.set_model("global", LoadedVersion("v1", model, ()))
    assert knowledge.answer("what is your name").text == "My name is Teachbot."
    knowledge.teach("global", 1, "what is your name", "Call me Teach.")
    taught = knowledge.answer("What is your name?")
    assert taught.text == "Call me Teach."
    assert taught.confidence > 0.95
    assert knowledge.answer("what do you like to eat").text == "Pizza is my favourite food."
    assert Knowledge(threshold=0.35, taught_threshold=0.55, fallback="?").answer("anything").is_fallback


# The starter set is what every new user meets first: it must answer about itself and say it
# does not know about anything else (bench numbers: see local_model's module docstring).
STARTER_KNOWN = [
    "who are you?",
    "hello",
    "how do I teach you",
    "thanks!",
    "bye",
    "hey there",
    "what are you exactly?",
    "how can I teach you something",
    "hi",
    "good evening",
    "see you later",
    "are you a robot?",
]
STARTER_UNKNOWN = [
    "explain quantum tunnelling in one line",
    "what is the capital of the planet zorblax",
    "how do I cook rice",
    "what is the weather today",
    "tell me a joke",
    "how tall is mount everest",
    "translate hello into french",
    "what time is it",
    "who won the world cup in 2018",
    "how do I reset my password",
    "what is 17 times 23",
    "recommend a good book",
    "where is the nearest pharmacy",
    "can you book me a flight to paris",
    "is it going to rain tomorrow",
]


@pytest.fixture(scope="module")
def starter() -> LocalModel:
    from teachbot.training.data import starter_examples

    examples = starter_examples()
    return LocalModel.fit([e.prompt for e in examples], [e.answer for e in examples])


@pytest.mark.parametrize("text", STARTER_KNOWN)
def test_starter_set_answers_questions_about_itself(starter: LocalModel, text: str) -> None:
    prediction = starter.predict(text)
    assert prediction.answer is not None
    assert prediction.confidence >= 0.35


@pytest.mark.parametrize("text", STARTER_UNKNOWN)
def test_starter_set_knows_when_it_does_not_know(starter: LocalModel, text: str) -> None:
    prediction = starter.predict(text)
    assert prediction.answer is None
    assert prediction.confidence < 0.35


def test_small_faq_answers_paraphrases_and_refuses_the_rest() -> None:
    model = LocalModel.fit(PROMPTS, ANSWERS)  # no out-of-scope examples given: the background stands in
    assert model.predict("what's the weather like today?").answer == "It is sunny and warm today."
    assert model.predict("what should I call you").answer == "My name is Teachbot."
    assert model.predict("what food do you like").answer == "Pizza is my favourite food."
    for text in ("how do I cook rice", "who won the world cup in 2018", "what is 17 times 23"):
        assert model.predict(text).answer is None, text


def test_background_gives_way_to_taught_examples() -> None:
    """A bundled background question the user teaches an answer for is not learnt as a refusal."""
    model = LocalModel.fit(["what is the boiling point of water", "hello"], ["100 °C at sea level.", "Hi!"])
    assert model.predict("what is the boiling point of water?").answer == "100 °C at sea level."


def test_ranked_answers_are_the_likeliest_best_first_whatever_the_threshold(model: LocalModel) -> None:
    ranked = model.ranked("what is your name", k=3)
    assert ranked[0].answer == model.predict("what is your name").answer
    assert ranked[0].confidence == pytest.approx(model.predict("what is your name").confidence)
    assert len(ranked) == 3 and len({p.answer for p in ranked}) == 3
    assert [p.confidence for p in ranked] == sorted((p.confidence for p in ranked), reverse=True)
    assert all(p.matched_prompt is not None and ANSWERS[p.example_index or 0] == p.answer for p in ranked)
    unsure = model.ranked("book a flight to rome", k=2)  # below the threshold: still ranked
    assert model.predict("book a flight to rome").answer is None and len(unsure) == 2
    assert all(p.confidence < 0.01 for p in model.ranked("xqzv kjhw plmb"))  # ranked, but unlikely
    assert model.ranked("") == []  # no n-gram at all: nothing to rank


def test_ranked_leaves_out_refused_answers() -> None:
    refused = LocalModel.fit(PROMPTS, ANSWERS, negatives=[("what is your name", "My name is Teachbot.")])
    assert "My name is Teachbot." not in {p.answer for p in refused.ranked("what is your name", k=3)}


def test_candidates_offer_the_taught_answer_and_the_models_likeliest(model: LocalModel) -> None:
    knowledge = Knowledge(threshold=DEFAULT_THRESHOLD, taught_threshold=TAUGHT_THRESHOLD, fallback="?")
    assert knowledge.candidates("what is your name") == []  # nothing known yet
    knowledge.set_model("global", LoadedVersion("v1", model, ()))
    before = knowledge.candidates("what is your name", k=2)
    assert before[0].answer == "My name is Teachbot." and not before[0].taught
    assert len(before) <= 2 and all(c.confidence >= 0.01 for c in before)
    knowledge.teach("global", 1, "what is your name", "Call me Teach.")
    after = knowledge.candidates("what is your name", k=3)
    assert after[0].answer == "Call me Teach." and after[0].taught
    assert "My name is Teachbot." in {c.answer for c in after}
    knowledge.teach("global", 2, "what is your name", "My name is Teachbot.", negative=True)
    assert "My name is Teachbot." not in {c.answer for c in knowledge.candidates("what is your name", k=3)}


def test_a_learned_correction_overrides_the_model_only_for_a_near_copy() -> None:
    # the model was trained after the correction: it weighed it against everything else, so the overlay
    # keeps the taught question itself but no longer pulls paraphrases away from the model's answer
    taught = Match(1, "how do I reset my password", "Use the reset link.", score=0.8, wording=0.3, meaning=0.8)
    model = Prediction("Restart the router.", 0.6, 0, "how do I reset my router", meaning=0.6)
    assert taught_wins("how can I reset my password", taught, model)
    assert not taught_wins("how can I reset my password", taught, model, learned=True)
    copy = replace(taught, score=0.97, meaning=0.97)
    assert taught_wins("how do I reset my password?", copy, model, learned=True)
    for agrees in (replace(model, answer=taught.answer), Prediction(None, 0.2)):
        assert taught_wins("how can I reset my password", taught, agrees, learned=True)
    # without an encoder, a near-copy in wording
    worded = replace(taught, meaning=None, wording=0.95)
    assert taught_wins("how do i reset my password", worded, replace(model, meaning=None), learned=True)
    assert not taught_wins("reset password", replace(worded, wording=0.5), replace(model, meaning=None), learned=True)


def test_a_version_knows_which_stored_examples_it_learned(model: LocalModel) -> None:
    version = LoadedVersion("v2", model, (None, 7, None, 12))
    assert version.learned(7) and version.learned(12)
    assert not version.learned(8)
    assert replace(version, version="v3").learned(7)  # renamed when stored: still the same examples


def test_a_heavier_example_wins_a_question_taught_two_ways() -> None:
    question = "who looks after the garden on sundays"
    prompts, answers = [*PROMPTS, question, question], [*ANSWERS, "Anna does.", "Ben does."]
    for heavier, expected in ((-1, "Ben does."), (-2, "Anna does.")):
        weights = [1.0] * len(prompts)
        weights[heavier] = 3.0
        assert LocalModel.fit(prompts, answers, weights=weights).predict(question).answer == expected


def test_weights_must_match_the_prompts() -> None:
    with pytest.raises(TeachbotError, match="weights"):
        LocalModel.fit(PROMPTS, ANSWERS, weights=[1.0])


def test_an_extended_model_learns_new_examples_and_answers_as_before(tmp_path: Path) -> None:
    model = LocalModel.fit(PROMPTS, ANSWERS, out_of_scope=OUT_OF_SCOPE)
    new = ["where do i park my bike", "where can bicycles be parked", "what is your name"]
    answers = ["Bikes go in the yard.", "Bikes go in the yard.", "My name is Teachbot."]
    extended = model.extended(new, answers, [2.0, 2.0, 1.0])
    assert extended is not None
    assert extended.predict("where can I park a bike").answer == "Bikes go in the yard."  # a new answer
    assert extended.answers == [*model.answers, "Bikes go in the yard."]
    assert [p.answer for p in extended.predict_many(PROMPTS)] == [p.answer for p in model.predict_many(PROMPTS)]
    assert extended.predict("book a flight to rome").answer is None  # "none of these" moved up a label
    assert extended.row_weights is not None and list(extended.row_weights[-3:]) == [2.0, 2.0, 1.0]
    extended.save(tmp_path / "v")
    loaded = LocalModel.load(tmp_path / "v")
    assert loaded.predict("where can I park a bike").answer == "Bikes go in the yard."
    assert loaded.extended(["is there bike parking"], ["Bikes go in the yard."], [1.0]) is not None


def test_a_model_without_its_rows_weights_is_not_extended() -> None:
    model = LocalModel.fit(PROMPTS, ANSWERS)
    model.row_weights = None  # as a model saved before they were kept
    assert model.extended(["where do i park my bike"], ["Bikes go in the yard."], [1.0]) is None
