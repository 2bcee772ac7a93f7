"""The Discord door for commands: hybrid (prefix + slash) commands built from the catalogue.

Each catalogue entry becomes one ``hybrid_command`` (a group of subcommands becomes a
``hybrid_group``) whose parameters come from the entry's typed arguments, so discord.py parses the
prefix syntax and the slash options, and its help text is the entry's. Invoking one builds a ``Call``
for the caller and runs the handler of the same name; the ``Reply`` is delivered here: split for
Discord, with files, review buttons, or a live status message for long runs.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import logging
from typing import TYPE_CHECKING, Any, Optional

import discord
from discord import app_commands
from discord.ext import commands

from teachbot.answering.chat import Origin
from teachbot.answering.protocols import scope_for
from teachbot.errors import UserError
from teachbot.paths import read_regular_file
from teachbot.transports import wording
from teachbot.transports.arguments import parse_value, readable
from teachbot.transports.catalogue import (
    COMMANDS,
    HELP_FOOTER,
    Arg,
    ArgKind,
    CommandSpec,
    Door,
    Privilege,
    handler_name,
)
from teachbot.transports.discord.permissions import has_role
from teachbot.transports.discord.rendering import send_text
from teachbot.transports.discord.review import ReviewView
from teachbot.transports.discord.streaming import ThrottledEdit, progress_bar
from teachbot.transports.handlers import Call, CommandHandlers, Reply, Upload, VoiceControl

if TYPE_CHECKING:
    from teachbot.transports.discord.bot import TeachBot

log = logging.getLogger(__name__)

Context = commands.Context[Any]


def origin_of(author: discord.abc.User, channel: Any, guild: discord.Guild | None) -> Origin:
    guild_id = guild.id if guild is not None else None
    return Origin(scope_for(guild_id), str(getattr(channel, "id", "dm")), str(author.id), author.name)


def converter_for(arg: Arg) -> type[commands.Converter[Any]]:
    """A discord.py converter reading one catalogue argument from a word (prefix) or a string option (slash)."""

    class ArgConverter(commands.Converter[Any]):
        async def convert(self, ctx: Context, argument: str) -> Any:
            try:
                return parse_value(arg, argument)
            except UserError as exc:
                raise commands.BadArgument(str(exc)) from None

    ArgConverter.__name__ = ArgConverter.__qualname__ = f"{arg.name.title()}Converter"
    return ArgConverter


def _parameter(arg: Arg) -> commands.Parameter:
    """A catalogue argument as a discord.py command parameter."""
    if arg.kind is ArgKind.FILE:
        return commands.Parameter(
            arg.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=discord.Attachment | None
        )
    if arg.kind is ArgKind.TEXT:  # the rest of the message
        default = inspect.Parameter.empty if arg.required else ""
        return commands.Parameter(arg.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=str)
    converter = converter_for(arg)
    if arg.required:
        return commands.Parameter(arg.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=converter)
    return commands.Parameter(
        arg.name,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=Optional[converter],  # noqa: UP045
    )


class CommandDoor:
    """Builds the bot's commands and runs them for Discord callers."""

    def __init__(self, bot: TeachBot) -> None:
        self.bot = bot
        self.handlers = CommandHandlers(bot.app)

    def build(self) -> list[commands.HybridCommand[Any, ..., Any] | commands.HybridGroup[Any, ..., Any]]:
        built: list[Any] = []
        for spec in COMMANDS:
            if not spec.doors & Door.DISCORD:
                continue
            if not spec.subcommands:
                built.append(_command(commands.HybridCommand, self._callback(spec, None), spec))
                continue
            default = spec.subcommand(spec.default)
            assert default is not None, f"{spec.name}: default subcommand {spec.default!r} is not declared"
            group = _command(
                commands.HybridGroup,
                self._callback(default, spec),
                spec,
                fallback=default.name,
                invoke_without_command=True,
                ignore_extra=False,
            )
            prefix_only = _command(
                commands.HybridCommand, self._callback(default, spec), default, with_app_command=False
            )
            group.add_command(prefix_only)  # `!datasets list` (on slash it is the group's fallback)
            for sub in spec.subcommands:
                if sub is not default:
                    group.add_command(_command(commands.HybridCommand, self._callback(sub, spec), sub))
            built.append(group)
        return built

    def _callback(self, spec: CommandSpec, group: CommandSpec | None) -> Any:
        """A coroutine function whose signature is the catalogue's arguments (what discord.py reads)."""
        door = self

        async def callback(ctx: Context, *args: Any, **kwargs: Any) -> None:
            bound = signature.bind(ctx, *args, **kwargs)
            values = dict(list(bound.arguments.items())[1:])
            await door.run(ctx, spec, group, values)

        parameters = [commands.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=commands.Context)]
        parameters += sorted((_parameter(a) for a in spec.args), key=lambda p: p.kind)
        signature = inspect.Signature(parameters)
        callback.__signature__ = signature  # type: ignore[attr-defined]
        callback.__name__ = callback.__qualname__ = handler_name(group, spec)
        descriptions = {a.name: a.help[:100] for a in spec.args}
        if descriptions:
            app_commands.describe(**descriptions)(callback)
        if spec.guild_only or (group is not None and group.guild_only):
            commands.guild_only()(callback)
        return callback

    async def call_for(self, ctx: Context) -> Call:
        """Who is asking and where, as the handlers need it."""
        reference = ctx.message.reference if ctx.interaction is None else None
        replied = str(reference.message_id) if reference is not None and reference.message_id else None
        return Call(
            origin=origin_of(ctx.author, ctx.channel, ctx.guild),
            door=Door.DISCORD,
            privilege=await self.bot.privilege(ctx.author),
            trusted=await self.bot.trusted(ctx.author),
            replied_to=replied,
            voice=DiscordVoice(self.bot, ctx),
        )

    async def run(self, ctx: Context, spec: CommandSpec, group: CommandSpec | None, values: dict[str, Any]) -> None:
        values = {k: readable(v) if isinstance(v, str) else v for k, v in values.items()}
        for arg in spec.args:
            if arg.kind is ArgKind.FILE:
                attachment = values.get(arg.name) or (ctx.message.attachments[0] if ctx.message.attachments else None)
                values[arg.name] = await self.upload_of(attachment)
        call = await self.call_for(ctx)
        handler: Any = getattr(self.handlers, handler_name(group, spec))
        root = group or spec
        if root.progress:
            await self._with_status(ctx, root.progress, call, handler, values)
            return
        if root.heavy:
            await ctx.defer()
        await self.deliver(ctx, await handler(call, **values))

    async def _with_status(self, ctx: Context, title: str, call: Call, handler: Any, values: dict[str, Any]) -> None:
        """Long runs edit one status message as they advance and end with the result in it."""
        status = ThrottledEdit(await ctx.send(f"{title}… starting"))
        call.progress = lambda stage, fraction: status.offer(progress_bar(title, stage, fraction))
        try:
            reply = await handler(call, **values)
        except UserError as exc:
            await status.finish(f"{title} stopped: {wording.user_error(exc, self.handlers.prefix)}")
            return
        except Exception:
            log.exception("%s failed", title.lower())
            await status.finish(f"{title} failed on my side; it has been logged. The active model is unchanged.")
            return
        await status.finish(reply.text)

    async def upload_of(self, attachment: discord.Attachment | None) -> Upload | None:
        """An attachment's bytes, refused before download when over the size limit."""
        if attachment is None:
            return None
        self.handlers.check_upload_size(attachment.filename, attachment.size)
        return Upload(attachment.filename, await attachment.read())

    async def deliver(self, ctx: Context, reply: Reply) -> None:
        """Send a reply: text split for Discord, files attached, review buttons under the list."""
        files = [discord.File(io.BytesIO(f.data), filename=f.filename) for f in reply.files]
        if reply.report is not None:
            from teachbot.training.charts import render_chart

            report = reply.report
            payload = json.dumps(report.to_json(), ensure_ascii=False, indent=2).encode()
            threshold = self.handlers.app.settings.confidence_threshold
            chart = await asyncio.to_thread(lambda: render_chart(report, threshold=threshold))
            files.append(discord.File(io.BytesIO(payload), filename=f"test-{report.model_version}.json"))
            files.append(discord.File(io.BytesIO(chart), filename=f"test-{report.model_version}.png"))
        if reply.send_path is not None:
            limit = self.bot.settings.max_send_bytes
            data = await asyncio.to_thread(read_regular_file, reply.send_path, max_bytes=limit)
            files.append(discord.File(io.BytesIO(data), filename=reply.send_path.name))
        if reply.review_items:
            view = ReviewView(self, reply.review_items)
            await ctx.send(reply.text[:1900], view=view)
            return
        if reply.rows:  # a table reads better as an embed than as a wall of text
            await ctx.send(embed=table_embed(reply.rows), reference=ctx.message if ctx.interaction is None else None)  # type: ignore[arg-type]
            return
        ephemeral = False
        reference = ctx.message if ctx.interaction is None else None

        async def first(text: str, attached: list[discord.File]) -> discord.Message:
            return await ctx.send(
                text,
                files=attached or discord.utils.MISSING,
                reference=reference,  # type: ignore[arg-type]
                mention_author=False,
                ephemeral=ephemeral,
            )

        async def more(text: str, attached: list[discord.File]) -> discord.Message:
            return await ctx.send(text, files=attached or discord.utils.MISSING, ephemeral=ephemeral)

        await send_text(reply.text, first, more, files)


