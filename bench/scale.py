"""Messages per second handled by 1, 2 and 4 shard processes, and how fast a correction reaches another process.

A scratch PostgreSQL (the shared store) and the fake Discord (from ``tests/fakes``) run in this process; each
shard is a ``teachbot run`` process serving one shard (``shard_count`` = the number of processes), with its
own data folder, as a deployment runs them. Guilds are spread evenly over the shards. Throughput: a burst of
chat messages over every guild, timed from the first message sent to the last reply received. Propagation:
a correction committed through another process (this one, on the same database), then the question asked in
a guild of a shard process until the taught answer comes back; p50 and p99 over the samples.

    .venv/bin/python bench/scale.py [--messages 2000] [--processes 1,2,4] [--samples 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from discord_throughput import Clock, latencies_ms, percentile, send_batch, watch_replies  # noqa: E402
from fakes.discord_models import ChannelType  # noqa: E402
from fakes.discord_server import FakeDiscord, serve_fake_discord  # noqa: E402

from teachbot.answering.chat import Origin  # noqa: E402
from teachbot.app import App  # noqa: E402
from teachbot.config import load_settings  # noqa: E402
from teachbot.store.scratch_postgres import ScratchPostgres  # noqa: E402

MAX_SHARDS = 4


def add_guilds(fake: FakeDiscord, per_shard: int, channels_per_guild: int, users: int) -> list[int]:
    """Guilds whose ids fall evenly on shards mod 4 (hence mod 2 and mod 1); returns the chat channel ids."""
    for n in range(users):
        fake.add_user(f"user{n}")
    people = [u for u in fake.users.values() if not u.bot and u.id != fake.owner.id]
    channels: list[int] = []
    for shard in range(MAX_SHARDS):
        for g in range(per_shard):
            guild = fake.add_guild(f"guild {shard}.{g}", shard=(shard, MAX_SHARDS))
            for user in people:
                if user.id not in guild.members:
                    fake.add_member(user, guild=guild)
            channels += [fake.add_channel(f"chat{c}", ChannelType.TEXT, guild).id for c in range(channels_per_guild)]
    fake.guilds.pop(fake.guild.id)  # the seeded guild is on an arbitrary shard: leave it out
    return channels


async def start_shards(fake: FakeDiscord, tmp: Path, url: str, channels: list[int], count: int) -> list[Any]:
    processes = []
    for shard in range(count):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEACHBOT_")}
        env.update(
            TEACHBOT_DATA_DIR=str(tmp / f"n{count}-shard{shard}"),
            TEACHBOT_DATABASE_URL=url,
            TEACHBOT_DISCORD_TOKEN=fake.token,
            TEACHBOT_DISCORD_API_BASE=fake.api_base,
            TEACHBOT_DISCORD_GATEWAY_URL=fake.gateway_url,
            TEACHBOT_CHAT_CHANNELS=str(channels),
            TEACHBOT_CHAT_COOLDOWN_SECONDS="0",
            TEACHBOT_SHARD_COUNT=str(count),
            TEACHBOT_SHARD_IDS=f"[{shard}]",
            TEACHBOT_LOG_LEVEL="WARNING",
        )
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "teachbot",
                "run",
                env=env,
                cwd=tmp,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=open(tmp / f"n{count}-shard{shard}.log", "wb"),  # noqa: SIM115
            )
        )
    while sum(s.identify is not None for s in fake.sessions) < count:
        if any(p.returncode is not None for p in processes):
            raise SystemExit(f"a shard process stopped before connecting (see {tmp})")
        await asyncio.sleep(0.1)
    await asyncio.sleep(3.0)  # past discord.py's wait for more guilds before READY
    return processes


async def stop(processes: list[Any]) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        await asyncio.wait_for(process.wait(), timeout=60)


async def propagation(fake: FakeDiscord, teacher: App, channel: int, samples: int) -> list[float]:
    """Seconds from a correction's commit (through ``teacher``) to a shard process answering with it."""
    delays = []
    where = Origin("global", "bench", "bench")
    for i in range(samples):
        question = f"which colour is the bench sample {i} zq{i * 7919 % 10007}"
        taught = f"colour-{i}"
        said = await teacher.chat.ask(question, where)
        target = await teacher.chat.find_answer("global", answer_id=said.answer_id)
        await teacher.teaching.correct(where, target, taught, trusted=True)
        start = time.perf_counter()
        while True:
            sent = await fake.send_message(channel, fake.member, question)
            reply = await fake.wait_for_bot_message(channel, timeout=10)
            while (reply.get("message_reference") or {}).get("message_id") != sent["id"]:  # a burst's reply
                reply = await fake.wait_for_bot_message(channel, timeout=10)
            if taught in reply["content"]:
                break
            if time.perf_counter() - start > 10:
                raise SystemExit(f"sample {i}: not answered within 10 s")
        delays.append(time.perf_counter() - start)
    return delays


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--samples", type=int, default=50, help="corrections timed for the propagation delay")
    parser.add_argument("--guilds-per-shard", type=int, default=2)
    parser.add_argument("--channels", type=int, default=5, help="chat channels per guild")
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]

    rows = []
    with tempfile.TemporaryDirectory(prefix="teachbot-scale-") as folder, ScratchPostgres() as postgres:
        tmp = Path(folder)
        url = postgres.create_database("bench")
        # this process trains the starter version once; every shard loads it from the database
        teacher = await App.start(load_settings(data_dir=tmp / "teacher", database_url=url, change_poll_seconds=0.1))
        try:
            async with serve_fake_discord(echo_own_messages=True) as fake:
                channels = add_guilds(fake, args.guilds_per_shard, args.channels, args.users)
                clock = Clock()
                watch_replies(fake, clock)
                delays: list[float] = []
                for count in counts:
                    processes = await start_shards(fake, tmp, url, channels, count)
                    try:
                        await send_batch(fake, clock, channels, 200, None, seed=0)  # warm up
                        seconds = await send_batch(fake, clock, channels, args.messages, None, seed=1)
                        rows.append((count, args.messages / seconds, latencies_ms(clock)))
                        if count == 2 or (count == counts[-1] and not delays):
                            await asyncio.sleep(3.0)  # let the burst's tail drain
                            delays = await propagation(fake, teacher, channels[-1], args.samples)
                    finally:
                        await stop(processes)
                    await asyncio.sleep(1.0)
        finally:
            await teacher.close()

    base = rows[0][1]
    guilds = MAX_SHARDS * args.guilds_per_shard
    print(
        f"teachbot run shard processes against the fake Discord and one PostgreSQL: {guilds} guilds, "
        f"{guilds * args.channels} chat channels, {args.messages} messages per run, {os.cpu_count()} CPU(s)"
    )
    print()
    print("| processes | handled/s | ratio to 1 | p50 ms | p99 ms |")
    print("|---:|---:|---:|---:|---:|")
    for count, rate, latencies in rows:
        print(
            f"| {count} | {rate:,.0f} | {rate / base:.2f} | {statistics.median(latencies):.0f} | "
            f"{percentile(latencies, 0.99):.0f} |"
        )
    if delays:
        ms = sorted(d * 1000 for d in delays)
        print()
        print(
            f"Correction propagation to a running shard process ({len(ms)} samples, PostgreSQL LISTEN/NOTIFY): "
            f"p50 {statistics.median(ms):.0f} ms, p99 {percentile(ms, 0.99):.0f} ms, max {ms[-1]:.0f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
