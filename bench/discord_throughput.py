"""How many chat messages per second the real Discord bot handles, and how fast it replies.

The fake Discord from ``tests/discord`` runs in this process and plays many users in many chat
channels; ``teachbot run`` (TeachBot on a real App with the local model) runs as a separate process
against it, as it would against Discord. Latency is measured from the MESSAGE_CREATE sent to the bot
to the bot's reply request arriving at the fake (REST ``POST /channels/{id}/messages``).

    .venv/bin/python bench/discord_throughput.py [--messages 2000] [--rate 100] [--questions varied]

``--questions repeated`` (default) asks 15 everyday questions over and over, as a busy chat does; ``varied``
asks CLINC150's questions (../shared/data), nearly every one new, so each is encoded. ``bot CPU ms/msg`` is the
bot process's CPU time (user + system) over the messages of a run: other jobs on the machine distort it far
less than latency. ``--profile`` writes a cProfile of the bot's main thread (py-spy sees every thread).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakes.discord_models import ChannelType
from fakes.discord_server import FakeDiscord, serve_fake_discord

QUESTIONS = [
    "hello",
    "hi there",
    "how are you",
    "what is your name",
    "who made you",
    "what can you do",
    "tell me a joke",
    "good morning",
    "thanks",
    "bye",
    "what is the capital of the planet zorblax",
    "how do I teach you",
    "what time is it",
    "do you like music",
    "what is python",
]


class Clock:
    """Send and reply times by the user's message id."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.replied: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected = 0

    def reply_seen(self, body: dict[str, Any]) -> None:
        reference = (body.get("message_reference") or {}).get("message_id")
        if reference is not None and str(reference) in self.sent:
            self.replied.setdefault(str(reference), time.perf_counter())
            if len(self.replied) >= self.expected:
                self.done.set()


def watch_replies(fake: FakeDiscord, clock: Clock) -> None:
    """Timestamp each reply when its REST request reaches the fake."""
    original = fake.create_bot_message

    async def create_bot_message(channel: Any, body: Any, files: Any, **kwargs: Any) -> dict[str, Any]:
        clock.reply_seen(dict(body))
        return await original(channel, body, files, **kwargs)

    fake.create_bot_message = create_bot_message  # type: ignore[method-assign]


async def start_bot(fake: FakeDiscord, data_dir: Path, channels: list[int], log_level: str, profile: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEACHBOT_")}
    env.update(
        TEACHBOT_DATA_DIR=str(data_dir),
        TEACHBOT_DISCORD_TOKEN=fake.token,
        TEACHBOT_DISCORD_API_BASE=fake.api_base,
        TEACHBOT_DISCORD_GATEWAY_URL=fake.gateway_url,
        TEACHBOT_CHAT_CHANNELS=str(channels),
        TEACHBOT_CHAT_COOLDOWN_SECONDS="0",
        TEACHBOT_LOG_LEVEL=log_level,
    )
    command = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []), "-m", "teachbot", "run"]
    return await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=data_dir.parent,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=open(data_dir.parent / "bot.log", "wb"),
    )


@asynccontextmanager
async def connected_bot(
    fake: FakeDiscord, data_dir: Path, channels: list[int], log_level: str, profile: str = ""
) -> AsyncIterator[Any]:
    """``teachbot run`` as a process, connected to ``fake`` and past READY; stopped with SIGTERM afterwards."""
    bot = await start_bot(fake, data_dir, channels, log_level, profile)
    try:
        while not any(s.identify is not None for s in fake.sessions):
            if bot.returncode is not None:
                raise SystemExit("teachbot run stopped before connecting")
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)  # past discord.py's 2 s wait for more guilds before READY
        yield bot
    finally:
        if bot.returncode is None:
            bot.send_signal(signal.SIGTERM)
            await asyncio.wait_for(bot.wait(), timeout=60)


def questions(kind: str) -> list[str]:
    """The texts users send: ``repeated`` (QUESTIONS) or ``varied`` (every CLINC150 question, shuffled)."""
    if kind == "repeated":
        return QUESTIONS
    from _common import load_clinc

    texts = sorted({text for rows in load_clinc().values() for text, _ in rows})
    random.Random(0).shuffle(texts)
    return texts


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


