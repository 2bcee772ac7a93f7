"""Sustained paced load on the real Discord bot: are all messages answered, and how fast, at each rate?

Reuses ``discord_throughput.py``'s harness: the fake Discord in this process plays many users; ``teachbot
run`` runs as a separate process against it. For each rate, messages are offered evenly for ``--seconds``;
latency is from the MESSAGE_CREATE sent to the bot to its reply request arriving at the fake.

    .venv/bin/python bench/load.py [--rates 100 200 400] [--seconds 30] [--questions varied]

``--questions`` as in ``discord_throughput.py``: ``repeated`` everyday questions, or ``varied`` (CLINC150's,
each one new, so each is encoded). ``bot CPU ms/msg`` is the bot process's CPU time over the messages of a
rate; the load average is noted beside each rate, since other jobs on the machine stretch latency.

Target (issue "Reliability"): all replied, p99 ≤ 100 ms at 400 messages/s on 2 cores with the fake
Discord on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from discord_throughput import (
    Clock,
    connected_bot,
    cpu_seconds,
    latencies_ms,
    load_average,
    percentile,
    questions,
    send_batch,
    watch_replies,
)
from fakes.discord_models import ChannelType
from fakes.discord_server import serve_fake_discord


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 200.0, 400.0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--questions", choices=("repeated", "varied"), default="repeated")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    texts = questions(args.questions)
    os.environ.setdefault("BENCH_TIMEOUT", str(int(args.seconds * 4 + 60)))

    rows = []
    with tempfile.TemporaryDirectory(prefix="teachbot-load-") as tmp:
        async with serve_fake_discord(echo_own_messages=True) as fake:
            for n in range(args.users):
                fake.add_member(fake.add_user(f"user{n}"))
            channels = [fake.add_channel(f"chat{n}", ChannelType.TEXT).id for n in range(args.channels)]
            clock = Clock()
            watch_replies(fake, clock)
            async with connected_bot(fake, Path(tmp) / "data", channels, args.log_level) as bot:
                await send_batch(fake, clock, channels, 200, 200.0, seed=0, texts=texts)  # warm up
                for seed, rate in enumerate(args.rates, start=1):
                    await asyncio.sleep(3.0)  # let the previous run drain
                    count = int(rate * args.seconds)
                    errors_before = sum(r.status >= 400 for r in fake.requests.items)
                    cpu_before = cpu_seconds(bot.pid)
                    await send_batch(fake, clock, channels, count, rate, seed=seed, texts=texts)
                    lat = latencies_ms(clock)
                    load = load_average()
                    await asyncio.sleep(1.0)  # the bot stores the last exchanges after replying
                    cpu = cpu_seconds(bot.pid) - cpu_before
                    errors = sum(r.status >= 400 for r in fake.requests.items) - errors_before
                    rows.append((rate, count, len(lat), lat, errors, cpu / count * 1000, load))

    print(
        f"teachbot run under paced load: {args.users} users, {args.channels} channels, {args.questions} questions, "
        f"{args.seconds:.0f} s per rate, log level {args.log_level}, {os.cpu_count()} CPU(s), fake Discord in the "
        "same machine"
    )
    print()
    print("| offered/s | sent | replied | p50 ms | p95 ms | p99 ms | max ms | failed | bot CPU ms/msg | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for rate, count, replied, lat, errors, cpu_ms, load in rows:
        print(
            f"| {rate:.0f} | {count} | {replied} | {percentile(lat, 0.50):.1f} | {percentile(lat, 0.95):.1f} | "
            f"{percentile(lat, 0.99):.1f} | {lat[-1]:.1f} | {errors} | {cpu_ms:.2f} | {load} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
