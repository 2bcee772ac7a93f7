"""Sustained paced load on the real Discord bot: are all messages answered, and how fast, at each rate?

Reuses ``discord_throughput.py``'s harness: the fake Discord in this process plays many users; ``teachbot
run`` runs as a separate process against it. For each rate, messages are offered evenly for ``--seconds``;
latency is from the MESSAGE_CREATE sent to the bot to its reply request arriving at the fake.

    .venv/bin/python bench/load.py [--rates 100 200 400] [--seconds 30]

Target (issue "Reliability"): all replied, p99 ≤ 100 ms at 400 messages/s on 2 cores with the fake
Discord on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from discord_throughput import Clock, latencies_ms, percentile, send_batch, start_bot, watch_replies
from fakes.discord_models import ChannelType
from fakes.discord_server import serve_fake_discord


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 200.0, 400.0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    os.environ.setdefault("BENCH_TIMEOUT", str(int(args.seconds * 4 + 60)))

    rows = []
    with tempfile.TemporaryDirectory(prefix="teachbot-load-") as tmp:
        async with serve_fake_discord(echo_own_messages=True) as fake:
            for n in range(args.users):
                fake.add_member(fake.add_user(f"user{n}"))
            channels = [fake.add_channel(f"chat{n}", ChannelType.TEXT).id for n in range(args.channels)]
            clock = Clock()
            watch_replies(fake, clock)
            bot = await start_bot(fake, Path(tmp) / "data", channels, args.log_level, "")
            try:
                while not any(s.identify is not None for s in fake.sessions):
                    if bot.returncode is not None:
                        raise SystemExit("teachbot run stopped before connecting")
                    await asyncio.sleep(0.1)
                await asyncio.sleep(3.0)
                await send_batch(fake, clock, channels, 200, 200.0, seed=0)  # warm up
                for seed, rate in enumerate(args.rates, start=1):
                    await asyncio.sleep(3.0)  # let the previous run drain
                    count = int(rate * args.seconds)
                    errors_before = sum(r.status >= 400 for r in fake.requests.items)
                    await send_batch(fake, clock, channels, count, rate, seed=seed)
                    lat = latencies_ms(clock)
                    errors = sum(r.status >= 400 for r in fake.requests.items) - errors_before
                    rows.append((rate, count, len(lat), lat, errors))
            finally:
                if bot.returncode is None:
                    bot.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(bot.wait(), timeout=60)

    print(f"teachbot run under paced load: {args.users} users, {args.channels} channels, {args.seconds:.0f} s per "
          f"rate, log level {args.log_level}, {os.cpu_count()} CPU(s), fake Discord in the same machine")
    print()
    print("| offered/s | sent | replied | p50 ms | p95 ms | p99 ms | max ms | failed requests |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rate, count, replied, lat, errors in rows:
        print(f"| {rate:.0f} | {count} | {replied} | {percentile(lat, 0.50):.1f} | {percentile(lat, 0.95):.1f} | "
              f"{percentile(lat, 0.99):.1f} | {lat[-1]:.1f} | {errors} |")


if __name__ == "__main__":
    asyncio.run(main())
