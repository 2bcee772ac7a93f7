"""Archives and file downloads, confined to the data folder's ``exports/`` and ``archives/``."""

from __future__ import annotations

import logging
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from teachbot.errors import FileTooLarge, UserError, show_name
from teachbot.paths import check_regular_file, read_regular_file, resolve_inside

log = logging.getLogger(__name__)

ARCHIVE_PARTS = {
    "datasets": ("datasets", "exports"),
    "exports": ("exports",),
    "logs": ("logs",),
    "all": ("datasets", "exports", "logs", "models"),
}
SENDABLE = ("exports", "archives")


class FileService:
    """Writes zip archives of parts of the data folder and finds files that may be sent."""

    def __init__(self, data_dir: Path, *, max_send_bytes: int) -> None:
        self.data_dir = data_dir
        self.max_send_bytes = max_send_bytes

    def archive(self, what: str, *, author: str) -> Path:
        """Zip ``what`` into ``archives/``; written under a temporary name, then renamed."""
        parts = ARCHIVE_PARTS.get(what.strip().lower() or "all")
        if parts is None:
            raise UserError(f"Archive one of: {', '.join(ARCHIVE_PARTS)}.")
        archives = self.data_dir / "archives"
        archives.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        final = archives / f"teachbot-{what or 'all'}-{stamp}.zip"
        partial = final.with_name(f".{final.name}.partial")
        count = 0
        try:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for part in parts:
                    folder = self.data_dir / part
                    if not folder.is_dir():
                        continue
                    for path in sorted(folder.rglob("*")):
                        if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                            archive.write(path, path.relative_to(self.data_dir).as_posix())
                            count += 1
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        log.info("archive %s files=%s author=%s", final.name, count, author)
        return final

    def file_to_send(self, name: str) -> Path:
        """A regular file from ``exports/`` or ``archives/`` within ``max_send_bytes``; anything else is
        refused with a sentence naming it (checked without opening it, so a pipe cannot block)."""
        path = self._sendable_path(name)
        try:
            check_regular_file(path, max_bytes=self.max_send_bytes, shown=f"`{show_name(name)}`")
        except FileTooLarge as exc:
            raise UserError(
                f"`{show_name(path.name)}` is {exc.size or 0:,} bytes; I send at most {self.max_send_bytes:,}."
            ) from None
        return path

    def read_to_send(self, name: str) -> tuple[str, bytes]:
        """``file_to_send``'s file name and bytes, read with the same refusals (for transports that attach it)."""
        path = self._sendable_path(name)
        try:
            data = read_regular_file(path, max_bytes=self.max_send_bytes, shown=f"`{show_name(name)}`")
        except FileTooLarge:
            raise UserError(
                f"`{show_name(path.name)}` is larger than {self.max_send_bytes:,} bytes, the most I send."
            ) from None
        return path.name, data

    def _sendable_path(self, name: str) -> Path:
        """Origin ``name`` points inside ``exports/`` or ``archives/`` (given with or without the folder)."""
        path = resolve_inside(self.data_dir, name)
        if not any(path.is_relative_to((self.data_dir / folder).resolve()) for folder in SENDABLE):
            candidates = [resolve_inside(self.data_dir / folder, name) for folder in SENDABLE]
            path = next((c for c in candidates if _exists(c)), candidates[0])
        if not _exists(path):
            raise UserError(f"There is no file `{show_name(name)}` in exports/ or archives/.")
        return path


def _exists(path: Path) -> bool:
    """Whether something (even a broken or looping link) is at ``path``; errors are reported later."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True
