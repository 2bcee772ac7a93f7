"""Teaching: corrections, feedback, the review queue, forgetting and undo.

Everything a user teaches is committed before it is acknowledged. A trusted member's correction
applies at once (the knowledge overlay changes in the same call); anyone else's waits for review.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from teachbot.answering.chat import Origin, StoredAnswer
from teachbot.answering.knowledge import Knowledge
from teachbot.errors import UserError, show_name
from teachbot.ids import id_in_range, parse_id
from teachbot.store.changes import ChangeKind, publish
from teachbot.store.db import Database
from teachbot.store.tables import Correction, Example, ExampleSource, ExampleStatus, Feedback, Message, Polarity

log = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 2000


class TeachStatus(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    REJECTED = "rejected"
    UNDONE = "undone"


class FeedbackKind(StrEnum):
    UP = "up"
    DOWN = "down"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class TeachResult:
    """What happened to a correction or feedback item: its id and whether it applies yet."""

    item_id: str
    status: TeachStatus
    question: str = ""
    answer: str = ""


@dataclass(frozen=True, slots=True)
class ReviewItem:
    item_id: str
    author: str
    question: str
    current: str
    suggestion: str


def _clean_answer(text: str) -> str:
    text = text.strip()
    if not text:
        raise UserError("Give the better answer after the command.", see="correct Paris is the capital.")
    if len(text) > MAX_ANSWER_CHARS:
        raise UserError(f"That answer is {len(text)} characters; the limit is {MAX_ANSWER_CHARS}.")
    return text


class TeachingService:
    """Turns corrections and feedback into knowledge, at once or after review."""

    def __init__(self, db: Database, knowledge: Knowledge) -> None:
        self.db = db
        self.knowledge = knowledge

    # -- corrections
    async def correct(self, where: Origin, target: StoredAnswer | None, better: str, *, trusted: bool) -> TeachResult:
        """Record ``better`` as the answer to the question behind ``target``."""
        better = _clean_answer(better)
        if target is None or not target.question.strip():
            raise UserError("I can't find which answer to correct: reply to one of my answers, or give its message id.")
        if target.scope != where.scope:
            raise UserError("That answer belongs to another server.")

        def store(s: Session) -> tuple[int, int | None]:
            correction = Correction(
                scope=where.scope,
                message_id=target.message_id,
                question=target.question,
                wrong_answer=target.answer,
                better_answer=better,
                author=where.author,
                status=TeachStatus.APPLIED if trusted else TeachStatus.PENDING,
            )
            s.add(correction)
            s.flush()
            example_id = None
            if trusted:
                example_id = self._add_example(s, where.scope, target.question, better, where.author)
                correction.example_id = example_id
                _announce_taught(s, where.scope, example_id, target.question, better)
            return correction.id, example_id

        correction_id, example_id = await self.db.run(store)
        if example_id is not None:
            self.knowledge.teach(where.scope, example_id, target.question, better)
        status = TeachStatus.APPLIED if trusted else TeachStatus.PENDING
        log.info(
            "correction C%s scope=%s author=%s status=%s answer_message=%s",
            correction_id,
            where.scope,
            where.author,
            status.value,
            target.message_id,
        )
        return TeachResult(f"C{correction_id}", status, target.question, better)

    @staticmethod
    def _add_example(s: Session, scope: str, prompt: str, answer: str, author: str, *, negative: bool = False) -> int:
        example = Example(
            scope=scope,
            prompt=prompt,
            answer=answer,
            author=author,
            source=ExampleSource.FEEDBACK if negative else ExampleSource.CORRECTION,
            polarity=Polarity.NEGATIVE if negative else Polarity.POSITIVE,
        )
        s.add(example)
        s.flush()
        return example.id

    # -- feedback
    async def feedback(
        self, where: Origin, kind: FeedbackKind, *, target: StoredAnswer | None = None, text: str = "", trusted: bool
    ) -> TeachResult:
        """Store 👍 / 👎 on an answer, or a free-text note. A trusted 👎 stops that answer at once."""
        text = text.strip()[:MAX_ANSWER_CHARS]
        if kind is FeedbackKind.TEXT and not text:
            raise UserError("Write your feedback after the command.", see="feedback the answers about X are outdated")
        if kind is not FeedbackKind.TEXT and target is None:
            raise UserError("Reactions count only on my answers.")
        applies_now = kind is FeedbackKind.DOWN and trusted and target is not None and bool(target.question)
        pending = kind is FeedbackKind.DOWN and not trusted

        def store(s: Session) -> tuple[int, int | None]:
            item = Feedback(
                scope=where.scope,
                message_id=target.message_id if target else None,
                author=where.author,
                kind=kind,
                text=text,
                status=TeachStatus.PENDING if pending else TeachStatus.APPLIED,
            )
            s.add(item)
            s.flush()
            example_id = None
            if applies_now and target is not None:
                example_id = self._add_example(
                    s, where.scope, target.question, target.answer, where.author, negative=True
                )
                _announce_taught(s, where.scope, example_id, target.question, target.answer, negative=True)
            return item.id, example_id

        item_id, example_id = await self.db.run(store)
        if example_id is not None and target is not None:
            self.knowledge.teach(where.scope, example_id, target.question, target.answer, negative=True)
        status = TeachStatus.PENDING if pending else TeachStatus.APPLIED
        log.info(
            "feedback F%s scope=%s author=%s kind=%s status=%s",
            item_id,
            where.scope,
            where.author,
            kind.value,
            status.value,
        )
        return TeachResult(f"F{item_id}", status, target.question if target else "", target.answer if target else "")

    async def suggest(self, scope: str, mistakes: list[tuple[str, str, str]], *, author: str, limit: int = 50) -> int:
        """Queue (question, wrong answer, expected answer) found by a test as review items; returns how many
        new items were queued (a suggestion already pending is not queued twice)."""

        def store(s: Session) -> int:
            pending = {
                (c.question, c.better_answer)
                for c in s.scalars(
                    select(Correction).where(Correction.scope == scope, Correction.status == TeachStatus.PENDING)
                )
            }
            added = 0
            for question, wrong, expected in mistakes[:limit]:
                if (question, expected) in pending:
                    continue
                s.add(
                    Correction(
                        scope=scope,
                        question=question,
                        wrong_answer=wrong,
                        better_answer=expected,
                        author=author,
                        status=TeachStatus.PENDING,
                    )
                )
                pending.add((question, expected))
                added += 1
            return added

        added = await self.db.run(store)
        log.info("test suggestions scope=%s queued=%s author=%s", scope, added, author)
        return added

    # -- review queue
    async def pending(self, scope: str, limit: int = 20) -> list[ReviewItem]:
        """Corrections and 👎 waiting for a trainer, oldest first."""

        def load(s: Session) -> list[ReviewItem]:
            items: list[ReviewItem] = []
            for c in s.scalars(
                select(Correction)
                .where(Correction.scope == scope, Correction.status == TeachStatus.PENDING)
                .order_by(Correction.id)
                .limit(limit)
            ):
                items.append(ReviewItem(f"C{c.id}", c.author, c.question, c.wrong_answer, c.better_answer))
            for f in s.scalars(
                select(Feedback)
                .where(Feedback.scope == scope, Feedback.status == TeachStatus.PENDING)
                .order_by(Feedback.id)
                .limit(limit)
            ):
                question, answer = _answer_of(s, f.message_id)
                items.append(ReviewItem(f"F{f.id}", f.author, question, answer, ""))
            return items[:limit]

        return await self.db.run(load)

    async def review(self, scope: str, item_id: str, *, approve: bool, reviewer: str) -> TeachResult:
        """Approve (apply at once, becomes training data) or reject (never used) a pending item."""
        kind, number = _parse_item_id(item_id)

        def apply(
            s: Session, row: Correction | Feedback, item_id: str, *, approve: bool
        ) -> tuple[TeachResult, tuple[int, str, str, bool] | None]:
            if not approve:
                row.status = TeachStatus.REJECTED
                return TeachResult(item_id, TeachStatus.REJECTED), None
            row.status = TeachStatus.APPLIED
            if isinstance(row, Correction):
                row.example_id = self._add_example(s, scope, row.question, row.better_answer, row.author)
                _announce_taught(s, scope, row.example_id, row.question, row.better_answer)
                return TeachResult(item_id, TeachStatus.APPLIED, row.question, row.better_answer), (
                    row.example_id,
                    row.question,
                    row.better_answer,
                    False,
                )
            question, answer = _answer_of(s, row.message_id)
            if not question:
                return TeachResult(item_id, TeachStatus.APPLIED), None
            example_id = self._add_example(s, scope, question, answer, row.author, negative=True)
            _announce_taught(s, scope, example_id, question, answer, negative=True)
            return TeachResult(item_id, TeachStatus.APPLIED, question, answer), (example_id, question, answer, True)

        def decide(s: Session) -> tuple[TeachResult, tuple[int, str, str, bool] | None]:
            # locked until commit: two trainers deciding the same item in two processes decide it once
            row: Correction | Feedback | None = (
                s.get(Correction, number, with_for_update=True)
                if kind == "C"
                else s.get(Feedback, number, with_for_update=True)
            )
            if row is None or row.scope != scope:
                raise UserError(f"There is no review item {item_id} here.")
            if row.status != TeachStatus.PENDING:
                raise UserError(f"{item_id} was already {row.status}.")
            decided = apply(s, row, item_id, approve=approve)
            publish(s, scope, ChangeKind.REVIEW_DECIDED, {"item_id": item_id, "status": decided[0].status.value})
            return decided

        result, change = await self.db.run(decide)
        if change is not None:
            example_id, prompt, answer, negative = change
            self.knowledge.teach(scope, example_id, prompt, answer, negative=negative)
        log.info("review %s scope=%s reviewer=%s status=%s", item_id, scope, reviewer, result.status.value)
        return result

    # -- forgetting and undo
    async def forget(self, scope: str, example_id: int, *, author: str) -> str:
        """Stop using a learned example (it stays in the database, marked removed); returns its prompt."""

        if not id_in_range(example_id):  # beyond what the database can hold (64-bit)
            raise UserError("There is no learned answer with that number here to forget.")

        def remove(s: Session) -> str:
            example = s.get(Example, example_id)
            if example is None or example.scope != scope or example.status != ExampleStatus.ACTIVE:
                raise UserError(f"There is no learned answer #{example_id} here to forget.")
            example.status = ExampleStatus.REMOVED
            publish(s, scope, ChangeKind.FORGOTTEN, {"example_id": example_id})
            return example.prompt

        prompt = await self.db.run(remove)
        self.knowledge.forget(scope, example_id)
        log.info("forget example=%s scope=%s author=%s", example_id, scope, author)
        return prompt

    async def undo_last(self, scope: str, author: str) -> str:
        """Undo ``author``'s newest correction or feedback in ``scope``; returns its item id."""

        def undo(s: Session) -> tuple[str, int | None]:
            correction = s.scalars(
                select(Correction)
                .where(
                    Correction.scope == scope,
                    Correction.author == author,
                    Correction.status.in_([TeachStatus.APPLIED, TeachStatus.PENDING]),
                )
                .order_by(Correction.created_at.desc(), Correction.id.desc())
                .limit(1)
            ).first()
            feedback = s.scalars(
                select(Feedback)
                .where(
                    Feedback.scope == scope,
                    Feedback.author == author,
                    Feedback.status.in_([TeachStatus.APPLIED, TeachStatus.PENDING]),
                )
                .order_by(Feedback.created_at.desc(), Feedback.id.desc())
                .limit(1)
            ).first()
            row: Correction | Feedback | None = correction
            if feedback is not None and (correction is None or feedback.created_at >= correction.created_at):
                row = feedback
            if row is None:
                raise UserError("You have nothing to undo here.")
            row.status = TeachStatus.UNDONE
            label = f"C{row.id}" if isinstance(row, Correction) else f"F{row.id}"
            example_id = row.example_id if isinstance(row, Correction) else _feedback_example(s, row)
            if example_id is not None:
                example = s.get(Example, example_id)
                if example is not None:
                    example.status = ExampleStatus.REMOVED
                publish(s, scope, ChangeKind.FORGOTTEN, {"example_id": example_id})
            return label, example_id

        label, example_id = await self.db.run(undo)
        if example_id is not None:
            self.knowledge.forget(scope, example_id)
        log.info("undo %s scope=%s author=%s", label, scope, author)
        return label


