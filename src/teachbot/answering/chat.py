"""The chat service: answer a message, remember the exchange, and find earlier answers again.

The conversation memory given to LLM backends (a reply chain, else the channel's recent turns) shows
each corrected answer as its correction says, so a model never reads its old wrong answer as its own
turn and repeats it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.orm import Session

from teachbot.answering.batching import Batcher
from teachbot.answering.protocols import Answer, Attachment, ChatModel, Question, Turn
from teachbot.store.db import Database
from teachbot.store.tables import Correction, Example, ExampleStatus, Message, utcnow

log = logging.getLogger(__name__)

Deliver = Callable[[Answer], Awaitable[str | None]]  # sends an answer, returns the sent message's transport id

MAX_QUESTION_CHARS = 4000
_MESSAGES = cast(Table, Message.__table__)
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.id)
#: ``TeachStatus.APPLIED`` (teaching/service.py, which imports this module): a correction in force.
APPLIED = "applied"


@dataclass(frozen=True, slots=True)
class Origin:
    """Origin a message came from and who sent it: the scope (server or global), the channel and the author."""

    scope: str
    channel: str
    author: str
    author_name: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer and the ids under which the question and the answer were stored."""

    answer: Answer
    question_id: int
    answer_id: int


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A bot answer found again (for corrections and feedback)."""

    message_id: int
    scope: str
    question: str
    answer: str
    example_id: int | None = None


class ChatService:
    """Answers questions through the configured ``ChatModel`` and records every exchange."""

    def __init__(self, db: Database, model: ChatModel, *, memory_turns: int = 0) -> None:
        self.db = db
        self.model = model
        self.memory_turns = memory_turns  # earlier turns of the channel given to backends that use them
        self._writer = _exchange_writer(db)

    async def ask(
        self,
        text: str,
        where: Origin,
        *,
        external_id: str | None = None,
        attachments: Sequence[Attachment] = (),
        reply_to: str | None = None,
        deliver: Deliver | None = None,
    ) -> Reply:
        """Answer ``text`` and store the question and the answer before returning.

        ``reply_to`` is the transport id of the message this one replies to: its reply chain is the
        conversation memory (backends that use memory), else the channel's recent turns are.
        ``deliver`` sends the answer and returns the transport id of what it sent, so the exchange and
        that id are stored in one transaction (one database round trip per message).
        """
        question = await self._question(text, where, attachments, reply_to)
        text = question.text
        answer = await self.model.answer(question)
        sent_id = await deliver(answer) if deliver is not None else None
        reply = await self._writer.submit(_Exchange(text, answer, where, external_id, reply_to, sent_id))
        log.info(
            "answered scope=%s channel=%s author=%s message=%s version=%s confidence=%.2f fallback=%s",
            where.scope,
            where.channel,
            where.author,
            reply.answer_id,
            answer.model_version,
            answer.confidence,
            answer.is_fallback,
        )
        return reply

    @property
    def streams(self) -> bool:
        """Whether the backend can stream its answers."""
        return hasattr(self.model, "stream")

    async def _question(
        self, text: str, where: Origin, attachments: Sequence[Attachment], reply_to: str | None = None
    ) -> Question:
        text = text.strip()[:MAX_QUESTION_CHARS]
        history: tuple[Turn, ...] = ()
        if self.memory_turns and reply_to:
            history = await self.reply_chain(where.scope, reply_to, self.memory_turns)
        if self.memory_turns and not history:
            history = await self.recent_turns(where.scope, where.channel, self.memory_turns)
        return Question(text=text, scope=where.scope, user_id=where.author, history=history, attachments=attachments)

    async def ask_streaming(
        self,
        text: str,
        where: Origin,
        on_text: Callable[[str], Awaitable[None]],
        *,
        external_id: str | None = None,
        attachments: Sequence[Attachment] = (),
        reply_to: str | None = None,
        sent_id: str | None = None,
    ) -> Reply:
        """Like ``ask``, but ``on_text`` sees the answer so far while a streaming backend writes it;
        ``sent_id`` is the transport id of the message the answer is being written into."""
        stream_of = getattr(self.model, "stream", None)
        if stream_of is None:
            reply = await self.ask(text, where, external_id=external_id, attachments=attachments, reply_to=reply_to)
            await on_text(reply.answer.text)
            if sent_id is not None:
                await self.link_external(reply.answer_id, sent_id)
            return reply
        question = await self._question(text, where, attachments, reply_to)
        text = question.text
        pieces: list[str] = []
        async with stream_of(question) as stream:
            async for delta in stream:
                pieces.append(delta)
                await on_text("".join(pieces))
        answer = stream.answer
        reply = await self.db.run(
            lambda s: self._store_exchange(s, text, answer, where, external_id, reply_to, sent_id)
        )
        log.info(
            "answered (streamed) scope=%s channel=%s author=%s message=%s version=%s",
            where.scope,
            where.channel,
            where.author,
            reply.answer_id,
            answer.model_version,
        )
        return reply

    @staticmethod
    def _store_exchange(
        s: Session,
        text: str,
        answer: Answer,
        where: Origin,
        external_id: str | None,
        reply_to: str | None = None,
        sent_id: str | None = None,
    ) -> Reply:
        """Two rows in one transaction, through Core inserts on the table itself: this runs for every message,
        and the ORM's unit of work (or its bulk-insert path, for ``insert(Message)``) costs several times more
        CPU than the statements themselves."""
        replied = _id_by_external_id(s, where.scope, reply_to) if reply_to else None
        now = utcnow()
        common = {"scope": where.scope, "channel": where.channel, "created_at": now}
        asked_id = s.execute(
            _INSERT_MESSAGE,
            {
                **common,
                "author": where.author,
                "author_name": where.author_name,
                "is_bot": False,
                "text": text,
                "external_id": external_id,
                "reply_to_id": replied,
                "confidence": None,
                "model_version": None,
                "example_id": None,
            },
        ).scalar_one()
        said_id = s.execute(
            _INSERT_MESSAGE,
            {
                **common,
                "author": "bot",
                "author_name": "",
                "is_bot": True,
                "text": answer.text,
                "reply_to_id": asked_id,
                "external_id": sent_id,
                "confidence": answer.confidence,
                "model_version": answer.model_version,
                "example_id": answer.matched_example_id,
            },
        ).scalar_one()
        return Reply(answer=answer, question_id=asked_id, answer_id=said_id)

    async def link_external(self, answer_id: int, external_id: str) -> None:
        """Remember the transport's id (a Discord message id) of a stored answer."""
        statement = update(Message).where(Message.id == answer_id).values(external_id=external_id)
        await self.db.run(lambda s: s.execute(statement))

    async def find_answer(
        self, scope: str, *, answer_id: int | None = None, external_id: str | None = None
    ) -> StoredAnswer | None:
        """A bot answer in ``scope`` by stored id or transport id, with the question it answered."""

        def find(s: Session) -> StoredAnswer | None:
            query = select(Message).where(Message.scope == scope, Message.is_bot.is_(True))
            if answer_id is not None:
                query = query.where(Message.id == answer_id)
            elif external_id is not None:
                query = query.where(Message.external_id == external_id)
            else:
                return None
            message = s.scalars(query.limit(1)).first()
            if message is None:
                return None
            asked = s.get(Message, message.reply_to_id) if message.reply_to_id else None
            return StoredAnswer(
                message.id, message.scope, asked.text if asked else "", message.text, message.example_id
            )

        return await self.db.run(find)

    async def last_answer(self, scope: str, channel: str) -> StoredAnswer | None:
        """The newest bot answer in a channel (what the console's ``!correct`` corrects)."""

        def newest(s: Session) -> int | None:
            query = (
                select(Message.id)
                .where(Message.scope == scope, Message.channel == channel, Message.is_bot.is_(True))
                .order_by(Message.id.desc())
                .limit(1)
            )
            return s.scalars(query).first()

        message_id = await self.db.run(newest)
        return None if message_id is None else await self.find_answer(scope, answer_id=message_id)

    async def reply_chain(self, scope: str, external_id: str, limit: int = 10) -> tuple[Turn, ...]:
        """The messages a reply answers, following reply links back, oldest first (at most ``limit``)."""

        def walk(s: Session) -> tuple[Turn, ...]:
            chain: list[Message] = []
            message = _by_external_id(s, scope, external_id)
            while message is not None and len(chain) < limit:
                chain.append(message)
                message = s.get(Message, message.reply_to_id) if message.reply_to_id else None
            return _as_turns(s, list(reversed(chain)))

        return await self.db.run(walk)

    async def recent_turns(self, scope: str, channel: str, limit: int = 10) -> tuple[Turn, ...]:
        """The last ``limit`` messages of a channel as conversation turns, oldest first."""

        def recent(s: Session) -> tuple[Turn, ...]:
            query = (
                select(Message)
                .where(Message.scope == scope, Message.channel == channel)
                .order_by(Message.id.desc())
                .limit(limit)
            )
            return _as_turns(s, list(reversed(list(s.scalars(query)))))

        return await self.db.run(recent)


