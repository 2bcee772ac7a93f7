"""Shared fixtures: isolated settings in a temporary data folder, and a started app."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fakes.openai_server import FakeOpenAIServer

from teachbot.config import Settings, load_settings

if TYPE_CHECKING:
    from teachbot.app import App

pytest_plugins = ["fakes.postgres"]  # postgres_server, postgres_url, database_url (a real scratch PostgreSQL)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TEACHBOT_* variable, .env or teachbot.toml from the developer's machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("TEACHBOT_"):
            monkeypatch.delenv(name)
    # a 90 MB prepared copy of the encoder in each test's data folder would write gigabytes: the tests of the
    # copy ask for it (tests/answering/test_encoder.py, tests/test_app_start.py)
    monkeypatch.setenv("TEACHBOT_ENCODER_PREPARED_COPY", "false")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def trained_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder where the starter model is trained, built once per test session."""
    from teachbot.app import App

    folder = tmp_path_factory.mktemp("teachbot-template") / "data"

    async def build() -> None:
        app = await App.start(load_settings(data_dir=folder, encoder_prepared_copy=False))  # copied per test
        await app.close()

    asyncio.run(build())
    return folder


@pytest.fixture
def settings(tmp_path: Path, trained_data_dir: Path) -> Settings:
    """Settings on a data folder of the test's own, seeded with the trained starter model (no retraining)."""
    shutil.copytree(trained_data_dir, tmp_path / "data")
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    from teachbot.app import App

    application = await App.start(settings)
    try:
        yield application
    finally:
        await application.close()


@pytest.fixture
async def openai_server() -> AsyncIterator[FakeOpenAIServer]:
    """The loopback OpenAI-compatible server (tests/fakes/openai_server.py)."""
    server = FakeOpenAIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()
