"""A PNG chart of an evaluation report: the most confused answers and the confidence histogram.

Meant to be read at a glance: whole-number axes for counts, labels wrapped (and shortened only past two
lines) at a readable size, the confidence threshold drawn where answers turn into the fallback, and a
plain sentence instead of an empty panel when nothing was confused.
"""

from __future__ import annotations

import io
import textwrap
from typing import TYPE_CHECKING

from teachbot.training.evaluation import HISTOGRAM_BINS, EvaluationReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["build_figure", "label", "render_chart"]

MAX_PAIRS = 8  # confused pairs shown; the full table is in confusions.csv
LABEL_WIDTH = 40  # characters per label line
LABEL_LINES = 2  # lines per answer before it is shortened with "…"
LABEL_SIZE = 9  # points
BAR_COLOUR = "#d9534f"
HISTOGRAM_COLOUR = "#5b8def"
THRESHOLD_COLOUR = "#333333"


def label(text: str, width: int = LABEL_WIDTH, lines: int = LABEL_LINES) -> str:
    """``text`` wrapped to ``width`` characters a line, at most ``lines`` lines, the last ending in "…"
    when something was left out."""
    wrapped = textwrap.wrap(" ".join(text.split()), width=width, break_long_words=True) or [""]
    if len(wrapped) <= lines:
        return "\n".join(wrapped)
    kept = wrapped[:lines]
    kept[-1] = kept[-1][: width - 1].rstrip() + "…"
    return "\n".join(kept)


def build_figure(report: EvaluationReport, *, threshold: float | None = None) -> Figure:
    """The chart as a matplotlib figure (off-screen, Agg), so tests can look at its parts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(12, 6.5), dpi=100)
    FigureCanvasAgg(figure)
    confused, confidence = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    pairs = report.confusions[:MAX_PAIRS]
    confused.set_title(f"Most confused answers ({report.model_version})")
    if pairs:
        names = [f"{label(expected)}\n→ {label(answered, lines=1)}" for expected, answered, _ in pairs][::-1]
        confused.barh(range(len(pairs)), [n for *_, n in pairs][::-1], height=0.6, color=BAR_COLOUR)
        confused.set_yticks(range(len(pairs)), names, fontsize=LABEL_SIZE)
        confused.set_xlabel("questions (expected answer → answer given)")
        confused.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        confused.set_axis_off()
        confused.text(
            0.5, 0.5, "No confusions:\nevery answer given was the expected one.",
            ha="center", va="center", fontsize=13, transform=confused.transAxes,
        )  # fmt: skip
    edges = [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS)]
    confidence.bar(
        edges, report.histogram, width=1 / HISTOGRAM_BINS, align="edge", color=HISTOGRAM_COLOUR, edgecolor="white"
    )
    confidence.set_ylim(0, max(report.histogram, default=0) * 1.3 + 1)  # headroom for the threshold's note
    if threshold is not None:
        confidence.axvline(threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.5)
        confidence.annotate(
            f"threshold {threshold:.2f}\n(below: fallback)", xy=(threshold, 1.0), xycoords=("data", "axes fraction"),
            xytext=(4, -4), textcoords="offset points", ha="left", va="top", fontsize=LABEL_SIZE,
        )  # fmt: skip
    confidence.set_title(f"Confidence ({report.examples} questions, accuracy {report.accuracy:.1%})")
    confidence.set_xlabel("confidence")
    confidence.set_ylabel("questions")
    confidence.set_xlim(0, 1)
    confidence.yaxis.set_major_locator(MaxNLocator(integer=True))
    confidence.tick_params(labelsize=LABEL_SIZE)
    figure.tight_layout()
    return figure


def render_chart(report: EvaluationReport, *, threshold: float | None = None) -> bytes:
    """The chart as PNG bytes; ``threshold`` (the ``confidence_threshold`` setting) is drawn when given."""
    buffer = io.BytesIO()
    build_figure(report, threshold=threshold).savefig(buffer, format="png")
    return buffer.getvalue()
