"""Starting: a start that fails leaves nothing running behind it; the encoder keeps its prepared copy."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.env import child_env
from sqlalchemy import select

import teachbot
from teachbot.answering.encoding import lazy_encoder
from teachbot.app import App
from teachbot.config import Settings, load_settings
from teachbot.store.artefacts import folder_sha256, stamp
from teachbot.store.tables import ModelVersion
from teachbot.training.versions import ARTEFACTS_DIR


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


async def test_the_app_keeps_the_encoders_prepared_copy_in_its_cache_unless_told_not_to(tmp_path: Path) -> None:
    kept = load_settings(data_dir=tmp_path / "kept", encoder_prepared_copy=True)
    app = await App.start(kept)
    try:
        answer = await asyncio.to_thread(app.knowledge.answer, "hello there")
        assert answer.text
        assert app.knowledge.encoder is not None and app.knowledge.encoder.dim == 384  # loaded, from the copy
    finally:
        await app.close()
    assert [p.name.startswith("encoder-") for p in kept.cache_dir.glob("*.onnx")] == [True]
    off = load_settings(data_dir=tmp_path / "off", encoder_prepared_copy=False)
    app = await App.start(off)
    await app.close()
    assert not list(off.cache_dir.glob("*.onnx"))


async def test_answering_with_a_trained_model_never_imports_scipy(tmp_path: Path) -> None:
    """scipy.sparse takes 0.15-0.3 s to import: a chat's start loads a model and answers without it."""
    settings = load_settings(data_dir=tmp_path / "data")
    app = await App.start(settings)  # a new folder: the starter version is trained and saved
    await app.close()
    code = (
        "import asyncio, sys\n"
        "from teachbot.app import App\n"
        "from teachbot.config import load_settings\n"
        "async def main():\n"
        f"    app = await App.start(load_settings(data_dir={str(settings.data_dir)!r}))\n"
        "    try:\n"
        "        before = app.knowledge.answer('hello there').text\n"
        "        app.knowledge.teach('global', 1, 'what is the meetup password', 'It is tulip.')\n"
        "        app.knowledge.teach('global', 2, 'hello there', 'Hi!', negative=True)\n"
        "        print(bool(before), app.knowledge.answer('What is the meetup password?').text)\n"
        "    finally:\n"
        "        await app.close()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in ('scipy', 'sklearn') if m in sys.modules))\n"
    )
    env = {**child_env(), "PYTHONPATH": str(Path(teachbot.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.splitlines() == ["True It is tulip.", "[]"]


async def test_a_version_whose_cached_files_rotted_unseen_is_rebuilt_from_the_database(settings: Settings) -> None:
    """The artefact cache trusts a folder whose stamp matches; bytes that changed in place (size and times
    kept, simulated here by stamping the damaged folder) fail the load, and the folder is checked and rebuilt."""
    app = await App.start(settings)
    try:
        before = (await asyncio.to_thread(app.knowledge.answer, "hello there")).text
        sha = await app.db.run(lambda s: s.scalar(select(ModelVersion.artefact).where(ModelVersion.active.is_(True))))
    finally:
        await app.close()
    assert sha
    folder = settings.data_dir / "models" / ARTEFACTS_DIR / sha
    with (folder / "model.json").open("r+b") as handle:
        handle.write(b"#")  # the same size: the stamp cannot see it
    stamp(folder)

    app = await App.start(settings)
    try:
        assert app.knowledge.model_version("global") == "v1"
        assert (await asyncio.to_thread(app.knowledge.answer, "hello there")).text == before
    finally:
        await app.close()
    assert folder_sha256(folder) == sha
