from __future__ import annotations

import pytest

from teachbot.training.evaluation import FALLBACK_LABEL, Outcome, build_report


def test_report_scores_per_answer_and_counts_fallbacks() -> None:
    outcomes = [
        Outcome("q1", "a", "a", 0.9),
        Outcome("q2", "a", "b", 0.6),
        Outcome("q3", "b", "b", 0.8),
        Outcome("q4", "b", None, 0.1),
    ]
    report = build_report("v1", outcomes)
    assert report.accuracy == pytest.approx(0.5)
    assert report.fallback_rate == pytest.approx(0.25)
    scores = {s.answer: s for s in report.per_answer}
    assert scores["a"].precision == pytest.approx(1.0) and scores["a"].recall == pytest.approx(0.5)
    assert scores["b"].precision == pytest.approx(0.5) and scores["b"].recall == pytest.approx(0.5)
    assert ("a", "b", 1) in report.confusions and ("b", FALLBACK_LABEL, 1) in report.confusions
    assert sum(report.histogram) == 4
    assert report.errors[0].prompt == "q2"  # the most confident mistake comes first
    data = report.to_json()
    assert {"accuracy", "fallback_rate", "examples", "per_answer", "macro_f1", "confusions"} <= data.keys()
    assert "accuracy 50.0%" in report.summary()


def test_empty_outcomes_do_not_divide_by_zero() -> None:
    report = build_report("v1", [])
    assert report.accuracy == 0.0 and report.examples == 0
