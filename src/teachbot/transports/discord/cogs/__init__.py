"""Listeners that are not commands (commands are built from the catalogue in ``../commands.py``)."""

from __future__ import annotations

from teachbot.transports.discord.cogs.chat import ChatCog
from teachbot.transports.discord.cogs.reactions import ReactionsCog

COGS = (ChatCog, ReactionsCog)
