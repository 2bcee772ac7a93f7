"""How fast the bot answers aloud in a voice channel, and what listening costs in CPU.

The real bot (TeachBot on a real App, whisper tiny.en, espeak) listens through discord.py and the receive
extension to the fake Discord and the fake voice server from ``tests/fakes``, all in this process.
Members' speech is espeak-ng, Opus-encoded before timing starts and sent in transport-encrypted RTP
packets at the real pace (20 ms).

1. Turn latency, one member alone with the bot (every utterance is answered): from the end of speech
   (the packet of the last voiced frame leaving the fake server) to the first packet of the spoken
   answer arriving there, with where the time goes (the session's own timings). A first turn loads
   the models and is not counted. Target: p50 ≤ 1.2 s, p95 ≤ 2 s.
2. CPU per listened second: three members talk at once (not addressing the bot, so every utterance
   is cut and transcribed, none answered); this process's CPU time from the first packet until every
   utterance is transcribed, divided by the seconds of speech received (the three speakers summed).
   The fake server's part in that (sealing packets) is small; Opus encoding is done beforehand.

    .venv/bin/python bench/voice_turn.py [--turns 12] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import aiohttp
from _common import percentile, table
from fakes.discord_server import FakeDiscord, running_bot, serve_fake_discord
from fakes.speech_samples import espeak_pcm48, tiny_en_model
from fakes.voice_server import FakeVoiceServer, Utterance

QUESTIONS = [
    "Thank you.",
    "What is your name?",
    "Goodbye.",
    "How are you doing today?",
    "Thanks a lot.",
    "Who are you?",
    "See you later.",
    "Are you a bot?",
]
CHATTER = [  # three people talking among themselves
    ["I think the train leaves at nine.", "We should bring some water.", "Let us meet at the station."],
    ["The weather looks fine for the weekend.", "My sister is coming too.", "Do not forget the tickets."],
    ["I finished the report this morning.", "It took longer than I thought.", "Now I need a coffee."],
]
TARGET_P50, TARGET_P95 = 1.2, 2.0


async def start_listening(fake: FakeDiscord, server: FakeVoiceServer, data_dir: Path, names: list[str]) -> Any:
    """The bot listening in the fake's voice channel with the members ``names`` in it."""
    from teachbot.app import App
    from teachbot.config import load_settings
    from teachbot.transports.discord.bot import TeachBot

    users = [fake.add_user(name) for name in names]
    for user in users:
        fake.add_member(user)
    settings = load_settings(
        data_dir=data_dir,
        discord_token=fake.token,
        discord_api_base=fake.api_base,
        discord_gateway_url=fake.gateway_url,
        chat_cooldown_seconds=0,
        heavy_cooldown_seconds=0,
        stt_engine="whisper",
        whisper_model=str(tiny_en_model()),
        voice_wake_words=["computer"],
    )
    app = await App.start(settings)
    bot = TeachBot(app)
    bot.http.connector = aiohttp.TCPConnector(limit=0, ssl=server.client_ssl)
    return app, bot, users


async def join(fake: FakeDiscord, server: FakeVoiceServer, users: list[Any]) -> None:
    for user in users:
        await fake.join_voice(user, fake.voice)
    await fake.send_message(fake.voice, users[0], "!listen")
    said = await fake.wait_for_bot_message(fake.voice, timeout=30)
    if not said["content"].startswith("🎧"):
        raise SystemExit(f"the bot did not start listening: {said['content']}")
    await server.wait_connected()
    for user in users:
        await server.add_member(user.id)


async def measure_turns(turns: int, data_dir: Path) -> tuple[list[float], list[float], dict[str, list[float]], int]:
    async with serve_fake_discord() as fake:
        server = FakeVoiceServer(fake)
        await server.start()
        app, bot, users = await start_listening(fake, server, data_dir, ["alice"])
        try:
            async with running_bot(fake, bot, timeout=60):
                await join(fake, server, users)
                session = bot.voice.sessions[fake.guild.id]
                spoken = {q: server.encode(espeak_pcm48(q)) for q in QUESTIONS}
                latencies: list[float] = []
                cpu_seconds: list[float] = []
                missed = 0
                stages: dict[str, list[float]] = {"cut": [], "transcribe": [], "answer": [], "voice queued": []}
                for turn in range(turns + 1):  # the first turn loads the models
                    mark = len(server.bot_packets)
                    timings = len(session.timings)
                    end = await server.send(users[0].id, spoken[QUESTIONS[turn % len(QUESTIONS)]])
                    try:
                        await server.wait_bot_quiet(mark, timeout=30)
                    except AssertionError:
                        missed += 1  # heard as nothing (the log says what): not answered
                        continue
                    for _ in range(2):  # the answer's two posts (transcript, answer)
                        await fake.wait_for_bot_message(fake.voice, timeout=30)
                    if turn == 0 or len(session.timings) <= timings:
                        continue
                    latencies.append(server.bot_packets[mark].at - end)
                    cpu_seconds.append(server.bot_packets[mark].cpu - server.end_cpu)
                    t = session.timings[-1]
                    stages["cut"].append(t.utterance_end - end)
                    stages["transcribe"].append(t.transcribed - t.utterance_end)
                    stages["answer"].append(t.answered - t.transcribed)
                    stages["voice queued"].append(t.spoken - t.answered)
                await fake.send_message(fake.voice, users[0], "!stop")
                await fake.wait_for_bot_message(fake.voice, timeout=30)
        finally:
            await app.close()
            await server.close()
        server.assert_clean()
        return latencies, cpu_seconds, stages, missed


