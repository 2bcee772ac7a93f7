"""Real processes on one database: what a `teachbot chat` process teaches reaches a running app, and LLM
token quotas hold across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakes.openai_server import TEST_API_KEY, FakeOpenAIServer
from scale.conftest import eventually, process_env, settings_for

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.errors import UserError

QUESTION = "what is the capital of the planet zorblax"
WHERE = Origin(scope="global", channel="c1", author="u1")


@pytest.mark.slow
async def test_a_correction_from_a_terminal_process_reaches_a_running_app(database_url: str, tmp_path: Path) -> None:
    running = await App.start(settings_for(tmp_path / "running", database_url))
    try:
        assert (await running.chat.ask(QUESTION, WHERE)).answer.text != "Zorbopolis"
        env = process_env() | {
            "TEACHBOT_DATA_DIR": str(tmp_path / "terminal"),
            "TEACHBOT_DATABASE_URL": database_url,
            "TEACHBOT_ENCODER": "none",
        }
        subprocess.run(
            [sys.executable, "-m", "teachbot", "chat"],
            input=f"{QUESTION}\n!correct Zorbopolis\n",
            text=True,
            env=env,
            cwd=tmp_path,
            check=True,
            timeout=300,  # a loaded machine: the process trains nothing, but starts an App on PostgreSQL
            capture_output=True,
        )

        async def taught() -> bool:
            return (await running.chat.ask(QUESTION, WHERE)).answer.text == "Zorbopolis"

        await eventually(taught, timeout=2.0)
        assert not (tmp_path / "terminal" / "models" / "v2").exists()
    finally:
        await running.close()


async def test_token_quotas_hold_across_processes(
    openai_server: FakeOpenAIServer, database_url: str, tmp_path: Path
) -> None:
    def llm() -> dict[str, object]:
        return {
            "backend": "openai",
            "llm_base_url": openai_server.base_url,
            "llm_api_key": TEST_API_KEY,
            "llm_model": "fake-model",
            "llm_timeout_seconds": 5.0,
            "user_token_quota": 30,
        }

    first = await App.start(settings_for(tmp_path / "a", database_url, **llm()))
    second = await App.start(settings_for(tmp_path / "b", database_url, **llm()))
    try:
        await first.chat.ask("a first question that costs tokens", Origin("77", "c1", "u1"))
        with pytest.raises(UserError, match=r"quota"):
            await second.chat.ask("the same user through another process", Origin("78", "c2", "u1"))
        assert (await second.chat.ask("another user", Origin("78", "c2", "u2"))).answer.text
    finally:
        await second.close()
        await first.close()
