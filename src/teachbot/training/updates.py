"""Updates: training runs that only add a few examples to what the active version learned.

A full run fits twice: a gate model without the held-out split, scored there, then the version that serves on
everything (``training/service.py``). After a handful of corrections to a large model that doubles the wait for
little: the gate model of the active version's data plus 1 % more would score its held-out questions within
a question or two of the last gate. So a run that adds at most ``UPDATE_SHARE`` of the active version's examples
since the last gated version, removes none and keeps the same refusals and encoder, extends the active version
(``LocalModel.extended``: only the labels the new rows fall inside the margin of are fitted again, on every row;
a version saved before it kept its rows' weights is fitted from scratch, once, on everything), and is checked
against the active version on the held-out questions: both learned them, so the check says
whether the new examples broke answers the active version gave (it decides activation as the gate would), and
the held-out accuracy on unseen questions is the last gate's, carried with its name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from teachbot.answering.text import learnable

if TYPE_CHECKING:  # types only: the replies' wording imports this module at start-up
    from teachbot.answering.local_model import LocalModel
    from teachbot.datasets.examples import Example
    from teachbot.training.data import Split

__all__ = [
    "UPDATE",
    "UPDATE_FROM",
    "UPDATE_SHARE",
    "UpdateCheck",
    "UpdatePlan",
    "learned_pairs",
    "new_examples",
    "update_budget",
    "update_size",
]

#: Key of a version's stored metrics describing the update that made it (absent: a gated run made it).
UPDATE = "update"
#: The share of the active version's examples that updates may add, all together, before a gated run is due.
UPDATE_SHARE = 0.01
#: Updates start from this many learned examples: below it a fit takes a second or two and the gate costs little.
UPDATE_FROM = 5_000


@dataclass(frozen=True, slots=True)
class UpdateCheck:
    """How an update was checked: on the held-out questions (learned by both versions), what it answers right
    next to the version it adds to, and the last gate's score on those questions before they were learned."""

    base: str  # the active version the update adds to
    added: int  # examples learned beyond the base's
    added_since_gate: int  # examples learned beyond the last gated version's (this update's included)
    questions: int
    right: int
    base_right: int
    gate_version: str | None  # the last version fitted with a gate model, whose held-out figures are carried
    gate_accuracy: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "base": self.base,
            "added": self.added,
            "added_since_gate": self.added_since_gate,
            "questions": self.questions,
            "right": self.right,
            "base_right": self.base_right,
            "gate_version": self.gate_version,
            "gate_accuracy": self.gate_accuracy,
        }

    @classmethod
    def from_json(cls, data: object) -> UpdateCheck | None:
        """The check a version's metrics recorded (None: not an update, or unreadable)."""
        if not isinstance(data, Mapping):
            return None
        try:
            gate_accuracy = data.get("gate_accuracy")
            gate_version = data.get("gate_version")
            return cls(
                base=str(data["base"]),
                added=int(data["added"]),
                added_since_gate=int(data["added_since_gate"]),
                questions=int(data["questions"]),
                right=int(data["right"]),
                base_right=int(data["base_right"]),
                gate_version=None if gate_version is None else str(gate_version),
                gate_accuracy=None if gate_accuracy is None else float(gate_accuracy),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """A run found to be an update: what it adds, what the active version learned, and that version's metrics."""

    added: int  # examples beyond the active version's
    since_gate: int  # examples beyond the last gated version's, these included
    learned: Counter[tuple[str, str]]  # the active version's examples (``learned_pairs``)
    base_metrics: Mapping[str, object]


def update_size(
    model: LocalModel,
    learned: Counter[tuple[str, str]],
    examples: Sequence[Example],
    negatives: Sequence[tuple[str, str]],
) -> int | None:
    """How many of ``examples`` ``model`` (which learned ``learned``) did not learn, when adding those is all
    that changed: None when it learned an example that is gone, or refusals changed (not an update)."""
    if sorted(model.negatives) != sorted((str(p), str(a)) for p, a in negatives):
        return None
    kept = learnable([e.prompt for e in examples], [e.answer for e in examples], negatives)
    now = Counter((examples[i].prompt, examples[i].answer) for i in kept)
    if learned - now:  # something learned is no longer selected
        return None
    return sum((now - learned).values())


def new_examples(learned: Counter[tuple[str, str]], split: Split) -> list[tuple[Example, int | None, float]]:
    """The examples of ``split`` (with their ids and weights, training ones first) beyond ``learned``, the
    active version's: what an update adds."""
    left = Counter(learned)
    out = []
    for example, example_id, weight in zip(
        [*split.train, *split.held], [*split.train_ids, *split.held_ids], split.weights(), strict=True
    ):
        pair = (example.prompt, example.answer)
        if left[pair] > 0:
            left[pair] -= 1
        else:
            out.append((example, example_id, weight))
    return out


def learned_pairs(model: LocalModel) -> Counter[tuple[str, str]]:
    """The (prompt, answer) examples ``model`` learned, with their copies (refused ones are not among them)."""
    rows = model.sources >= 0  # out-of-scope and background rows have no prompt
    return Counter(
        (model.prompts[source], model.answers[label])
        for source, label in zip(model.sources[rows].tolist(), model.labels[rows].tolist(), strict=True)
    )


def update_budget(
    base_metrics: Mapping[str, object], learned: int, added: int, smallest: int = UPDATE_FROM
) -> int | None:
    """The examples the new version would have added since the last gated version, or None when that is over
    the budget (``UPDATE_SHARE`` of ``learned``) or the base learned too few for updates (``smallest``)."""
    before = UpdateCheck.from_json(base_metrics.get(UPDATE))
    since_gate = added + (before.added_since_gate if before is not None else 0)
    if learned < smallest or since_gate > UPDATE_SHARE * learned:
        return None
    return since_gate
