"""The evaluation chart: a real PNG with something drawn, whole-number counts, readable labels, the threshold."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib import image

from teachbot.training.charts import LABEL_SIZE, LABEL_WIDTH, build_figure, label, render_chart
from teachbot.training.evaluation import EvaluationReport, Outcome, build_report

LONG = "We're open Tuesday to Sunday, noon to 11 pm, and until midnight on Fridays and Saturdays. Closed Mondays."


def confused_report() -> EvaluationReport:
    outcomes = [Outcome(f"when do you open {i}", LONG, LONG, 0.9) for i in range(5)]
    outcomes += [Outcome("dogs?", "Dogs are welcome.", LONG, 0.6), Outcome("dog ok?", "Dogs are welcome.", None, 0.1)]
    outcomes += [Outcome("pay by card?", "We take cards.", "Dogs are welcome.", 0.5)] * 3
    return build_report("v2", outcomes)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(image.imread(io.BytesIO(png), format="png"))


@pytest.mark.parametrize(
    "report", [confused_report(), build_report("v3", [Outcome("q", "a", "a", 0.95)] * 4)], ids=["confused", "perfect"]
)
def test_chart_is_a_plausible_png_that_is_not_blank(report: EvaluationReport) -> None:
    png = render_chart(report, threshold=0.35)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert 10_000 < len(png) < 1_000_000
    picture = pixels(png)
    height, width = picture.shape[:2]
    assert 400 <= height <= 1200 and 800 <= width <= 2000
    rgb = picture[..., :3]
    assert rgb.std() > 0.05  # something is drawn
    not_white = (rgb < 0.95).any(axis=-1).mean()
    assert 0.02 < not_white < 0.9  # neither blank nor a solid block


def test_count_axes_have_whole_number_ticks_only() -> None:
    figure = build_figure(confused_report(), threshold=0.35)
    confused, confidence = figure.axes
    figure.canvas.draw()
    for ticks in (confused.get_xticks(), confidence.get_yticks()):
        shown = [t for t in ticks if t >= 0]
        assert shown and all(float(t).is_integer() for t in shown), ticks


def test_threshold_line_is_drawn_at_the_setting() -> None:
    _, confidence = build_figure(confused_report(), threshold=0.42).axes
    vertical = [line for line in confidence.get_lines() if list(line.get_xdata()) == [0.42, 0.42]]
    assert len(vertical) == 1
    assert any("0.42" in text.get_text() for text in confidence.texts)
    _, without = build_figure(confused_report()).axes
    assert not without.get_lines()


def test_labels_are_readable_and_name_both_answers() -> None:
    confused, _ = build_figure(confused_report(), threshold=0.35).axes
    labels = confused.get_yticklabels()
    assert len(labels) == 3
    for text in labels:
        assert text.get_fontsize() >= LABEL_SIZE >= 8
        assert all(len(line) <= LABEL_WIDTH + 2 for line in text.get_text().split("\n"))
    joined = "\n".join(text.get_text() for text in labels)
    assert "We take cards." in joined and "→ Dogs are welcome." in joined and "→ (fallback)" in joined


def test_no_confusions_is_a_sentence_not_an_empty_axis() -> None:
    confused, _ = build_figure(build_report("v3", [Outcome("q", "a", "a", 0.95)] * 4), threshold=0.35).axes
    assert not confused.axison
    assert any("No confusions" in text.get_text() for text in confused.texts)


def test_label_wraps_and_ellipsises() -> None:
    assert label("short answer") == "short answer"
    wrapped = label(LONG, width=30, lines=2)
    first, second = wrapped.split("\n")
    assert len(first) <= 30 and len(second) <= 30 and second.endswith("…")
    assert label("one two three four", width=9, lines=2) == "one two\nthree…"
    assert label("x" * 100, width=10, lines=1) == "x" * 9 + "…"
