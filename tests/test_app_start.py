"""A start that fails leaves nothing running behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachbot.answering.encoding import lazy_encoder
from teachbot.app import App
from teachbot.config import load_settings


async def test_a_database_that_cannot_open_waits_for_the_encoder_still_loading(tmp_path: Path) -> None:
    """A process that exits while onnxruntime is starting its session in another thread aborts ("terminate
    called without an active exception") instead of reporting the error: the failed start waits for the load."""
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("in the way", encoding="utf-8")
    settings = load_settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{not_a_folder}/t.db")
    encoder = lazy_encoder(settings.encoder)
    assert encoder is not None
    with pytest.raises(OSError):
        await App.start(settings, encoder=encoder)
    assert encoder.is_loaded
