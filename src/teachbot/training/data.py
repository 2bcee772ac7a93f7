"""What a run learns from and is scored on: the bundled starter set and the held-out split.

The split is chosen by a hash of the prompt, so every version is scored on the same questions and
a fine-tuning job holds out the same ones as local training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from teachbot.datasets.examples import Example
from teachbot.datasets.formats import parse_examples
from teachbot.datasets.service import TrainingSet
from teachbot.errors import UserError

#: With fewer selected examples that may be held out, a local run holds none out (too few to score).
MIN_HOLDOUT_EXAMPLES = 20
#: The weight in a fit of what members taught (corrections, feedback) next to an imported example's 1: a
#: correction is a deliberate statement about one question. CLINC150 train halves, 200 wrong questions taught
#: per half: weight 1 → 24.7 % of the other wrong questions of the same intents answered right after the
#: next run, 2 → 27.2 %, 3 → 28.4 %; the rest lost 0.23 / 0.27 / 0.33 points.
TAUGHT_WEIGHT = 2.0


def starter_examples() -> list[Example]:
    """The bundled knowledge about teachbot itself."""
    data = resources.files("teachbot.resources").joinpath("starter.yaml").read_bytes()
    return parse_examples(data, source="starter.yaml", fmt="yaml")


def is_held_out(prompt: str, fraction: float) -> bool:
    """Deterministic split by prompt, so every version is evaluated on the same questions."""
    if fraction <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(prompt.strip().lower().encode()).digest()[:4], "big") / 2**32
    return bucket < fraction


@dataclass(frozen=True, slots=True)
class Split:
    """The examples a local run trains on (with their example ids) and the ones it is scored on."""

    train: list[Example]
    train_ids: list[int | None]  # None: a starter example
    held: list[Example]
    held_ids: list[int | None]  # the stored example id of each held-out example
    train_weights: list[float]  # each training example's weight in a fit (``TAUGHT_WEIGHT``); held-out ones 1

    def weights(self) -> list[float]:
        """The weight of each example of ``train`` then ``held``, as the version that serves learns them."""
        return [*self.train_weights, *[1.0] * len(self.held)]


def split_training_set(training: TrainingSet, starter: list[Example], fraction: float) -> Split:
    """``starter`` plus the selected examples, less the held-out ones; refuses an empty training set."""
    train: list[Example] = list(starter)
    ids: list[int | None] = [None] * len(starter)
    weights = [1.0] * len(starter)
    held: list[Example] = []
    held_ids: list[int | None] = []
    candidates = sum(training.holdout_candidates)
    fraction = fraction if candidates >= MIN_HOLDOUT_EXAMPLES else 0.0
    for example, example_id, may_hold in zip(
        training.positives, training.example_ids, training.holdout_candidates, strict=True
    ):
        if may_hold and is_held_out(example.prompt, fraction):
            held.append(example)
            held_ids.append(example_id)
        else:
            train.append(example)
            ids.append(example_id)
            weights.append(1.0 if may_hold else TAUGHT_WEIGHT)  # only imported examples may be held out
    if not train:
        raise UserError("There is nothing to train on: import a dataset or teach me something first.")
    return Split(train, ids, held, held_ids, weights)
