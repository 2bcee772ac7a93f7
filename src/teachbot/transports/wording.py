"""The words of replies, written once at the edge with the configured prefix.

Services return data (results, infos, outcomes) and domain errors; this module turns them into the
sentences users read, so a changed prefix or wording is one edit here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from teachbot.teaching.service import TeachStatus
from teachbot.training.runs import RunState
from teachbot.training.updates import UPDATE, UPDATE_SHARE, UpdateCheck

if TYPE_CHECKING:  # only types: importing the fine-tuning side here would load the openai SDK at start-up
    from collections.abc import Sequence

    from teachbot.answering.knowledge import Candidate
    from teachbot.datasets.service import DatasetDiff, DatasetInfo
    from teachbot.errors import UserError
    from teachbot.teaching.service import ReviewItem, TeachResult
    from teachbot.training.remote import RemoteOutcome
    from teachbot.training.runs import RunInfo
    from teachbot.training.service import TrainOutcome
    from teachbot.training.versions import VersionInfo

GENERIC_ERROR = "Something went wrong on my side; it has been logged."


def teach_hint(prefix: str, *, terminal: bool) -> str:
    """Added to the fallback answer: how to teach the bot, in the words of each door."""
    if terminal:
        return f"Teach me: `{prefix}correct <the right answer>`."
    return f"Reply to this message with `{prefix}correct <the right answer>` to teach me."


def clip(text: str, limit: int = 120) -> str:
    """One line of at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def user_error(error: UserError, prefix: str) -> str:
    """A ``UserError`` as shown: its text, plus the command that helps when the service named one."""
    if error.see:
        return f"{error} See `{prefix}{error.see}`."
    return str(error)


def _closing(text: str) -> str:
    """A quoted text that ends a sentence: no second full stop after one inside the quotes."""
    shown = clip(text)
    return f"“{shown}”" + ("" if shown.endswith((".", "!", "?", "…")) else ".")


def teach_result(result: TeachResult, prefix: str) -> str:
    if result.status is TeachStatus.APPLIED and result.question:
        return (
            f"Learned ({result.item_id}): asked “{clip(result.question)}”, I will now answer {_closing(result.answer)}"
        )
    if result.status is TeachStatus.PENDING:
        return f"Thanks! Your suggestion {result.item_id} waits for a trainer's review."
    return f"{result.item_id} is {result.status.value}."


def interactive_mode(on: bool) -> str:
    """After the ``interactive`` command: what happens after each answer now."""
    if not on:
        return "Interactive teaching is off."
    return (
        "Interactive teaching is on: after each answer I show the likeliest answers. Enter keeps mine, "
        "a number picks another, anything else is taught as the right answer."
    )


def candidate_label(candidate: Candidate) -> str:
    """A candidate answer with how sure the bot is of it."""
    return f"{clip(candidate.answer, 100)} ({candidate.confidence:.0%}{', taught' if candidate.taught else ''})"


def candidate_button(candidate: Candidate, limit: int = 80) -> str:
    """A candidate answer on a button: how sure first, so clipping a long answer keeps it."""
    sure = f"{candidate.confidence:.0%}{' taught' if candidate.taught else ''} · "
    return sure + clip(candidate.answer, limit - len(sure))


def candidate_menu(choices: Sequence[Candidate], *, given: bool) -> str:
    """The choices after an answer in interactive teaching; ``given``: the first is the answer given."""
    lines = [f"  {n}. {candidate_label(c)}" for n, c in enumerate(choices, 1)]
    if given:
        lines[0] += " ← my answer"
    ways = ["Enter keeps it" if given else "Enter skips"]
    if len(choices) > (1 if given else 0):
        ways.append("a number picks another" if given else "a number picks one")
    ways.append("or type the right answer")
    lines.append("  " + " · ".join(ways))
    return "\n".join(lines)


def taught_with_button(answer: str, who: str) -> str:
    """An unsure answer edited once a trainer picked the right one with a button."""
    return f"{answer[:1900]}\n-# ✔ Taught by {clip(who, 60)}."


def no_such_choice(number: int, count: int, prefix: str) -> str:
    """A number typed at the choices that names none of them."""
    there = f"1 to {count}" if count > 1 else "1" if count else "none"
    return f"There is no answer {number} (choose {there}); to teach “{number}”, type `{prefix}correct {number}`."


def review_item(item: ReviewItem) -> str:
    who = "a test run (the expected answer)" if item.author.startswith("test:") else item.author
    if item.suggestion:
        was = f" (was “{clip(item.current)}”)" if item.current.strip() else " (I had no answer)"
        return f"{item.item_id} by {who}: “{clip(item.question)}” → “{clip(item.suggestion)}”{was}"
    return f"{item.item_id} by {who}: 👎 on “{clip(item.current)}” for “{clip(item.question)}”"


def dataset_info(info: DatasetInfo, *, imported: bool = False, prefix: str = "!") -> str:
    """A dataset's line; after an import it says whether the import made a new version, and warns when
    another dataset holds the same examples (``prefix`` starts the command that helps: ``!``, ``teachbot ``)."""
    use = {"positive": "answers to give", "negative": "answers never to give", None: "not used for training"}
    state = ("new version " if info.new_version else "unchanged, same content as ") if imported else ""
    line = (
        f"Dataset `{info.name}` ({state}v{info.version}): {info.rows} examples, "
        f"hash {info.content_hash[:12]}, {use.get(info.selected, info.selected)}."
    )
    if imported and info.same_as:
        others = ", ".join(f"`{name}`" for name in info.same_as)
        line += (
            f"\nWarning: dataset {others} has the same examples, so training would count each of them twice; "
            f"delete one of them (`{prefix}datasets delete {info.same_as[0]}`)."
        )
    return line