async def send_batch(
    fake: FakeDiscord,
    clock: Clock,
    channel_ids: list[int],
    count: int,
    rate: float | None,
    seed: int,
    texts: list[str] = QUESTIONS,
) -> float:
    """Send ``count`` messages (at ``rate`` per second, or as fast as possible); returns seconds to all replies.

    With many ``texts`` they are sent in turn from a random start (few repeats), else chosen at random."""
    rng = random.Random(seed)
    users = [u for u in fake.users.values() if not u.bot]
    channels = [fake.channel(c) for c in channel_ids]
    clock.sent.clear()
    clock.replied.clear()
    clock.done.clear()
    clock.expected = count
    offset = rng.randrange(len(texts))
    start = time.perf_counter()
    for index in range(count):
        if rate:
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        channel, user = rng.choice(channels), rng.choice(users)
        text = texts[(offset + index) % len(texts)] if len(texts) > len(QUESTIONS) else rng.choice(texts)
        message = fake._message_base(channel, user, text, 0)
        message["attachments"] = []
        fake.messages[int(message["id"])] = message
        clock.sent[message["id"]] = time.perf_counter()
        await fake.dispatch("MESSAGE_CREATE", message)
        if not rate and index % 50 == 49:
            await asyncio.sleep(0)  # let the fake serve the bot's requests meanwhile
    try:
        await asyncio.wait_for(clock.done.wait(), timeout=float(os.environ.get("BENCH_TIMEOUT", "300")))
    except TimeoutError:
        missing = [k for k in clock.sent if k not in clock.replied]
        failed = [str(r) for r in fake.requests.items if r.status >= 400][:10]
        texts = sorted({fake.messages[int(k)]["content"] for k in missing})
        raise SystemExit(f"{len(missing)} message(s) never answered: {texts}; failed requests: {failed}") from None
    return max(clock.replied.values()) - start


def latencies_ms(clock: Clock) -> list[float]:
    return sorted((clock.replied[k] - clock.sent[k]) * 1000 for k in clock.replied)


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages in the full-speed run")
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second in the paced run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced run")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--questions", choices=("repeated", "varied"), default="repeated")
    parser.add_argument("--log-level", default="INFO", help="the bot's log level (INFO logs one line per answer)")
    parser.add_argument("--profile", default="", help="write a cProfile of the bot process to this file")
    args = parser.parse_args()
    texts = questions(args.questions)

    with tempfile.TemporaryDirectory(prefix="teachbot-bench-") as tmp:
        async with serve_fake_discord(echo_own_messages=True) as fake:
            for n in range(args.users):
                fake.add_member(fake.add_user(f"user{n}"))
            channels = [fake.add_channel(f"chat{n}", ChannelType.TEXT).id for n in range(args.channels)]
            clock = Clock()
            watch_replies(fake, clock)
            async with connected_bot(fake, Path(tmp) / "data", channels, args.log_level, args.profile) as bot:
                await send_batch(fake, clock, channels, 200, None, seed=0, texts=texts)  # warm up

                before = cpu_seconds(bot.pid)
                seconds = await send_batch(fake, clock, channels, args.messages, None, seed=1, texts=texts)
                full = latencies_ms(clock)
                full_load = load_average()
                # The bot still finishes the burst's tail (echoed messages, stored reply ids) after the last
                # reply is seen; let it drain so the paced run measures steady state, not that backlog.
                await asyncio.sleep(5.0)
                full_cpu = cpu_seconds(bot.pid) - before
                paced_count = int(args.rate * args.seconds)
                before = cpu_seconds(bot.pid)
                await send_batch(fake, clock, channels, paced_count, args.rate, seed=2, texts=texts)
                paced = latencies_ms(clock)
                paced_load = load_average()
                await asyncio.sleep(2.0)
                paced_cpu = cpu_seconds(bot.pid) - before

    print(
        f"teachbot run against the fake Discord: {args.users} users, {args.channels} chat channels, "
        f"{args.questions} questions, log level {args.log_level}, {os.cpu_count()} CPU(s)"
    )
    print()
    print("| run | messages | handled/s | p50 ms | p99 ms | max ms | bot CPU ms/msg | load 1/5/15 min |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    print(
        f"| full speed | {args.messages} | {args.messages / seconds:,.0f} | {statistics.median(full):.1f} | "
        f"{percentile(full, 0.99):.1f} | {full[-1]:.1f} | {full_cpu / args.messages * 1000:.2f} | {full_load} |"
    )
    print(
        f"| paced {args.rate:.0f}/s | {paced_count} | {args.rate:,.0f} (offered) | {statistics.median(paced):.1f} | "
        f"{percentile(paced, 0.99):.1f} | {paced[-1]:.1f} | {paced_cpu / paced_count * 1000:.2f} | {paced_load} |"
    )


if __name__ == "__main__":
    asyncio.run(main())
