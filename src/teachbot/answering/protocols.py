"""The small contracts every answering backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

GLOBAL_SCOPE = "global"


def scope_for(guild_id: int | None) -> str:
    """A server's knowledge scope is its id; direct messages (no server) use the global scope."""
    return GLOBAL_SCOPE if guild_id is None else str(guild_id)


Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of the conversation, oldest first in a history."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with a question: images go to vision models, text is read into the prompt."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Question:
    """What a user asked, with everything a backend may use to answer."""

    text: str
    scope: str = GLOBAL_SCOPE
    user_id: str = ""
    history: Sequence[Turn] = ()
    attachments: Sequence[Attachment] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    """A backend's reply: the text and how sure it is, and what it was based on."""

    text: str
    confidence: float
    model_version: str
    is_fallback: bool = False
    matched_prompt: str | None = None
    matched_example_id: int | None = None
    used_example_ids: tuple[int, ...] = ()
    backend: str = "local"
    tokens_used: int = 0


@dataclass(frozen=True, slots=True)
class TaughtExample:
    """An example the bot has learned, as retrieval returns it."""

    example_id: int
    prompt: str
    answer: str
    score: float
    scope: str = GLOBAL_SCOPE
    extra: dict[str, str] = field(default_factory=dict)


class ChatModel(Protocol):
    """Anything that answers a question."""

    name: str

    async def answer(self, question: Question) -> Answer: ...
