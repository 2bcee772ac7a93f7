"""`teachbot doctor` against loopback stand-ins for Discord and an OpenAI-compatible server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fakes.discord_server import serve_fake_discord
from fakes.openai_server import TEST_API_KEY, FakeOpenAIServer
from typer.testing import CliRunner

from teachbot.cli import app
from teachbot.config import load_settings
from teachbot.doctor import Check, Status, check_data_folder, check_database, check_llm, run_checks

runner = CliRunner()
MESSAGE_CONTENT_LIMITED = 1 << 19


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_plain_local_setup_has_no_problems(tmp_path: Path) -> None:
    checks = by_name(await run_checks(load_settings(data_dir=tmp_path / "data")))
    assert list(checks) == ["Python", "settings", "data folder", "database", "encoder", "voice"]
    assert all(check.status is not Status.PROBLEM for check in checks.values()), [c.line() for c in checks.values()]
    assert "created at first start" in checks["data folder"].detail
    assert "created at first start" in checks["database"].detail
    assert not (tmp_path / "data").exists()  # doctor changes nothing
    assert "384 dimensions" in checks["encoder"].detail


def test_doctor_command_exit_codes(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["doctor"], env={"TEACHBOT_DATA_DIR": str(tmp_path / "data")})
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[0].startswith("ok       Python: 3.")
    assert ok.stdout.rstrip().endswith("Everything teachbot needs is in place.")
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    bad = runner.invoke(app, ["doctor"], env={"TEACHBOT_DATA_DIR": str(tmp_path / "file" / "data")})
    assert bad.exit_code == 1
    line = next(line for line in bad.stdout.splitlines() if line.startswith("problem  data folder"))
    assert "is a file, not a folder → set data_dir to a folder" in line
    assert "1 problem(s) to fix." in bad.stdout


def test_data_folder_space_and_existing_folder(tmp_path: Path) -> None:
    check = check_data_folder(tmp_path)
    assert check.status is Status.OK and "writable" in check.detail and "free" in check.detail


async def test_unreachable_database_says_so_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://teachbot:hunter2secret@127.0.0.1:{free_port()}/teachbot"
    check = await check_database(load_settings(data_dir=tmp_path, database_url=url))
    assert check.status is Status.PROBLEM and "cannot connect" in check.detail
    assert "hunter2secret" not in check.line() and "database_url" in check.fix


async def test_existing_sqlite_database_is_up_to_date(settings: object) -> None:
    check = await check_database(settings)  # type: ignore[arg-type]
    assert check.status is Status.OK and "schema up to date" in check.detail


@pytest.mark.parametrize(
    ("flags", "status", "words"),
    [(MESSAGE_CONTENT_LIMITED, Status.OK, "on"), (1 << 18, Status.OK, "on"), (0, Status.PROBLEM, "Privileged Gateway")],
)
async def test_discord_token_and_message_content_intent(tmp_path: Path, flags: int, status: Status, words: str) -> None:
    async with serve_fake_discord(token="fake-bot-token-secret") as fake:
        fake.application_flags = flags
        settings = load_settings(
            data_dir=tmp_path / "data", discord_token="fake-bot-token-secret", discord_api_base=fake.api_base
        )
        checks = by_name(await run_checks(settings))
        fake.assert_clean()
    assert checks["Discord token"].status is Status.OK and "teachbot" in checks["Discord token"].detail
    intent = checks["Message Content intent"]
    assert intent.status is status and words in intent.line()
    assert all("fake-bot-token-secret" not in check.line() for check in checks.values())


async def test_a_refused_discord_token(tmp_path: Path) -> None:
    async with serve_fake_discord(token="the-real-token") as fake:
        settings = load_settings(
            data_dir=tmp_path / "data", discord_token="a-wrong-token", discord_api_base=fake.api_base
        )
        checks = by_name(await run_checks(settings))
    token = checks["Discord token"]
    assert token.status is Status.PROBLEM and "401" in token.detail and "Reset Token" in token.fix
    assert "Message Content intent" not in checks
    assert all("a-wrong-token" not in check.line() for check in checks.values())


async def test_unreachable_discord(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}/api/v10"
    settings = load_settings(data_dir=tmp_path / "data", discord_token="tok-123", discord_api_base=base)
    check = by_name(await run_checks(settings))["Discord"]
    assert check.status is Status.PROBLEM and "cannot reach" in check.detail and "discord_api_base" in check.fix


async def test_llm_server_model_and_key(openai_server: FakeOpenAIServer) -> None:
    base = openai_server.base_url
    ok = await check_llm(base, TEST_API_KEY, "fake-model")
    assert ok.status is Status.OK and "offers fake-model" in ok.detail
    missing = await check_llm(base, TEST_API_KEY, "gpt-9")
    assert missing.status is Status.PROBLEM and "does not offer `gpt-9`" in missing.detail
    assert "fake-model" in missing.detail and "llm_model" in missing.fix
    refused = await check_llm(base, "sk-wrong-key-123456", "fake-model")
    assert refused.status is Status.PROBLEM and "refused the key (401)" in refused.detail
    for check in (ok, missing, refused):
        assert TEST_API_KEY not in check.line() and "sk-wrong-key" not in check.line()
    first = openai_server.requests_to("/v1/models")[0]
    assert first.headers.get("Authorization") == f"Bearer {TEST_API_KEY}"


async def test_llm_server_down_and_llm_checked_only_when_configured(tmp_path: Path) -> None:
    down = await check_llm(f"http://127.0.0.1:{free_port()}/v1", "", "m")
    assert down.status is Status.PROBLEM and "cannot reach" in down.detail and "llm_base_url" in down.fix
    local = by_name(await run_checks(load_settings(data_dir=tmp_path / "data")))
    assert "LLM server" not in local and "Discord token" not in local


def test_doctor_command_with_an_llm_backend(openai_server: FakeOpenAIServer, tmp_path: Path) -> None:
    env = {
        "TEACHBOT_DATA_DIR": str(tmp_path / "data"), "TEACHBOT_BACKEND": "openai",
        "TEACHBOT_LLM_BASE_URL": openai_server.base_url, "TEACHBOT_LLM_API_KEY": TEST_API_KEY,
        "TEACHBOT_LLM_MODEL": "not-there",
    }  # fmt: skip
    result = runner.invoke(app, ["doctor"], env=env)
    assert result.exit_code == 1
    assert any(line.startswith("problem  LLM server:") for line in result.stdout.splitlines())
    assert TEST_API_KEY not in result.output
