"""Shared fixtures: isolated settings in a temporary data folder, and a started app."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fakes.openai_server import FakeOpenAIServer

from teachbot.config import Settings, load_settings

if TYPE_CHECKING:
    from teachbot.app import App


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TEACHBOT_* variable, .env or teachbot.toml from the developer's machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("TEACHBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
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
