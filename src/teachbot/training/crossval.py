"""Cross-validation of a small labelled file: k models, each scored on the part it did not learn.

With tens of examples a single held-out split is a handful of questions, and its score mostly
measures which questions happened to land in it. Here every example is asked exactly once, by a
model that never saw it: the examples are dealt into k folds (each answer's phrasings spread over
the folds), and fold i is answered by a model trained on the other folds plus the starter small
talk when the project uses it. Nothing is stored; the active model is not involved.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from teachbot.datasets.examples import Example
from teachbot.errors import UserError
from teachbot.training.evaluation import EvaluationReport, Outcome, build_report

if TYPE_CHECKING:
    from teachbot.answering.encoding import Encoder

__all__ = ["CrossValidation", "assign_folds", "cross_validate"]

MAX_FOLDS = 20


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Per-fold accuracies and the report of every example's out-of-fold answer."""

    source: str
    folds: int
    sizes: tuple[int, ...]
    accuracies: tuple[float, ...]
    starter: bool
    report: EvaluationReport

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def spread(self) -> float:
        """Sample standard deviation of the fold accuracies."""
        return statistics.stdev(self.accuracies)

    def summary(self) -> str:
        """What was done and what it means, in a few lines."""
        learned = f"the other {self.folds - 1} folds" + (" plus the built-in small talk" if self.starter else "")
        per_fold = ", ".join(f"{a:.0%}" for a in self.accuracies)
        smallest = min(self.sizes)
        lines = [
            f"{self.folds}-fold cross-validation of {self.source} ({self.report.examples} examples, "
            f"{smallest}–{max(self.sizes)} per fold): each fold was answered by a model trained on {learned}.",
            f"Accuracy {self.mean:.1%} ± {self.spread:.1%} (folds: {per_fold}); "
            f"macro-F1 {self.report.macro_f1:.1%}, fallback rate {self.report.fallback_rate:.1%}.",
        ]
        if smallest < 20:
            lines.append(
                f"A fold of {smallest} questions moves by {1 / smallest:.0%} per question: read the mean, "
                "not a single fold."
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "folds": self.folds,
            "fold_sizes": list(self.sizes),
            "fold_accuracies": [round(a, 4) for a in self.accuracies],
            "mean_accuracy": round(self.mean, 4),
            "accuracy_stdev": round(self.spread, 4),
            "starter_examples": self.starter,
        }


def assign_folds(examples: Sequence[Example], folds: int) -> list[int]:
    """The fold of each example: dealt round-robin answer by answer, so an answer's phrasings spread
    over the folds and the fold sizes differ by at most one. Deterministic (file order)."""
    by_answer: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_answer.setdefault(example.answer, []).append(index)
    assigned = [0] * len(examples)
    dealt = 0
    for indexes in by_answer.values():
        for index in indexes:
            assigned[index] = dealt % folds
            dealt += 1
    return assigned


def cross_validate(
    examples: Sequence[Example],
    *,
    folds: int,
    starter: Sequence[Example],
    threshold: float,
    source: str,
    encoder: Encoder | None = None,
) -> CrossValidation:
    """Train ``folds`` local models and score each on its fold (blocking: CPU work).

    Below ``threshold`` an answer counts as the fallback, as in chat. With ``encoder`` the models learn
    from meaning too, like the versions that serve (a cached encoder encodes each prompt once).
    """
    from teachbot.answering.local_model import LocalModel

    if not 2 <= folds <= min(MAX_FOLDS, len(examples)):
        limit = min(MAX_FOLDS, len(examples))
        raise UserError(
            f"--folds must be between 2 and {limit} for {len(examples)} examples."
            if limit >= 2
            else "Cross-validation needs at least 2 examples."
        )
    assigned = assign_folds(examples, folds)
    outcomes: list[Outcome | None] = [None] * len(examples)
    accuracies, sizes = [], []
    for fold in range(folds):
        train = [*starter, *(e for e, f in zip(examples, assigned, strict=True) if f != fold)]
        held = [i for i, f in enumerate(assigned) if f == fold]
        model = LocalModel.fit([e.prompt for e in train], [e.answer for e in train], encoder=encoder)
        predictions = model.predict_many([examples[i].prompt for i in held])
        correct = 0
        for index, prediction in zip(held, predictions, strict=True):
            answered = prediction.answer if prediction.confidence >= threshold else None
            outcome = Outcome(examples[index].prompt, examples[index].answer, answered, prediction.confidence)
            outcomes[index] = outcome
            correct += outcome.correct
        accuracies.append(correct / len(held))
        sizes.append(len(held))
    report = build_report(f"{folds}-fold", [o for o in outcomes if o is not None])
    return CrossValidation(source, folds, tuple(sizes), tuple(accuracies), bool(starter), report)
