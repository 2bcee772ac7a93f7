"""Interactions for the fake Discord: slash commands, component clicks, modal submits, and responses.

Payloads follow ``discord/interactions.py`` (``Interaction._from_data`` needs ``attachment_size_limit``,
``application_id``, ``version``, ``token``) and ``discord/app_commands/tree.py`` (options, resolved).
Callback responses use the ``with_response`` shape ``InteractionCallbackResponse`` parses.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fakes.discord_models import (
    EPHEMERAL_FLAG,
    FakeChannel,
    FakeRole,
    FakeUser,
    Journal,
    RecordedFile,
    Upload,
)
from fakes.discord_rest import LOADING_FLAG, ApiError

if TYPE_CHECKING:
    from fakes.discord_server import ChannelLike, FakeDiscord, MessageLike

__all__ = ["FakeInteraction", "InteractionMixin", "InteractionResponse"]

APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT = 2, 3, 5
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
OPTION_TYPES: list[tuple[type, int]] = [(bool, 5), (int, 4), (float, 10), (str, 3)]


@dataclass
class InteractionResponse:
    """The bot's callback to an interaction (type 4 message, 5 deferred, 6/7 update, 8 autocomplete, 9 modal)."""

    type: int
    data: dict[str, Any]
    files: list[RecordedFile]
    message: dict[str, Any] | None

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.data.get("flags") or 0) & EPHEMERAL_FLAG)


@dataclass
class FakeInteraction:
    """An interaction the fake sent, and what the bot did with it."""

    id: int
    token: str
    type: int
    channel_id: int
    user: FakeUser
    payload: dict[str, Any]
    message_id: int | None = None
    original_id: int | None = None
    message_ids: list[int] = field(default_factory=list)
    responded: bool = False
    responses: Journal[InteractionResponse] = field(default_factory=lambda: Journal("interaction response"))
    followups: Journal[dict[str, Any]] = field(default_factory=lambda: Journal("followup"))


def _find_component(components: Sequence[Mapping[str, Any]], custom_id: str) -> Mapping[str, Any] | None:
    for component in components:
        if component.get("custom_id") == custom_id:
            return component
        children = list(component.get("components") or ())
        if "component" in component:
            children.append(component["component"])
        if "accessory" in component:
            children.append(component["accessory"])
        found = _find_component(children, custom_id)
        if found is not None:
            return found
    return None


