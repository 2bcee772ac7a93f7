"""The text features both models share: the normal form and the word and character n-grams."""

from __future__ import annotations

from teachbot.answering.text import ngrams, normalize_text


def test_normalize_text() -> None:
    assert normalize_text("  What's   the WEATHER, today?! ") == "whats the weather today"
    assert normalize_text("ﬁne\u00a0day") == "fine day"
    assert normalize_text("") == ""


def test_ngrams_are_word_pairs_and_character_grams_inside_word_boundaries() -> None:
    words, chars = ngrams(normalize_text("Hi, you!"))
    assert words == ["hi", "you", "hi you"]
    # 3-, 4- and 5-grams of " hi " and " you "; a word shorter than a size gives its whole padded form
    assert chars == [" hi", "hi ", " hi ", " hi ", " yo", "you", "ou ", " you", "you ", " you "]
    assert ngrams("") == ([], [])
