"""One cog per feature area; ``COGS`` is the order they are added in."""

from __future__ import annotations

from teachbot.transports.discord.cogs.admin import AdminCog
from teachbot.transports.discord.cogs.chat import ChatCog
from teachbot.transports.discord.cogs.teaching import TeachingCog
from teachbot.transports.discord.cogs.training import TrainingCog
from teachbot.transports.discord.cogs.voice import VoiceCog

COGS = (AdminCog, ChatCog, TeachingCog, TrainingCog, VoiceCog)
