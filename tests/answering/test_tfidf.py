"""The TF-IDF features: training rows are exactly what answering computes for the same texts."""

from __future__ import annotations

import numpy as np

from teachbot.answering.tfidf import CHUNK, RARE_WORDS_FROM, TfidfFeatures

TEXTS = [
    "How do I reset my password?",
    "how do i reset my password",
    "What's the weather like tomorrow in Paris?",
    "Book a table for two at eight",
    "",
    "!!!",
    "a",
    "naïve café déjà vu",
    "Привет, как дела?",
] * 3 + [f"question number {n} about topic {n % 7}" for n in range(CHUNK + 50)]  # more than one chunk


def test_fitting_gives_the_rows_answering_computes() -> None:
    features, x = TfidfFeatures.fit_transform(TEXTS)
    assert x.shape == (len(TEXTS), features.size)
    assert abs(x - features.transform(TEXTS)).max() == 0
    for n in (0, 2, 7, 8, len(TEXTS) - 1):
        cols, vals = features.row(TEXTS[n])
        dense = np.zeros(features.size, dtype=np.float32)
        dense[cols] = vals
        assert np.allclose(dense, x[n].toarray().ravel(), atol=1e-6)


def test_rare_character_grams_are_left_out_of_a_large_vocabulary() -> None:
    features, _ = TfidfFeatures.fit_transform(TEXTS)
    assert "question" in features.word_ids and " qu" in features.char_ids
    assert "xyzzy" not in features.char_ids
    once = TfidfFeatures.fit_transform([*TEXTS, "xyzzy"])[0]
    assert "xyzzy" in once.word_ids and "xyz" not in once.char_ids  # a word counts once seen, a char gram twice


def test_rare_words_are_left_out_of_a_vocabulary_of_many_texts() -> None:
    many = [f"question number {n} about topic {n % 7}" for n in range(RARE_WORDS_FROM)]
    features = TfidfFeatures.fit_transform([*many, "plugh xyzzy", "xyzzy again"])[0]
    assert "xyzzy" in features.word_ids and "plugh" not in features.word_ids  # twice is kept, once is not
    assert "question number" in features.word_ids and "plugh xyzzy" not in features.word_ids
    fewer = TfidfFeatures.fit_transform([*many[: RARE_WORDS_FROM - 3], "plugh xyzzy", "xyzzy again"])[0]
    assert "plugh" in fewer.word_ids and "plugh xyzzy" in fewer.word_ids


def test_nothing_to_fit() -> None:
    features, x = TfidfFeatures.fit_transform([])
    assert x.shape == (0, 0) and features.size == 0
