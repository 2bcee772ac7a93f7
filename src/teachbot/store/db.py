"""Engine, sessions and migrations. All database work runs on one worker thread, off the event loop.

A full disk (or SQLite's size limit) during any of it becomes ``DiskFull``: the transaction is rolled
back and the user is told nothing was saved, instead of being thanked for something that was lost.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from teachbot.errors import disk_full_guard

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
T = TypeVar("T")
MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


_REVISION = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=\n]*)?\s*=\s*(?:['\"]([^'\"]+)['\"]|None)", re.MULTILINE)


def newest_revision() -> str | None:
    """The one migration no other revises, read from the migration files as written (``revision = "0004"``);
    None when any file is not that plain, so alembic decides."""
    revisions: set[str] = set()
    revised: set[str] = set()
    try:
        for path in (MIGRATIONS / "versions").glob("*.py"):
            source = path.read_text(encoding="utf-8")
            revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
            if revision is None or down is None:
                return None
            revisions.add(revision[1])
            if down[1] is not None:
                revised.add(down[1])
    except OSError:
        return None
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 and revised <= revisions else None


def _guarded(fn: Callable[[], T]) -> T:
    with disk_full_guard():
        return fn()


class Database:
    """Owns the engine; ``run`` executes a function with a session on the database thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="teachbot-db")

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision``; an older database upgrades in place. A database already at the
        newest revision is left alone without importing alembic (a third of a second at every start)."""
        if revision == "head" and self._at_newest():
            return
        from alembic import command

        config = alembic_config()
        with disk_full_guard(), self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def _at_newest(self) -> bool:
        newest = newest_revision()
        if newest is None:
            return False
        try:
            with self.engine.connect() as connection:
                found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        except DBAPIError:  # no table yet: a new database
            return False
        return found == [newest]

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    def session(self) -> Session:
        return self.sessions()

    def call(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a session and commit, on the calling thread (for the CLI and tests); a full disk
        rolls back and raises ``DiskFull``."""
        with disk_full_guard(), self.sessions.begin() as session:
            return fn(session)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a committed session on the database thread; returns once it is durable."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.call, fn)

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        """Run a session-less blocking call (a migration) on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _guarded, fn)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
