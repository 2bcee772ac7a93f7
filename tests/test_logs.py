from __future__ import annotations

import logging
from pathlib import Path

from teachbot.logs import LOG_FILE, configure_logging


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
