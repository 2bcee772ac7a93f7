"""Evaluation reports: how well a model version answers a test set, and where it goes wrong."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FALLBACK_LABEL = "(fallback)"
HISTOGRAM_BINS = 10


@dataclass(frozen=True, slots=True)
class Outcome:
    """One test question: what was expected and what the model said."""

    prompt: str
    expected: str
    answer: str | None  # None: the model gave its fallback
    confidence: float

    @property
    def correct(self) -> bool:
        return self.answer is not None and self.answer == self.expected


@dataclass(frozen=True, slots=True)
class AnswerScore:
    answer: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvaluationReport:
    """Accuracy, fallback rate, per-answer scores, confusions, worst errors and a confidence histogram."""

    model_version: str
    examples: int
    accuracy: float
    fallback_rate: float
    macro_f1: float
    per_answer: list[AnswerScore]
    confusions: list[tuple[str, str, int]]
    errors: list[Outcome]
    histogram: list[int]
    outcomes: list[Outcome] = field(repr=False, default_factory=list)
    previous: dict[str, Any] | None = None
    note: str = ""  # what the figures mean when it is not plain (e.g. the model learned these questions)

    def to_json(self) -> dict[str, Any]:
        """The full report as plain JSON types (``--json``, the stored metrics, the attached file)."""
        return {
            "model_version": self.model_version,
            "examples": self.examples,
            "accuracy": round(self.accuracy, 4),
            "fallback_rate": round(self.fallback_rate, 4),
            "macro_f1": round(self.macro_f1, 4),
            "per_answer": {
                s.answer: {
                    "precision": round(s.precision, 4),
                    "recall": round(s.recall, 4),
                    "f1": round(s.f1, 4),
                    "support": s.support,
                }
                for s in self.per_answer
            },
            "confusions": [{"expected": e, "answered": a, "count": n} for e, a, n in self.confusions],
            "errors": [
                {"prompt": o.prompt, "expected": o.expected, "answered": o.answer, "confidence": round(o.confidence, 4)}
                for o in self.errors
            ],
            "confidence_histogram": {"bins": HISTOGRAM_BINS, "counts": self.histogram},
            "previous": self.previous,
            "note": self.note,
        }

    def summary(self, *, max_lines: int = 5) -> str:
        """A short text summary for a chat reply."""
        lines = [
            f"Model {self.model_version} on {self.examples} examples: accuracy {self.accuracy:.1%}, "
            f"macro-F1 {self.macro_f1:.1%}, fallback rate {self.fallback_rate:.1%}."
        ]
        if self.previous:
            delta = self.accuracy - float(self.previous.get("accuracy", 0.0))
            lines.append(
                f"Change against {self.previous.get('model_version', 'the previous version')}: "
                f"{delta * 100:+.1f} points of accuracy."
            )
        weakest = sorted((s for s in self.per_answer if s.support), key=lambda s: (s.f1, -s.support))[:max_lines]
        if weakest and any(s.f1 < 1 for s in weakest):
            lines.append(
                "Weakest answers: " + "; ".join(f"{_short(s.answer)} F1 {s.f1:.0%}" for s in weakest if s.f1 < 1)
            )
        if self.confusions:
            lines.append(
                "Most confused: "
                + "; ".join(f"{_short(e)} → {_short(a)} ×{n}" for e, a, n in self.confusions[:max_lines])
            )
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_div(a: float, b: float) -> float:
    return a / b if b else 0.0


def build_report(model_version: str, outcomes: list[Outcome], *, max_errors: int = 20) -> EvaluationReport:
    """Score ``outcomes``; per-answer figures count a fallback as a miss for the expected answer."""
    total = len(outcomes)
    correct = sum(o.correct for o in outcomes)
    fallbacks = sum(o.answer is None for o in outcomes)
    true_pos: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    support: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for o in outcomes:
        support[o.expected] += 1
        if o.answer is not None:
            predicted[o.answer] += 1
        if o.correct:
            true_pos[o.expected] += 1
        else:
            pairs[(o.expected, o.answer if o.answer is not None else FALLBACK_LABEL)] += 1
    scores = []
    for answer in sorted(support.keys() | predicted.keys()):
        precision = _safe_div(true_pos[answer], predicted[answer])
        recall = _safe_div(true_pos[answer], support[answer])
        f1 = _safe_div(2 * precision * recall, precision + recall)
        scores.append(AnswerScore(answer, precision, recall, f1, support[answer]))
    scored = [s for s in scores if s.support]
    histogram = [0] * HISTOGRAM_BINS
    for o in outcomes:
        histogram[min(int(max(o.confidence, 0.0) * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
    errors = sorted((o for o in outcomes if not o.correct), key=lambda o: -o.confidence)[:max_errors]
    return EvaluationReport(
        model_version=model_version,
        examples=total,
        accuracy=_safe_div(correct, total),
        fallback_rate=_safe_div(fallbacks, total),
        macro_f1=_safe_div(sum(s.f1 for s in scored), len(scored)),
        per_answer=scores,
        confusions=[(e, a, n) for (e, a), n in pairs.most_common(10)],
        errors=errors,
        histogram=histogram,
        outcomes=outcomes,
    )
