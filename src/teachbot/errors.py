"""One exception tree: ``UserError`` text is shown as is; anything else is logged and hidden."""

from __future__ import annotations


class TeachbotError(Exception):
    """Base of every error teachbot raises on purpose."""


class UserError(TeachbotError):
    """A problem the user can fix; its message is safe to show verbatim.

    ``see`` names a command (without the prefix) that helps; the edge adds it with the configured prefix,
    so services never write a prefix themselves.
    """

    def __init__(self, message: str, *, see: str | None = None) -> None:
        super().__init__(message)
        self.see = see


class ConfigError(TeachbotError):
    """A setting is missing or wrong; the message names the setting."""


class DataFormatError(UserError):
    """A dataset file is malformed; the message names the file and line."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None) -> None:
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.line = line


class MissingExtra(UserError):
    """A feature needs an optional package or system tool that is not installed."""

    def __init__(self, feature: str, hint: str) -> None:
        super().__init__(f"{feature} is not available: {hint}")
        self.feature = feature
        self.hint = hint
