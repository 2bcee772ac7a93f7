"""Who may run a command here, and how often: one global check that reads the catalogue.

The privilege a command needs and whether it is heavy (cooldown) are declared once, in
``transports/catalogue.py``; this check enforces exactly that for prefix and slash invocations, so
no command can declare one privilege for ``!help`` and enforce another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from discord.ext import commands

from teachbot.transports.catalogue import BY_NAME, CommandSpec, Privilege

if TYPE_CHECKING:
    from teachbot.transports.discord.bot import TeachBot


class PermissionDeniedCheck(commands.CheckFailure):
    """A command refused for lack of privilege; its text is shown to the user."""


class IgnoredCheck(commands.CheckFailure):
    """A message command from a user or channel the bot ignores (block/allow lists): no reply at all."""


def spec_of(command: commands.Command[Any, ..., Any] | None) -> CommandSpec | None:
    """The catalogue entry a discord.py command was built from (a subcommand answers to its group's)."""
    if command is None:
        return None
    root = command.root_parent or command
    return BY_NAME.get(root.name)


class CommandGate:
    """The bot's global check: allow/block lists, the catalogue's privilege, and heavy-command cooldowns."""

    def __init__(self, heavy_cooldown_seconds: float) -> None:
        self.seconds = heavy_cooldown_seconds
        self.cooldowns: dict[str, commands.CooldownMapping[Any]] = {}  # one per heavy command, per user

    async def __call__(self, ctx: commands.Context[Any]) -> bool:
        bot: TeachBot = ctx.bot
        spec = spec_of(ctx.command)
        if spec is None:  # not a catalogue command (none exist today): members may run it
            spec = CommandSpec("?", "")
        refusal = bot.permissions.refusal(ctx.author, ctx.channel)
        if refusal:  # a slash command must be answered (ephemerally); a message is ignored
            raise PermissionDeniedCheck(refusal) if ctx.interaction is not None else IgnoredCheck(refusal)
        level = await bot.privilege(ctx.author)
        if spec.privilege > Privilege.MEMBER and level < spec.privilege:
            raise PermissionDeniedCheck(f"`{spec.name}` needs the {spec.privilege.name.lower()} role.")
        if spec.heavy and self.seconds and level < Privilege.OWNER:  # the owner is never kept waiting
            mapping = self.cooldowns.get(spec.name)
            if mapping is None:
                mapping = commands.CooldownMapping.from_cooldown(1, self.seconds, commands.BucketType.user)
                self.cooldowns[spec.name] = mapping
            bucket = mapping.get_bucket(ctx.message)
            retry = bucket.update_rate_limit() if bucket is not None else None
            if retry and bucket is not None:
                raise commands.CommandOnCooldown(bucket, retry, commands.BucketType.user)
        return True
