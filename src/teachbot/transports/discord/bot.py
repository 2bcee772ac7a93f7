"""The Discord bot: a ``commands.Bot`` holding the app, its cogs, and one error handler."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from teachbot.app import App
from teachbot.config import Settings, VoiceReplies
from teachbot.errors import UserError
from teachbot.paths import atomic_write_bytes
from teachbot.transports import wording
from teachbot.transports.catalogue import Privilege
from teachbot.transports.discord.checks import CommandGate, IgnoredCheck, PermissionDeniedCheck
from teachbot.transports.discord.commands import CommandDoor
from teachbot.transports.discord.permissions import Permissions
from teachbot.transports.discord.voice import VoiceManager

if TYPE_CHECKING:
    from teachbot.transports.discord.cogs.chat import ChatCog

log = logging.getLogger(__name__)

COMMANDS_HASH_FILE = "discord-commands.sha256"


class TeachBot(commands.Bot):
    """The bot; services live in ``self.app``, permission rules in ``self.permissions``."""

    def __init__(self, app: App, **options: Any) -> None:
        settings = app.settings
        intents = discord.Intents.default()
        intents.message_content = True
        intents.members = False
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            intents=intents,
            help_command=None,
            owner_ids=set(settings.owner_ids) or None,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=False),
            **options,
        )
        self.app = app
        self.settings: Settings = settings
        self.permissions = Permissions(settings)
        self.chat: ChatCog | None = None  # set in setup_hook; plain messages go to it
        self.voice = VoiceManager(self, app.speech, idle_seconds=settings.voice_idle_seconds)
        self.tree.on_error = self._on_app_command_error  # type: ignore[method-assign]
        self.add_check(CommandGate(settings.heavy_cooldown_seconds))
        self.door = CommandDoor(self)
        _guard_event_parsers(self._connection.parsers)

    async def setup_hook(self) -> None:
        from teachbot.transports.discord.cogs import COGS, ChatCog

        for command in self.door.build():
            self.add_command(command)
        for cog_class in COGS:
            cog = cog_class(self)
            await self.add_cog(cog)
            if isinstance(cog, ChatCog):
                self.chat = cog
        await self._sync_commands_if_changed()

    @property
    def syncs_commands(self) -> bool:
        """Whether this process syncs the slash commands: one process per deployment, the one holding shard 0
        (an unsharded bot holds it), so shards do not each send the same sync."""
        return self.settings.shard_count is None or not self.settings.shard_ids or 0 in self.settings.shard_ids

    async def _sync_commands_if_changed(self) -> None:
        """Sync slash commands only when their definitions changed since the last sync (shard 0 only)."""
        if not self.syncs_commands:
            log.info("application commands are synced by the process holding shard 0")
            return
        payload = json.dumps([c.to_dict(self.tree) for c in self.tree.get_commands()], sort_keys=True, default=str)
        digest = hashlib.sha256(payload.encode()).hexdigest()
        marker = self.settings.data_dir / COMMANDS_HASH_FILE
        if marker.is_file() and marker.read_text().strip() == digest:
            log.info("application commands unchanged; not syncing")
            return
        await self.tree.sync()
        atomic_write_bytes(marker, digest.encode())
        log.info("application commands synced (%s)", len(self.tree.get_commands()))

    async def on_message(self, message: discord.Message, /) -> None:
        """Parse each message once: a command (known or not) is invoked, anything else goes to chat."""
        if message.author.bot:
            return
        ctx = await self.get_context(message)
        if ctx.valid or (ctx.invoked_with and message.content.startswith(self.settings.command_prefix)):
            await self.invoke(ctx)
            return
        if self.chat is not None:
            await self.chat.handle(message)

    async def on_ready(self) -> None:
        log.info(
            "connected as %s (%s) to %s server(s), shards %s",
            self.user,
            getattr(self.user, "id", "?"),
            len(self.guilds),
            self.settings.shard_label,
        )

    # -- voice, used by the chat cog
    async def transcribe(self, attachment: discord.Attachment) -> str:
        """The words in a voice message or audio file; limits are checked before downloading."""
        most_bytes, most_seconds = self.settings.max_upload_bytes, self.settings.max_audio_seconds
        if attachment.size > most_bytes:
            size = f"{attachment.size / 1e6:.1f} MB"
            raise UserError(f"That audio is {size}; I listen to at most {most_bytes / 1e6:.1f} MB.")
        if attachment.duration is not None and attachment.duration > most_seconds:
            length = f"{attachment.duration:.0f} s"
            raise UserError(f"That recording is {length} long; I listen to at most {most_seconds:.0f} s.")
        transcript = await self.app.speech.hear(await attachment.read())
        return transcript.text

    async def speak_reply(self, message: discord.Message, text: str) -> None:
        """Also speak the answer when the asker listens in voice (see the ``voice_replies`` setting)."""
        policy = self.settings.voice_replies
        if policy is VoiceReplies.NEVER or message.guild is None:
            return
        await self.voice.speak(message.author, message.guild, text, always=policy is VoiceReplies.ALWAYS)

    async def privilege(self, user: discord.abc.User) -> Privilege:
        return self.permissions.level(user, is_owner=await self.is_owner(user))

    async def trusted(self, user: discord.abc.User) -> bool:
        return self.permissions.trusted(user, is_owner=await self.is_owner(user))

    # -- errors: a short line for the user, the traceback in the log, and the bot keeps running
    def explain(self, error: BaseException, command: commands.Command[Any, ..., Any] | None) -> str | None:
        """The line to show for ``error``, or None when it is unexpected (the caller logs it)."""
        original = root_cause(error)
        if isinstance(original, UserError):
            return wording.user_error(original, self.settings.command_prefix)
        if isinstance(error, PermissionDeniedCheck):
            return str(error)
        if isinstance(error, commands.CommandOnCooldown):
            return f"Slow down: try again in {error.retry_after:.0f} s."
        if isinstance(error, commands.NoPrivateMessage):
            return "This command works only in a server."
        if isinstance(error, commands.CheckFailure | app_commands.CheckFailure):
            return "You can't use this command here."
        if isinstance(error, commands.UserInputError):
            return f"{error} Usage: `{self._usage(command)}`"
        return None

    def _usage(self, command: commands.Command[Any, ..., Any] | None) -> str:
        from teachbot.transports.catalogue import BY_NAME, usage_line

        if command is None:
            return ""
        prefix = self.settings.command_prefix
        group = BY_NAME.get(command.root_parent.name) if command.root_parent is not None else None
        spec = group.subcommand(command.name) if group is not None else BY_NAME.get(command.name)
        return usage_line(prefix, spec, group) if spec is not None else f"{prefix}{command.qualified_name}"

    async def on_command_error(self, ctx: commands.Context[Any], error: commands.CommandError) -> None:
        if isinstance(error, commands.CommandNotFound | IgnoredCheck):
            return
        text = self.explain(error, ctx.command)
        if text is None:
            log.error("command %s failed", ctx.command, exc_info=root_cause(error))
            text = wording.GENERIC_ERROR
        await self._reply_safely(ctx, text)

    async def _reply_safely(self, ctx: commands.Context[Any], text: str) -> None:
        try:
            await ctx.send(text[:1900], ephemeral=ctx.interaction is not None)
        except discord.HTTPException:
            log.warning("could not send an error reply in channel %s", getattr(ctx.channel, "id", "?"))

    async def _on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Errors of plain application commands (hybrid commands go through ``on_command_error``)."""
        text = self.explain(error, None)
        if text is None:
            name = getattr(interaction.command, "name", "?")
            log.error("application command %s failed", name, exc_info=root_cause(error))
            text = wording.GENERIC_ERROR
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not send an error reply to interaction %s", interaction.id)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("error in event %s", event_method)


