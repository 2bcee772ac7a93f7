"""A PNG chart of an evaluation report: the most confused answers and the confidence histogram."""

from __future__ import annotations

import io

from teachbot.training.evaluation import HISTOGRAM_BINS, EvaluationReport


def _label(text: str, limit: int = 28) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_chart(report: EvaluationReport) -> bytes:
    """Two panels side by side, rendered off-screen (Agg) so it works on a server with no display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    confused, confidence = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    pairs = report.confusions[:8]
    if pairs:
        labels = [f"{_label(e)} → {_label(a)}" for e, a, _ in pairs][::-1]
        confused.barh(labels, [n for *_, n in pairs][::-1], color="#d9534f")
        confused.tick_params(axis="y", labelsize=7)
    else:
        confused.text(0.5, 0.5, "no confusions", ha="center", va="center")
        confused.set_yticks([])
    confused.set_title(f"Most confused answers ({report.model_version})")
    confused.set_xlabel("questions")
    edges = [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS)]
    confidence.bar(edges, report.histogram, width=1 / HISTOGRAM_BINS, align="edge", color="#5b8def", edgecolor="white")
    confidence.set_title(f"Confidence — accuracy {report.accuracy:.1%}")
    confidence.set_xlabel("confidence")
    confidence.set_ylabel("questions")
    confidence.set_xlim(0, 1)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
