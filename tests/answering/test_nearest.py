"""The fit-free nearest index: taught examples are searchable at once, paraphrases score high."""

from __future__ import annotations

import pytest

from teachbot.answering import nearest
from teachbot.answering.nearest import TAUGHT_THRESHOLD, NearestIndex


def test_add_search_remove() -> None:
    index = NearestIndex()
    assert len(index) == 0
    assert index.search("anything") == []
    index.add(1, "what time does the shop open", "At nine.")
    index.add(2, "how do i reset my password", "Use the reset link.")
    assert len(index) == 2
    hits = index.search("what time does the shop open")
    assert hits[0].key == 1
    assert hits[0].answer == "At nine."
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    index.remove(1)
    assert len(index) == 1
    assert all(h.key != 1 for h in index.search("what time does the shop open"))
    index.remove(99)  # absent: no error


def test_re_adding_a_key_replaces_it() -> None:
    index = NearestIndex()
    index.add(1, "what time does the shop open", "At nine.")
    index.add(1, "what time does the shop open", "At ten.")
    assert len(index) == 1
    assert [h.answer for h in index.search("what time does the shop open")] == ["At ten."]


def test_paraphrase_above_and_unrelated_below_threshold() -> None:
    index = NearestIndex()
    index.add(1, "what time does the shop open on sunday", "At ten on Sundays.")
    index.add(2, "how do i reset my password", "Use the reset link.")
    paraphrase = index.search("What time does the shop open on Sundays?", k=1)
    assert paraphrase[0].key == 1
    assert paraphrase[0].score >= TAUGHT_THRESHOLD
    assert index.search("is it going to snow tomorrow", k=1, min_score=TAUGHT_THRESHOLD) == []
    assert index.search("where is the nearest train station", k=1, min_score=TAUGHT_THRESHOLD) == []


def test_min_score_and_k() -> None:
    index = NearestIndex()
    for key in range(10):
        index.add(key, f"question about item {key}", f"answer {key}")
    assert len(index.search("question about item 3", k=3)) == 3
    assert all(h.score >= 0.9 for h in index.search("question about item 3", k=10, min_score=0.9))


def test_large_index_merges_and_compacts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nearest, "MERGE_EVERY", 16)
    monkeypatch.setattr(nearest, "EXACT_ROWS", 50)
    index = NearestIndex()
    for key in range(300):
        index.add(key, f"how many {key} apples fit in crate {key * 7}", f"answer {key}")
    assert index.search("how many 123 apples fit in crate 861", k=1)[0].key == 123
    for key in range(250):
        index.remove(key)
    assert len(index) == 50
    assert index.search("how many 280 apples fit in crate 1960", k=1)[0].key == 280
    assert all(h.key >= 250 for h in index.search("how many apples", k=20))


@pytest.mark.parametrize("text", ["", "   ", "!!!", "x" * 1_000_000])
def test_odd_queries(text: str) -> None:
    index = NearestIndex()
    index.add(1, "hello", "hi")
    assert isinstance(index.search(text), list)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("how do I reset my password", "How do I reset my password?"),
        ("how do I reset my password", "where is the meetup"),
        ("", "anything"),
        ("!!!", "???"),
        ("Какая сегодня погода?", "какая погода"),
    ],
)
def test_similarity_is_the_cosine_of_the_embedded_texts(a: str, b: str) -> None:
    vectors = nearest.embed([a, b])
    expected = float((vectors[0] @ vectors[1].T).toarray()[0, 0])
    assert nearest.similarity(a, b) == pytest.approx(expected, abs=1e-6)
    assert nearest.similarity(b, a) == pytest.approx(expected, abs=1e-6)