async def measure_cpu(rounds: int, data_dir: Path) -> tuple[float, float, float, int]:
    """(CPU seconds, listened seconds, wall seconds, utterances transcribed) with three speakers."""
    async with serve_fake_discord() as fake:
        server = FakeVoiceServer(fake)
        await server.start()
        app, bot, users = await start_listening(fake, server, data_dir, ["ann", "ben", "cat"])
        try:
            async with running_bot(fake, bot, timeout=60):
                await join(fake, server, users)
                session = bot.voice.sessions[fake.guild.id]
                await server.send(users[0].id, server.encode(espeak_pcm48("Computer, thank you.")))  # load models
                await server.wait_bot_quiet(0, timeout=60)
                await session.wait_idle()
                for _ in range(2):  # its transcript and answer
                    await fake.wait_for_bot_message(fake.voice, timeout=30)
                streams = [
                    [server.encode(espeak_pcm48(line)) for line in lines for _ in range(rounds)] for lines in CHATTER
                ]
                transcribed: list[int] = []

                async def talk(user: Any, utterances: list[Utterance]) -> None:
                    for utterance in utterances:
                        await server.send(user.id, utterance)
                        await asyncio.sleep(0.8)  # a pause long enough to end the utterance

                listened = sum(u.seconds for stream in streams for u in stream)
                heard_before = COUNTER.count
                cpu, wall = time.process_time(), time.perf_counter()
                await asyncio.gather(*(talk(u, s) for u, s in zip(users, streams, strict=True)))
                await asyncio.sleep(1.0)  # the last utterances are cut
                await session.wait_idle()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                transcribed.append(COUNTER.count - heard_before)
                await fake.send_message(fake.voice, users[0], "!stop")
                await fake.wait_for_bot_message(fake.voice, timeout=30)
        finally:
            await app.close()
            await server.close()
        server.assert_clean()
        return cpu, listened, wall, transcribed[0]


class TranscriptionCounter(logging.Handler):
    """Counts the speech service's transcriptions by its log line (one per utterance heard)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        logger = logging.getLogger("teachbot.speech.service")
        logger.setLevel(logging.INFO)
        logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("transcribed "):
            self.count += 1


COUNTER = TranscriptionCounter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=12, help="answered turns to time (after one warm-up turn)")
    parser.add_argument("--rounds", type=int, default=1, help="times each of the three speakers says their lines")
    args = parser.parse_args()
    if tiny_en_model() is None:
        print("faster-whisper or its tiny.en model is missing: nothing to measure.")
        return
    load = os.getloadavg()[0]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("teachbot.transports.voice_session").setLevel(logging.DEBUG)  # what was not answered
    with tempfile.TemporaryDirectory(prefix="voice-turn-") as folder:
        data_dir = Path(folder) / "data"
        latencies, cpu_seconds, stages, missed = asyncio.run(measure_turns(args.turns, data_dir))
        cpu, listened, wall, heard = asyncio.run(measure_cpu(args.rounds, data_dir))
    print(f"cores: {os.cpu_count()}; load average before: {load:.2f} (a shared machine slows this down)")
    rows = [
        [
            "end of speech → first answer packet",
            len(latencies),
            f"{percentile(latencies, 50):.2f}",
            f"{percentile(latencies, 95):.2f}",
            f"{max(latencies):.2f}" if latencies else "-",
            f"≤ {TARGET_P50} / ≤ {TARGET_P95}",
        ]
    ]
    for name, values in stages.items():
        rows.append(
            [f"  {name}", len(values), f"{percentile(values, 50):.2f}", f"{percentile(values, 95):.2f}", "", ""]
        )
    p50, p95 = percentile(cpu_seconds, 50), percentile(cpu_seconds, 95)
    rows.append(["CPU seconds of the turn (all threads)", len(cpu_seconds), f"{p50:.2f}", f"{p95:.2f}", "", ""])
    table("Voice turn latency (s), whisper tiny.en, one member", ["step", "turns", "p50", "p95", "max", "target"], rows)
    table(
        "Listening with three speakers at once",
        ["speech received (s)", "wall (s)", "utterances", "CPU (s)", "CPU s per listened s", "CPU s per wall s"],
        [[f"{listened:.1f}", f"{wall:.1f}", heard, f"{cpu:.1f}", f"{cpu / listened:.3f}", f"{cpu / wall:.2f}"]],
    )
    if latencies:
        print(f"\nmean turn latency {statistics.fmean(latencies):.2f} s; turns not answered: {missed}")


if __name__ == "__main__":
    main()
