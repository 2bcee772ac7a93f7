"""Two processes on one database: two ``App`` objects, each with its own data folder (its own cache)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes.env import child_env

from teachbot.app import App
from teachbot.config import Settings, load_settings

FAST_POLL = 0.1  # seconds between change-feed reads on SQLite in these tests


def settings_for(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    return load_settings(
        data_dir=data_dir, database_url=database_url, change_poll_seconds=FAST_POLL, encoder="none", **overrides
    )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, step: float = 0.02) -> float:
    """Seconds until ``check`` holds; fails the test after ``timeout`` seconds."""
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(step)


def process_env() -> dict[str, str]:
    """The environment of a teachbot subprocess: no TEACHBOT_* variable of ours, and these sources first
    (an absolute path: the subprocess runs in a temporary folder)."""
    import teachbot

    env = child_env()
    sources = str(Path(teachbot.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([sources, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return env


@dataclass
class Pair:
    first: App
    second: App


@pytest.fixture
async def pair(database_url: str, tmp_path: Path) -> AsyncIterator[Pair]:
    """Process A (which trains the starter version on the empty database), then process B."""
    first = await App.start(settings_for(tmp_path / "a", database_url))
    try:
        second = await App.start(settings_for(tmp_path / "b", database_url))
        try:
            yield Pair(first, second)
        finally:
            await second.close()
    finally:
        await first.close()