def _announce_taught(
    s: Session, scope: str, example_id: int, prompt: str, answer: str, *, negative: bool = False
) -> None:
    """Tell every process that an example now applies; called last in its transaction (see ``publish``)."""
    kind = ChangeKind.REFUSED if negative else ChangeKind.TAUGHT
    publish(s, scope, kind, {"example_id": example_id, "prompt": prompt, "answer": answer})


def _parse_item_id(item_id: str) -> tuple[str, int]:
    text = item_id.strip().upper()
    if len(text) < 2 or text[0] not in "CF" or not text[1:].isdecimal():
        raise UserError(f"`{show_name(item_id, 40)}` is not a review item id (like C12 or F3).")
    return text[0], parse_id(text[1:], "review item", shown=text)


def _answer_of(s: Session, message_id: int | None) -> tuple[str, str]:
    if message_id is None:
        return "", ""
    answer = s.get(Message, message_id)
    if answer is None:
        return "", ""
    question = s.get(Message, answer.reply_to_id) if answer.reply_to_id else None
    return (question.text if question else ""), answer.text


def _feedback_example(s: Session, feedback: Feedback) -> int | None:
    """The negative example a 👎 created, if any (same author, question and answer)."""
    question, answer = _answer_of(s, feedback.message_id)
    if not question:
        return None
    return s.scalars(
        select(Example.id)
        .where(
            Example.scope == feedback.scope,
            Example.author == feedback.author,
            Example.prompt == question,
            Example.answer == answer,
            Example.polarity == Polarity.NEGATIVE,
            Example.status == ExampleStatus.ACTIVE,
        )
        .order_by(Example.id.desc())
        .limit(1)
    ).first()