class InteractionMixin:
    """The interaction half of ``FakeDiscord``."""

    def __init__(self) -> None:
        self.interactions: dict[int, FakeInteraction] = {}
        self.interactions_by_token: dict[str, FakeInteraction] = {}

    @property
    def _fake(self) -> FakeDiscord:
        return self  # type: ignore[return-value]

    async def _send_interaction(
        self,
        type: int,
        data: dict[str, Any],
        user: FakeUser,
        channel: ChannelLike,
        message: dict[str, Any] | None = None,
    ) -> FakeInteraction:
        fake = self._fake
        target = fake.channel(channel)
        interaction_id = fake.ids.next()
        token = "interaction-" + secrets.token_urlsafe(24)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(fake.application_id),
            "type": type,
            "data": data,
            "channel_id": str(target.id),
            "channel": target.payload(),
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 25 * 1024 * 1024,
        }
        if target.guild_id is not None:
            guild = fake.guilds[target.guild_id]
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=guild.member_payload(user.id, with_permissions=True),
                app_permissions=str(guild.permissions_of(fake.bot.id)),
                context=0,
                authorizing_integration_owners={"0": str(guild.id)},
            )
        else:
            payload.update(
                user=user.payload(),
                app_permissions=str(fake.guild.permissions_of(fake.bot.id)),
                context=1,
                authorizing_integration_owners={"1": str(user.id)},
            )
        if message is not None:
            payload["message"] = message
        interaction = FakeInteraction(interaction_id, token, type, target.id, user, payload)
        if message is not None:
            interaction.message_id = int(message["id"])
        self.interactions[interaction_id] = interaction
        self.interactions_by_token[token] = interaction
        await fake.dispatch("INTERACTION_CREATE", payload)
        return interaction

    def _option(self, name: str, value: Any, resolved: dict[str, dict[str, Any]], guild_id: int | None) -> dict:
        fake = self._fake
        if isinstance(value, Mapping):
            return {"name": name, **value}
        if isinstance(value, FakeUser):
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            if guild_id is not None and value.id in fake.guilds[guild_id].members:
                member = fake.guilds[guild_id].member_payload(value.id, with_user=False, with_permissions=True)
                resolved.setdefault("members", {})[str(value.id)] = member
            return {"name": name, "type": 6, "value": str(value.id)}
        if isinstance(value, FakeChannel):
            channel = {**value.payload(), "permissions": str(fake.guild.permissions_of(fake.bot.id))}
            resolved.setdefault("channels", {})[str(value.id)] = channel
            return {"name": name, "type": 7, "value": str(value.id)}
        if isinstance(value, FakeRole):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            return {"name": name, "type": 8, "value": str(value.id)}
        if isinstance(value, Upload):
            attachment = fake.upload_payload(value)
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return {"name": name, "type": 11, "value": attachment["id"]}
        for python_type, option_type in OPTION_TYPES:
            if isinstance(value, python_type):
                return {"name": name, "type": option_type, "value": value}
        raise TypeError(f"no slash option type for {value!r}")

    def _command(self, name: str, guild_id: int | None) -> dict[str, Any] | None:
        fake = self._fake
        candidates = fake.guild_commands.get(guild_id, []) if guild_id else []
        for command in [*candidates, *fake.global_commands]:
            if command["name"] == name and command.get("type", 1) == 1:
                return command
        return None

    async def slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser,
        channel: ChannelLike | None = None,
    ) -> FakeInteraction:
        """A user runs ``/name`` ("group sub" for subcommands) in ``channel`` (default: the text channel).

        Option values: str/int/float/bool, ``FakeUser`` (resolved user + member), ``FakeChannel``,
        ``FakeRole``, ``Upload`` (attachment option), or a raw option dict.
        """
        fake = self._fake
        target = fake.channel(channel if channel is not None else fake.text)
        top, *subcommands = name.split()
        resolved: dict[str, dict[str, Any]] = {}
        built = [self._option(k, v, resolved, target.guild_id) for k, v in (options or {}).items()]
        for depth, sub in enumerate(reversed(subcommands)):
            built = [{"name": sub, "type": SUB_COMMAND if depth == 0 else SUB_COMMAND_GROUP, "options": built}]
        command = self._command(top, target.guild_id)
        data: dict[str, Any] = {
            "id": command["id"] if command else str(fake.ids.next()),
            "name": top,
            "type": 1,
            "options": built,
        }
        if command and "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return await self._send_interaction(APPLICATION_COMMAND, data, user, target)

    async def click(
        self, message: MessageLike, custom_id: str, user: FakeUser, *, values: Sequence[str] | None = None
    ) -> FakeInteraction:
        """A user clicks a button (or picks ``values`` in a select) on a message the bot sent."""
        fake = self._fake
        stored = fake.message(message)
        component = _find_component(stored.get("components") or [], custom_id)
        assert component is not None, f"message {stored['id']} has no component with custom_id {custom_id!r}"
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            data["values"] = list(values)
        return await self._send_interaction(MESSAGE_COMPONENT, data, user, stored["channel_id"], stored)

    async def submit_modal(
        self, custom_id: str, values: Mapping[str, str], *, user: FakeUser, channel: ChannelLike | None = None
    ) -> FakeInteraction:
        """A user submits a modal: one action row with a text input per ``values`` item."""
        fake = self._fake
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in values.items()]
        data = {"custom_id": custom_id, "components": rows}
        return await self._send_interaction(MODAL_SUBMIT, data, user, channel if channel is not None else fake.text)

    async def respond_to_interaction(
        self, interaction: FakeInteraction, body: Mapping[str, Any], files: Sequence[RecordedFile]
    ) -> dict[str, Any]:
        """Handle ``POST /interactions/{id}/{token}/callback``."""
        fake = self._fake
        if interaction.responded:
            raise ApiError(400, "Interaction has already been acknowledged.", 40060)
        interaction.responded = True
        kind = int(body["type"])
        data = dict(body.get("data") or {})
        channel = fake.channel(interaction.channel_id)
        message: dict[str, Any] | None = None
        if kind == 4:
            message = await fake.create_bot_message(channel, data, files, interaction=interaction)
        elif kind == 5:
            message = await fake.create_bot_message(
                channel,
                {"flags": data.get("flags") or 0},
                [],
                interaction=interaction,
                extra_flags=LOADING_FLAG,
                publish=False,
            )
        elif kind == 7 and interaction.message_id is not None:
            message = await fake.edit_message(fake.message(interaction.message_id), data, files)
        elif kind == 6 and interaction.message_id is not None:
            message = fake.message(interaction.message_id)
        if message is not None:
            interaction.original_id = int(message["id"])
            interaction.message_ids.append(int(message["id"]))
        interaction.responses.add(InteractionResponse(kind, data, list(files), message and dict(message)))
        flags = int((message or data).get("flags") or 0)
        result: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(flags & EPHEMERAL_FLAG),
            }
        }
        if message is not None:
            result["interaction"]["response_message_id"] = message["id"]
            result["resource"] = {"type": kind, "message": message}
        return result

    async def wait_for_interaction_response(
        self, interaction: FakeInteraction, timeout: float = 5
    ) -> InteractionResponse:
        """The bot's callback to ``interaction``."""
        return await interaction.responses.take(lambda _: True, timeout=timeout, description=f"#{interaction.id}")

    async def wait_for_followup(self, interaction: FakeInteraction, timeout: float = 5) -> dict[str, Any]:
        """The next followup message the bot sent for ``interaction``."""
        return await interaction.followups.take(lambda _: True, timeout=timeout, description=f"#{interaction.id}")
