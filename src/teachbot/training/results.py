"""The results folder ``teachbot test`` writes: the report, its chart, a confusion table and the wrong
answers as a CSV that ``teachbot train`` reads back once the expected answers are checked.

``wrong.csv`` has the columns ``prompt``, ``answer`` (the expected answer: what training will teach),
``given`` (what the bot said; ignored on import) and ``confidence`` (ignored on import), so the
dataset reader takes its prompt and answer columns as they are.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from teachbot.paths import atomic_write_bytes, safe_filename
from teachbot.training.charts import render_chart
from teachbot.training.evaluation import FALLBACK_LABEL, EvaluationReport, Outcome

__all__ = ["REPORT", "RESULT_FILES", "WRONG", "Results", "new_results_folder", "write_results"]

REPORT, CHART, CONFUSIONS, WRONG = "report.json", "chart.png", "confusions.csv", "wrong.csv"
RESULT_FILES = (REPORT, CHART, CONFUSIONS, WRONG)


@dataclass(frozen=True, slots=True)
class Results:
    """Where the files went, and how many answers were wrong."""

    folder: Path
    wrong: int

    def describe(self, command: str = "teachbot") -> str:
        """Lines telling where the results are and how to teach the wrong answers."""
        lines = [f"Results in {self.folder}/: {', '.join(RESULT_FILES)}."]
        if self.wrong:
            lines.append(
                f"{WRONG} lists the {self.wrong} wrong answer(s): check its `answer` column (the expected answer), "
                f"then `{command} train {self.folder / WRONG} --name fixes` teaches them."
            )
        return "\n".join(lines)


def new_results_folder(data_dir: Path, label: str, *, now: datetime | None = None) -> Path:
    """A fresh ``results/<label>-<UTC time>/`` folder in the data folder (``-2``, ``-3``… if taken)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    base = data_dir / "results" / safe_filename(f"{label}-{stamp}")
    base.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        folder = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(base)


def write_results(
    folder: Path,
    report: EvaluationReport,
    *,
    threshold: float,
    source: str,
    extra: dict[str, Any] | None = None,
) -> Results:
    """Write the four result files into ``folder`` (created if needed); each file appears whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "source": source,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "confidence_threshold": threshold,
        **(extra or {}),
        **report.to_json(),
    }
    wrong = wrong_outcomes(report.outcomes)
    atomic_write_bytes(folder / REPORT, json.dumps(document, ensure_ascii=False, indent=2).encode() + b"\n")
    atomic_write_bytes(folder / CHART, render_chart(report, threshold=threshold))
    atomic_write_bytes(folder / CONFUSIONS, _csv(["expected", "answered", "count"], confusion_table(report.outcomes)))
    atomic_write_bytes(
        folder / WRONG,
        _csv(
            ["prompt", "answer", "given", "confidence"],
            [(o.prompt, o.expected, o.answer or FALLBACK_LABEL, f"{o.confidence:.3f}") for o in wrong],
        ),
    )
    return Results(folder, len(wrong))


def confusion_table(outcomes: Sequence[Outcome]) -> list[tuple[str, str, int]]:
    """Every (expected, answered) pair with its count, mistakes first, then by count; the fallback is
    named ``(fallback)``. The rows where both are the same are the right answers."""
    pairs = Counter((o.expected, o.answer if o.answer is not None else FALLBACK_LABEL) for o in outcomes)
    return sorted(((e, a, n) for (e, a), n in pairs.items()), key=lambda row: (row[0] == row[1], -row[2], row[0]))


def wrong_outcomes(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The wrong answers, the most confident first (those mislead users most)."""
    return sorted((o for o in outcomes if not o.correct), key=lambda o: -o.confidence)


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")
