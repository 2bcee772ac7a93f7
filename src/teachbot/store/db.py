"""Engine, sessions and migrations. All database work runs on one worker thread, off the event loop.

A full disk (or SQLite's size limit) during any of it becomes ``DiskFull``: the transaction is rolled
back and the user is told nothing was saved, instead of being thanked for something that was lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from teachbot.errors import disk_full_guard

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
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


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
        """Bring the schema to ``revision``; an older database upgrades in place."""
        config = alembic_config()
        with disk_full_guard(), self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
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
