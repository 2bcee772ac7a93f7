"""Fixtures: the fake OpenAI-compatible server on loopback and settings pointing at it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.openai_server import TEST_API_KEY, FakeOpenAIServer

from teachbot.config import Settings, load_settings


@pytest.fixture
def llm_settings(openai_server: FakeOpenAIServer, tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        backend="openai",
        llm_base_url=openai_server.base_url,
        llm_api_key=TEST_API_KEY,
        llm_model="fake-model",
        llm_timeout_seconds=5.0,
        llm_max_retries=2,
    )