@dataclass(frozen=True, slots=True)
class _Exchange:
    """A question and its answer, to be stored (``ChatService._store_exchange``'s arguments)."""

    text: str
    answer: Answer
    where: Origin
    external_id: str | None
    reply_to: str | None
    sent_id: str | None

    def store(self, s: Session) -> Reply:
        return ChatService._store_exchange(
            s, self.text, self.answer, self.where, self.external_id, self.reply_to, self.sent_id
        )


def _exchange_writer(db: Database) -> Batcher[_Exchange, Reply]:
    """Stores exchanges on the database thread; those waiting together go in one transaction, and each
    caller still returns only once its exchange is committed (a failed batch is stored one by one, so a
    problem such as a full disk reaches only the callers it hit)."""

    async def many(exchanges: Sequence[_Exchange]) -> list[Reply]:
        return await db.run(functools.partial(_store_all, exchanges))

    async def one(exchange: _Exchange) -> Reply:
        return await db.run(exchange.store)

    return Batcher(many, one, max_batch=64, name="exchange-writer")


def _store_all(exchanges: Sequence[_Exchange], s: Session) -> list[Reply]:
    return [exchange.store(s) for exchange in exchanges]


def _as_turns(s: Session, messages: Sequence[Message]) -> tuple[Turn, ...]:
    """Messages (oldest first) as conversation turns, each corrected answer replaced by its correction."""
    corrected = _corrections_of(s, [m.id for m in messages if m.is_bot])
    return tuple(Turn("assistant", corrected.get(m.id, m.text)) if m.is_bot else Turn("user", m.text) for m in messages)


