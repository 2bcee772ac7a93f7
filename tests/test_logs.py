from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest

from teachbot.logs import LOG_FILE, LogFileHandler, configure_logging


def test_secrets_never_reach_the_log_file(tmp_path: Path) -> None:
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GAbCdE.abcdefghijklmnopqrstuvwxyz0123456789"
    configure_logging("INFO", tmp_path, ["configured-secret-value"], console=False)
    try:
        log = logging.getLogger("teachbot.test")
        log.info("token %s and key %s", token, "sk-abcdefghijklmnopqrstuvwx")
        log.warning("configured-secret-value leaked?")
        try:
            raise RuntimeError(f"failed with {token}")
        except RuntimeError:
            log.exception("boom")
    finally:
        for handler in logging.getLogger().handlers:
            handler.flush()
        configure_logging("INFO", None, console=False)
    text = (tmp_path / "logs" / LOG_FILE).read_text()
    assert "boom" in text and "leaked?" in text
    assert token not in text
    assert "sk-abcdefghijklmnopqrstuvwx" not in text
    assert "configured-secret-value" not in text
    assert text.count("********") >= 4


def test_a_full_disk_gives_one_warning_instead_of_a_traceback_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", tmp_path, console=False)
    try:
        handler = next(h for h in logging.getLogger().handlers if isinstance(h, LogFileHandler))
        assert handler.stream is not None
        handler.stream.close()
        handler.stream = open("/dev/full", "w", encoding="utf-8")  # noqa: SIM115 (every write: ENOSPC)
        log = logging.getLogger("teachbot.test")
        for n in range(40):
            log.warning("line %d", n)
        assert handler.failing
    finally:
        configure_logging("INFO", None, console=False)  # closing the broken file raises nothing either
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "cannot write the log file" in err and "the disk is full" in err
    assert "Logging error" not in err and "Traceback" not in err


def test_the_log_file_writes_again_once_there_is_room(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handler = LogFileHandler(tmp_path / LOG_FILE, encoding="utf-8")
    record = logging.LogRecord("teachbot.test", logging.WARNING, __file__, 1, "hello %s", ("again",), None)
    good = handler.stream
    handler.stream = open("/dev/full", "w", encoding="utf-8")  # noqa: SIM115
    handler.emit(record)
    handler.emit(record)
    assert handler.failing
    full, handler.stream = handler.stream, good  # room again
    with contextlib.suppress(OSError):
        full.close()  # its buffer can never be written
    handler.emit(record)
    assert not handler.failing
    handler.close()
    assert "hello again" in (tmp_path / LOG_FILE).read_text()
    assert capsys.readouterr().err.count("\n") == 1


def test_a_bug_in_a_log_call_is_still_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handler = LogFileHandler(tmp_path / LOG_FILE, encoding="utf-8")
    try:
        handler.emit(logging.LogRecord("t", logging.WARNING, __file__, 1, "%d", ("not a number",), None))
    finally:
        handler.close()
    assert "Logging error" in capsys.readouterr().err
