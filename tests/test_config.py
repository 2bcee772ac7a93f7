from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakes.env import child_env

from teachbot.config import Backend, load_settings
from teachbot.errors import ConfigError


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.backend is Backend.LOCAL
    assert settings.discord_token is None
    assert settings.effective_database_url.startswith("sqlite:///")


def test_environment_overrides_toml_and_toml_overrides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "teachbot.toml").write_text('command_prefix = "?"\nconfidence_threshold = 0.5\n')
    monkeypatch.setenv("TEACHBOT_CONFIDENCE_THRESHOLD", "0.7")
    settings = load_settings()
    assert settings.command_prefix == "?"
    assert settings.confidence_threshold == 0.7


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TEACHBOT_LOG_LEVEL=debug\n")
    assert load_settings().log_level == "DEBUG"


def test_config_path_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('scope = "lab"\n')
    monkeypatch.setenv("TEACHBOT_CONFIG", str(other))
    assert load_settings().scope == "lab"
    monkeypatch.setenv("TEACHBOT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="no such file"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("TEACHBOT_CONFIDENCE_THRESHOLD", "high", "confidence_threshold"),
        ("TEACHBOT_CONFIDENCE_THRESHOLD", "1.5", "less than or equal to 1"),
        ("TEACHBOT_BACKEND", "gpt5", "backend"),
        ("TEACHBOT_LOG_LEVEL", "loud", "log_level"),
        ("TEACHBOT_SCOPE", "../etc", "scope"),
    ],
)
def test_bad_setting_names_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=words):
        load_settings()


def test_a_refused_value_reads_as_our_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEACHBOT_ENCODER", str(tmp_path / "no-model"))
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value) == (
        f"setting 'encoder' (TEACHBOT_ENCODER): '{tmp_path / 'no-model'}' is not minilm, none or a folder "
        "holding model.onnx and tokenizer.json"
    )


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "teachbot.toml").write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError, match="no_such_setting"):
        load_settings()


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "teachbot", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:

    env = child_env()
    env["TEACHBOT_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


def test_cli_config_masks_secrets(tmp_path: Path) -> None:
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GAbCdE.abcdefghijklmnopqrstuvwxyz0123456789"
    result = _cli(
        "config",
        env=_env(tmp_path, TEACHBOT_DISCORD_TOKEN=token, TEACHBOT_LLM_API_KEY="sk-secretsecretsecret"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert token not in result.stdout and "sk-secretsecretsecret" not in result.stdout
    assert 'discord_token = "********"' in result.stdout


def test_cli_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _cli("config", env=_env(tmp_path, TEACHBOT_CHAT_COOLDOWN_SECONDS="-3"), cwd=tmp_path)
    assert result.returncode == 2
    assert "chat_cooldown_seconds" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_secret_values_lists_every_configured_secret() -> None:
    settings = load_settings(discord_token="tok-123456", llm_api_key="sk-abcdefgh", speech_api_key="spk-987654")
    assert sorted(settings.secret_values()) == ["sk-abcdefgh", "spk-987654", "tok-123456"]
    view = settings.public_view()
    assert view["speech_api_key"] == "********" and "spk-987654" not in str(view)