class DiscordVoice(VoiceControl):
    """The caller's voice channel, for ``join`` and ``leave``."""

    def __init__(self, bot: TeachBot, ctx: Context) -> None:
        self.bot = bot
        self.ctx = ctx

    async def join(self) -> str:
        voice = getattr(self.ctx.author, "voice", None)
        if voice is None or voice.channel is None:
            raise UserError("Join a voice channel first, then call me.")
        return await self.bot.voice.join(voice.channel)

    async def leave(self) -> str:
        if self.ctx.guild is None:
            raise UserError("This command works only in a server.")
        return await self.bot.voice.leave(self.ctx.guild)

    async def listen(self) -> str:
        voice = getattr(self.ctx.author, "voice", None)
        if voice is None or voice.channel is None:
            raise UserError("Join a voice channel first, then call me to listen.")
        settings = self.bot.settings
        channel = voice.channel
        if settings.voice_listen_channels and channel.id not in settings.voice_listen_channels:
            raise UserError("I'm not allowed to listen in that voice channel.")
        roles = getattr(self.ctx.author, "roles", [])
        trainer = await self.bot.privilege(self.ctx.author) >= Privilege.TRAINER
        if settings.voice_listen_roles and not trainer and not has_role(roles, settings.voice_listen_roles):
            raise UserError("Your roles do not allow you to ask me to listen.")
        if has_role(roles, settings.voice_opt_out_roles):
            raise UserError("You opted out of being listened to, so I won't listen for you.")
        announce = getattr(self.ctx.channel, "id", None) != channel.id
        return await self.bot.voice.listen(
            channel, chat=self.bot.app.chat, permissions=self.bot.permissions, announce=announce
        )

    async def stop(self) -> str:
        if self.ctx.guild is None:
            raise UserError("This command works only in a server.")
        return await self.bot.voice.stop_listening(self.ctx.guild)


EMBED_FIELDS = 25  # Discord's limit per embed


def table_embed(rows: tuple[tuple[str, str], ...]) -> discord.Embed:
    """Rows as an embed: one field per row (names and values cut to Discord's limits)."""
    embed = discord.Embed(title="Commands", description=HELP_FOOTER)
    for name, text in rows[:EMBED_FIELDS]:
        embed.add_field(name=name[:256], value=text[:1024] or "—", inline=False)
    return embed


def _command(kind: Any, callback: Any, spec: CommandSpec, **options: Any) -> Any:
    """Construct a discord.py command; the generated signature is put back afterwards (building the
    slash side removes ``__signature__`` from the callback once it has read it)."""
    signature = callback.__signature__
    command = kind(callback, name=spec.name, description=spec.help, **options)
    callback.__signature__ = signature
    return command
