"""What a dataset may be called: the file-name rule (``paths.name_problem``), shorter, and without spaces.

Any printable Unicode is accepted (``données``, ``ｏｋ``), normalised to NFC. A dataset name never holds
whitespace, because commands split their arguments on spaces. Its length bound leaves room for the
export file name ``{scope}-{name}-{format}.{extension}``, so an export always accepts what an import
accepted.
"""

from __future__ import annotations

import unicodedata

from teachbot.errors import UserError, show_name
from teachbot.paths import name_problem, safe_filename

__all__ = [
    "DATASET_NAME_MAX_BYTES",
    "DATASET_NAME_MAX_CHARS",
    "check_dataset_name",
    "dataset_name_for",
    "export_filename",
]

DATASET_NAME_MAX_CHARS = 100
# 160 bytes of name + a scope of 20 digits + "-openai-chat.jsonl" + "-" stays under FILE_NAME_MAX_BYTES (240).
DATASET_NAME_MAX_BYTES = 160
_RULE = (
    f"a dataset name is 1-{DATASET_NAME_MAX_CHARS} printable characters without spaces, slashes or control "
    "characters, and does not start with a dot"
)


def dataset_name_problem(name: str) -> str | None:
    """Why ``name`` (already NFC) cannot be a dataset name, or None."""
    problem = name_problem(name, max_chars=DATASET_NAME_MAX_CHARS, max_bytes=DATASET_NAME_MAX_BYTES)
    if problem is None and any(c.isspace() for c in name):
        problem = "it holds a space (commands split on spaces; use - or _)"
    return problem


def check_dataset_name(name: str) -> str:
    """``name`` normalised (NFC, trimmed) if it may name a dataset, else a ``UserError`` saying why."""
    cleaned = unicodedata.normalize("NFC", name.strip())
    problem = dataset_name_problem(cleaned)
    if problem:
        raise UserError(f"`{show_name(name, 60)}` cannot be a dataset name: {problem}; {_RULE}.")
    return cleaned


def dataset_name_for(filename: str) -> str:
    """A dataset name derived from a file name (its stem); always accepted by ``check_dataset_name``."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, _ = base.rpartition(".")
    return clean_dataset_name(stem if dot and stem.strip(". ") else base)


def clean_dataset_name(text: str) -> str:
    """``text`` made into a dataset name: unusable characters become ``-``, leading dots and dashes go,
    and it is clipped to the length bounds; ``dataset`` if nothing is left."""
    text = unicodedata.normalize("NFC", text)
    cleaned = "".join(c if c.isprintable() and not c.isspace() and c not in "/\\" else "-" for c in text)
    cleaned = cleaned.strip("-").lstrip(".-")[:DATASET_NAME_MAX_CHARS]
    while len(cleaned.encode("utf-8")) > DATASET_NAME_MAX_BYTES:
        cleaned = cleaned[:-1]
    cleaned = unicodedata.normalize("NFC", cleaned.rstrip("-"))
    return cleaned if cleaned and dataset_name_problem(cleaned) is None else "dataset"


def export_filename(scope: str, name: str, fmt: str, extension: str) -> str:
    """The file name a dataset export is written under (``{scope}-{name}-{fmt}.{extension}``)."""
    return safe_filename(f"{scope}-{name}-{fmt}.{extension}")
