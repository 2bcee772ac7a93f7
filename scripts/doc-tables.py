"""Print the README's settings and commands tables from the code (paste them into README.md)."""

from __future__ import annotations

import json

from teachbot.config import Settings
from teachbot.transports.catalogue import COMMANDS, Door, usage_line


def main() -> None:
    print("| setting (env `TEACHBOT_…`) | default | what it does |")
    print("|---|---|---|")
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None else (default.value if hasattr(default, "value") else default)
        shown = json.dumps(shown, ensure_ascii=False, default=str) if not isinstance(shown, str) else shown
        shown = shown.replace("|", "\\|")
        print(f"| `{name}` | `{shown}` | {field.description} |" if shown else f"| `{name}` | — | {field.description} |")
    print()
    print("| command | who | what it does |")
    print("|---|---|---|")
    for spec in COMMANDS:
        where = ""
        if spec.doors != Door.EVERYWHERE:
            where = " (Discord only)" if spec.doors & Door.DISCORD else " (terminal only)"
        usage = usage_line("!", spec).replace("|", "\\|")
        print(f"| `{usage}` | {spec.privilege.name.lower()} | {spec.help}{where} |")


if __name__ == "__main__":
    main()