def _corrections_of(s: Session, answer_ids: Sequence[int]) -> dict[int, str]:
    """The better answer of each of these bot answers that a correction in force replaced (newest wins).

    A correction is in force while it is applied and its taught example is active: one undone
    (``!undo``), still waiting for review, or whose example was forgotten leaves the answer as sent.
    """
    if not answer_ids:
        return {}
    query = (
        select(Correction.message_id, Correction.better_answer)
        .outerjoin(Example, Example.id == Correction.example_id)
        .where(
            Correction.message_id.in_(answer_ids),
            Correction.status == APPLIED,
            or_(Correction.example_id.is_(None), Example.status == ExampleStatus.ACTIVE),
        )
        .order_by(Correction.id)
    )
    return {message_id: better for message_id, better in s.execute(query) if message_id is not None}


def _id_by_external_id(s: Session, scope: str, external_id: str) -> int | None:
    query = select(Message.id).where(Message.scope == scope, Message.external_id == external_id)
    return s.scalars(query.order_by(Message.id.desc()).limit(1)).first()


def _by_external_id(s: Session, scope: str, external_id: str) -> Message | None:
    query = select(Message).where(Message.scope == scope, Message.external_id == external_id)
    return s.scalars(query.order_by(Message.id.desc()).limit(1)).first()
