"""`teachbot status` and `!status`: the processes alive with their shards, the active versions, the queue;
and a run of a live process is never marked interrupted by another process's start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scale.conftest import Pair, process_env, settings_for

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.transports.catalogue import Door, Privilege
from teachbot.transports.handlers import Call, CommandHandlers


async def test_status_lists_live_processes_versions_and_the_queue(database_url: str, tmp_path: Path) -> None:
    bot = await App.start(settings_for(tmp_path / "bot", database_url, shard_count=4, shard_ids=[2, 3]), role="bot")
    try:
        run_id = await bot.runs.queue_local("global", "trainer")
        call = Call(Origin("global", "c1", "trainer"), Door.CONSOLE, Privilege.TRAINER)
        text = (await CommandHandlers(bot).status(call)).text
        assert "Processes alive: 1" in text
        assert f"bot on {os.uname().nodename}" in text and f"pid {os.getpid()}, shards 2,3 of 4" in text
        assert "global: v1" in text
        assert "Training queue: 1 waiting, 0 running" in text
        await bot.runs.request_cancel(run_id)

        env = process_env() | {
            "TEACHBOT_DATA_DIR": str(tmp_path / "cli"),
            "TEACHBOT_DATABASE_URL": database_url,
        }
        shown = subprocess.run(
            [sys.executable, "-m", "teachbot", "status"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert "Processes alive: 1" in shown.stdout and "shards 2,3 of 4" in shown.stdout
        assert "Training queue: 0 waiting, 0 running" in shown.stdout
    finally:
        await bot.close()
    # a clean stop leaves the table
    again = await App.start(settings_for(tmp_path / "later", database_url))
    try:
        call = Call(Origin("global", "c1", "trainer"), Door.CONSOLE, Privilege.TRAINER)
        assert "Processes alive: 1\n  #" in (await CommandHandlers(again).status(call)).text
    finally:
        await again.close()


async def test_a_run_of_a_live_process_is_not_marked_interrupted_by_another_start(pair: Pair, tmp_path: Path) -> None:
    running = await pair.first.runs.start_local("global", "trainer")  # A is training (alive, heartbeating)
    third = await App.start(settings_for(tmp_path / "c", pair.first.settings.effective_database_url))
    try:
        assert (await third.runs.find("global", running)).state == "running"  # type: ignore[union-attr]
    finally:
        await third.close()
    await pair.first.close()  # A stops without finishing the run: the next process to look marks it
    await pair.second.runs.mark_interrupted()
    assert (await pair.second.runs.find("global", running)).state == "interrupted"  # type: ignore[union-attr]
