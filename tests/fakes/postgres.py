"""A real PostgreSQL for tests: a scratch server started once per session, and a new database per test.

Registered for every test folder in ``tests/conftest.py`` (``pytest_plugins``). Without PostgreSQL installed
the PostgreSQL cases skip and say why; with ``POSTGRES_TESTS=required`` in the environment (CI sets it)
they fail instead, so CI never passes without running them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from teachbot.store.scratch_postgres import ScratchPostgres

REQUIRED = os.environ.get("POSTGRES_TESTS", "") == "required"
BACKENDS = ["sqlite", "postgresql"]
_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ScratchPostgres]:
    """A private PostgreSQL cluster for the whole session, stopped and deleted at the end."""
    reason = ScratchPostgres.unavailable_reason()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"POSTGRES_TESTS=required but {reason}")
        pytest.skip(reason)
    server = ScratchPostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: ScratchPostgres) -> Iterator[str]:
    """The SQLAlchemy URL of a new empty database, dropped after the test."""
    name = f"test_{os.getpid()}_{next(_names)}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))
