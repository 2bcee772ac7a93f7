"""Export formats, rendered to bytes, and an atomic file write so no reader ever sees half a file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from teachbot.datasets.examples import Example
from teachbot.errors import UserError
from teachbot.paths import atomic_write_bytes

__all__ = ["EXPORT_FORMATS", "render", "write_atomic"]


def render(examples: Sequence[Example], fmt: str) -> bytes:
    """``examples`` in export format ``fmt``, UTF-8 encoded."""
    renderer = _RENDERERS.get(fmt.lower().strip())
    if renderer is None:
        raise UserError(f"Unknown export format `{fmt}`; use one of: {', '.join(EXPORT_FORMATS)}.")
    if not examples:
        raise UserError("There are no examples to export.")
    return renderer(examples).encode("utf-8")


def write_atomic(path: Path, data: bytes) -> None:
    """Write an export so readers never see half of it."""
    atomic_write_bytes(path, data)


def _chat(examples: Sequence[Example]) -> str:
    """OpenAI chat fine-tuning JSONL; an assistant weight is written only when it is 0."""
    lines = []
    for e in examples:
        assistant: dict[str, Any] = {"role": "assistant", "content": e.answer}
        if e.weight == 0:
            assistant["weight"] = 0
        lines.append(_json({"messages": [*_prompt_messages(e), assistant]}))
    return "".join(lines)


def _preference(examples: Sequence[Example]) -> str:
    """OpenAI preference (DPO) JSONL, from the examples that carry a rejected answer."""
    lines = [
        _json(
            {
                "input": {"messages": _prompt_messages(e)},
                "preferred_output": [{"role": "assistant", "content": e.answer}],
                "non_preferred_output": [{"role": "assistant", "content": e.rejected}],
            }
        )
        for e in examples
        if e.rejected
    ]
    if not lines:
        raise UserError("None of these examples has a rejected answer, so there is nothing to export as preferences.")
    return "".join(lines)


def _table(delimiter: str) -> Callable[[Sequence[Example]], str]:
    def render_table(examples: Sequence[Example]) -> str:
        """prompt,answer — plus system and rejected columns when any example has them."""
        extra = [name for name in ("system", "rejected") if any(getattr(e, name) for e in examples)]
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
        writer.writerow(["prompt", "answer", *extra])
        for e in examples:
            writer.writerow([e.prompt, e.answer, *(getattr(e, name) or "" for name in extra)])
        return buffer.getvalue()

    return render_table


def _corpus(examples: Sequence[Example]) -> str:
    """A ChatterBot corpus: one two-statement conversation per example."""
    import yaml  # only for this export: PyYAML is not imported at every start

    document = {"categories": ["teachbot"], "conversations": [[e.prompt, e.answer] for e in examples]}
    return str(yaml.safe_dump(document, allow_unicode=True, sort_keys=False, default_flow_style=False, width=1000))


def _prompt_messages(e: Example) -> list[dict[str, str]]:
    system = [{"role": "system", "content": e.system}] if e.system else []
    return [*system, {"role": "user", "content": e.prompt}]


def _json(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


_RENDERERS: dict[str, Callable[[Sequence[Example]], str]] = {
    "openai-chat": _chat,
    "preference": _preference,
    "csv": _table(","),
    "tsv": _table("\t"),
    "yaml": _corpus,
}
EXPORT_FORMATS = tuple(_RENDERERS)