class ShardedTeachBot(TeachBot, commands.AutoShardedBot):
    """The bot serving the shards ``shard_ids`` of ``shard_count`` (all of them when ``shard_ids`` is empty):
    Discord sends this process only the events of guilds on its shards. Every shard process shares the
    database, so global knowledge (and each guild's, wherever its shard runs) is the same everywhere."""

    def __init__(self, app: App, **options: Any) -> None:
        settings = app.settings
        super().__init__(app, shard_count=settings.shard_count, shard_ids=settings.shard_ids or None, **options)


def build_bot(app: App) -> TeachBot:
    """The bot for this process: sharded when ``shard_count`` is set."""
    return ShardedTeachBot(app) if app.settings.shard_count is not None else TeachBot(app)


def _guard_event_parsers(parsers: dict[str, Callable[[Any], None]]) -> None:
    """One malformed gateway event (a missing field, a wrong type) is logged and skipped; it must not
    end the connection and with it the bot. The gateway reads this same dict, so wrapping in place works."""

    def guarded(event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(data: Any) -> None:
            try:
                parse(data)
            except Exception:
                log.exception("skipped a malformed %s event from the gateway", event)

        return run

    for event, parse in list(parsers.items()):
        parsers[event] = guarded(event, parse)


def root_cause(error: BaseException) -> BaseException:
    """Unwrap discord.py's wrappers (CommandInvokeError, HybridCommandError…) down to what was raised."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = getattr(error, "original", None)
        if not isinstance(inner, BaseException):
            break
        error = inner
    return error


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py at the configured REST base and gateway (Discord-compatible servers, tests)."""
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    Route.BASE = settings.discord_api_base.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def run_bot(settings: Settings) -> None:
    """Start the app and the bot and run until stopped (SIGINT or SIGTERM close both cleanly).

    Discord that cannot be reached (DNS, refused connection, a 5xx, a timeout) is tried again with
    backoff, ``discord_connect_attempts`` times in all, then reported in one line.
    """
    if settings.discord_token is None:
        raise UserError("No Discord token configured (TEACHBOT_DISCORD_TOKEN).")
    configure_endpoints(settings)
    app = await App.start(settings, role="bot")
    try:
        for attempt in range(1, settings.discord_connect_attempts + 1):
            try:
                await _run_once(app, settings)
                break
            except _UNREACHABLE as exc:
                where = settings.discord_api_base
                if attempt >= settings.discord_connect_attempts:
                    raise UserError(f"Could not reach Discord at {where}: {_reason(exc)}.") from None
                delay = min(RETRY_MAX_SECONDS, 2 ** (attempt - 1))
                log.warning("cannot reach Discord at %s (%s); trying again in %s s", where, _reason(exc), delay)
                await asyncio.sleep(delay)
        log.info("stopped")
    finally:
        await app.close()


RETRY_MAX_SECONDS = 60
_UNREACHABLE = (
    aiohttp.ClientConnectionError,
    asyncio.TimeoutError,
    discord.GatewayNotFound,
    discord.DiscordServerError,
)


def _reason(exc: BaseException) -> str:
    """What went wrong reaching Discord, in a few words (no traceback, no token)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return str(exc.os_error or exc).splitlines()[0][:200]
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]


async def _run_once(app: App, settings: Settings) -> None:
    assert settings.discord_token is not None
    async with build_bot(app) as bot:
        with _stop_on_signals(bot):
            try:
                await bot.start(settings.discord_token.get_secret_value())
            except discord.LoginFailure:
                raise UserError(
                    "Discord refused the token (TEACHBOT_DISCORD_TOKEN): check it in the developer portal."
                ) from None
            except discord.PrivilegedIntentsRequired:
                raise UserError(
                    "Discord refused the Message Content intent: enable it for this bot in the developer portal "
                    "(Bot → Privileged Gateway Intents)."
                ) from None


@contextmanager
def _stop_on_signals(bot: TeachBot) -> Iterator[None]:
    """Turn SIGINT / SIGTERM into ``bot.close()`` so a stop finishes in-flight writes and logs out."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, functools.partial(_request_stop, bot, sig.name))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or not Unix
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _request_stop(bot: TeachBot, signal_name: str) -> None:
    log.info("%s received: stopping", signal_name)
    task = asyncio.get_running_loop().create_task(bot.close())
    _STOPPING.add(task)
    task.add_done_callback(_STOPPING.discard)


_STOPPING: set[asyncio.Task[None]] = set()


__all__ = ["ShardedTeachBot", "TeachBot", "build_bot", "configure_endpoints", "run_bot"]
