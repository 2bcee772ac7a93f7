"""Who may do what, decided in one place from settings: a privilege ladder plus allow/block lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import discord

from teachbot.config import Settings
from teachbot.transports.catalogue import Privilege


def has_role(roles: Sequence[discord.Role], wanted: Sequence[str]) -> bool:
    """A role is named in settings by id or by name (names compare case-insensitively)."""
    names = {w.lower() for w in wanted}
    return any(str(role.id) in wanted or role.name.lower() in names for role in roles)


@dataclass(frozen=True, slots=True)
class Permissions:
    """Permission rules from settings; ``is_owner`` comes from the bot (settings or application owner)."""

    settings: Settings

    def refusal(self, user: discord.abc.User, channel: object | None) -> str | None:
        """Why this user may not use the bot here, or None when they may."""
        s = self.settings
        if user.id in s.blocked_users or (s.allowed_users and user.id not in s.allowed_users):
            return "You are not allowed to use this bot."
        roles = getattr(user, "roles", [])
        if s.blocked_roles and has_role(roles, s.blocked_roles):
            return "Your role is not allowed to use this bot."
        if s.allowed_roles and isinstance(user, discord.Member) and not has_role(roles, s.allowed_roles):
            return "Your roles do not allow you to use this bot."
        if isinstance(channel, discord.DMChannel):
            return None if s.allow_dms else "I don't answer direct messages here; talk to me in a server."
        channel_id = getattr(channel, "id", None)
        if channel_id in s.blocked_channels or (s.allowed_channels and channel_id not in s.allowed_channels):
            return "I'm not allowed to work in this channel."
        return None

    def level(self, user: discord.abc.User, *, is_owner: bool) -> Privilege:
        """Owner, trainer (trainer role or Manage Server) or member."""
        if is_owner or user.id in self.settings.owner_ids:
            return Privilege.OWNER
        if isinstance(user, discord.Member) and (
            user.guild_permissions.manage_guild or has_role(user.roles, self.settings.trainer_roles)
        ):
            return Privilege.TRAINER
        return Privilege.MEMBER

    def trusted(self, user: discord.abc.User, *, is_owner: bool) -> bool:
        """Whose corrections apply at once: trainers, owners and members of a trusted role."""
        if self.level(user, is_owner=is_owner) >= Privilege.TRAINER:
            return True
        return isinstance(user, discord.Member) and has_role(user.roles, self.settings.trusted_roles)
