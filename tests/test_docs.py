"""The README's tables must stay true to the code."""

from __future__ import annotations

from pathlib import Path

from teachbot.config import Settings
from teachbot.transports.catalogue import COMMANDS, usage_line

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"| `{name}` |" not in text]
    assert not missing, f"add to README (scripts/doc-tables.py prints the table): {missing}"


def test_every_command_is_documented_as_the_catalogue_says() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [
        spec.name for spec in COMMANDS if f"| `{usage_line('!', spec).replace('|', chr(92) + '|')}` |" not in text
    ]
    assert not missing, f"README's command table is stale (scripts/doc-tables.py prints it): {missing}"


def test_every_setting_has_a_description() -> None:
    assert all(field.description for field in Settings.model_fields.values())
