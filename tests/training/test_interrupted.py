"""A training run killed half way leaves the active model and the data intact."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes.env import child_env

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.config import load_settings


def big_dataset(path: Path, answers: int = 400, per_answer: int = 40) -> Path:
    lines = ["question,answer"]
    for a in range(answers):
        lines += [
            f'"how do I reach topic {a} with variant {v} of words w{a * 7 + v}","answer number {a}"'
            for v in range(per_answer)
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_stage(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=1) as connection:
            row = connection.execute("SELECT stage FROM training_runs ORDER BY id DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@pytest.mark.slow
async def test_kill_during_training_keeps_the_active_model(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = child_env() | {"TEACHBOT_DATA_DIR": str(data_dir)}
    # A first start trains the starter version v1.
    subprocess.run([sys.executable, "-m", "teachbot", "chat"], input="", env=env, cwd=tmp_path, check=True, timeout=120)
    process = subprocess.Popen(
        [sys.executable, "-m", "teachbot", "train", str(big_dataset(tmp_path / "big.csv"))],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    stage = None
    while time.monotonic() < deadline and process.poll() is None:
        stage = run_stage(data_dir / "teachbot.sqlite3")
        if stage and stage.startswith("training on"):
            break
        time.sleep(0.05)
    assert stage and stage.startswith("training on"), f"the run never reached training (stage {stage!r})"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    app = await App.start(load_settings(data_dir=data_dir))
    try:
        assert app.knowledge.model_version("global") == "v1"
        runs = await app.runs.recent("global")
        assert runs[0].state == "interrupted"
        datasets = await app.datasets.list_datasets("global")
        assert [(d.name, d.rows) for d in datasets] == [("big", 16000)]
        reply = await app.chat.ask("who are you", Origin("global", "c", "u"))
        assert "teachbot" in reply.answer.text
        assert not [p for p in (data_dir / "models").iterdir() if p.name.startswith(".")]
    finally:
        await app.close()