def dataset_diff(diff: DatasetDiff, limit: int = 10) -> str:
    counts = f"+{len(diff.added)} −{len(diff.removed)}, {diff.unchanged} unchanged"
    lines = [f"`{diff.name}` v{diff.old} → v{diff.new}: {counts}."]
    lines += [f"+ {p} → {a}" for p, a in diff.added[:limit]]
    lines += [f"− {p} → {a}" for p, a in diff.removed[:limit]]
    return "\n".join(lines)


def version_info(version: VersionInfo) -> str:
    accuracy = version.metrics.get("accuracy")
    score = f", holdout accuracy {float(accuracy):.1%}" if isinstance(accuracy, int | float) else ""
    update = UpdateCheck.from_json(version.metrics.get(UPDATE))
    if score and update is not None:  # an update carries the last gate's figure
        score += f" ({update.gate_version}'s, +{update.added_since_gate} examples since)"
    mark = " (active)" if version.active else ""
    made = f"{version.created_at} by {version.created_by}"
    return f"{version.name}{mark}: {version.examples} examples, {version.answers} answers{score}, {made}"


def run_info(run: RunInfo) -> str:
    target = f" → {run.version}" if run.version else ""
    detail = run.stage if run.state == RunState.RUNNING else run.message.splitlines()[0] if run.message else ""
    return f"#{run.run_id} {run.kind} {run.state} {run.progress:.0%}{target} by {run.author}: {detail}"


def _learned_from(outcome: TrainOutcome) -> str:
    """What a version learned, the user's data apart from the built-in small talk."""
    data, version = outcome.data, outcome.version
    if data is None:  # a run another process made (a queued run): only the version's totals are known
        return f"{version.examples} examples ({version.answers} answers)"
    if not data.yours:
        return f"the {data.built_in} built-in small-talk examples only"
    yours = f"{data.yours} of your examples ({data.your_answers} answers)"
    return yours + (f" + {data.built_in} built-in small talk" if data.built_in else "")


def train_outcome(outcome: TrainOutcome, prefix: str) -> str:
    """After training: what was learned, what the figures say (and how far to trust them), what answers now."""
    version = outcome.version
    if outcome.reused:
        if outcome.activated:
            state = f"{version.name} is active again."
        elif version.active:
            state = f"{version.name} stays active."
        else:
            state = f"`{prefix}models activate {version.name}` switches to it."
        return (
            f"Nothing new to learn: {version.name} learned exactly this ({_learned_from(outcome)}; the same "
            f"settings and encoder), so no new version was made. {state}"
        )
    lines = [f"Trained {version.name} on {_learned_from(outcome)}."]
    report = outcome.report
    if outcome.update is not None:
        lines.extend(_update_lines(version.name, outcome.update))
    elif report is not None and not outcome.few_held_out:
        lines.append(report.summary(max_lines=3))
    elif report is not None:
        right = round(report.accuracy * report.examples)
        lines.append(
            f"Held-out check: {right} of {report.examples} questions right, too few to judge by "
            f"(each one is {1 / report.examples:.0%})."
        )
    if outcome.crossval is not None:
        cv = outcome.crossval
        lines.append(
            f"Cross-validation: each of your {cv.report.examples} examples answered by a model that had not "
            f"learned it ({cv.folds} folds): accuracy {cv.mean:.0%} ± {cv.spread:.0%}."
        )
    elif report is None and outcome.update is None and outcome.data is not None and outcome.data.yours:
        lines.append(
            f"Too few of your examples ({outcome.data.yours}) to measure accuracy: ask it, or "
            f"`{prefix}test` it with a test file."
        )
    lines.append(
        f"{version.name} is now active."
        if outcome.activated
        else f"Kept {outcome.previous} active; `{prefix}models activate {version.name}` switches."
    )
    return "\n".join(lines)


def _update_lines(name: str, check: UpdateCheck) -> list[str]:
    """What an update (a run that only added a few examples to the active version) checked, and what it carries."""
    lines = [
        f"{check.added} new examples since {check.base}: it learned them beside what {check.base} knew, without a "
        "gate model.",
        f"Held-out check, on {check.questions} questions both versions learned: {name} answers {check.right} right, "
        f"{check.base} {check.base_right}.",
    ]
    if check.gate_accuracy is not None and check.gate_version is not None:
        lines.append(
            f"Accuracy on them before they were learned: {check.gate_accuracy:.1%} ({check.gate_version}'s gate; "
            f"a run measures it again once updates add up to {UPDATE_SHARE:.0%} of the examples)."
        )
    return lines


def remote_outcome(outcome: RemoteOutcome, prefix: str) -> str:
    lines = [outcome.plan_summary]
    if outcome.version:
        lines.append(
            f"Fine-tuning succeeded: version {outcome.version}. `{prefix}models activate {outcome.version}` uses it."
        )
    else:
        lines.append(f"Fine-tuning job ended {outcome.status}" + (f": {outcome.error}" if outcome.error else "."))
    return "\n".join(lines)


def activated(name: str, remote_model: str | None) -> str:
    """After ``models activate`` or ``rollback``: which version answers now."""
    return f"{name} ({remote_model}) now answers here." if remote_model is not None else f"{name} is now active."
