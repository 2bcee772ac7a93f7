"""The embedded local backend as a ``ChatModel``: answers from the knowledge, off the event loop."""

from __future__ import annotations

import asyncio

from teachbot.answering.knowledge import Knowledge
from teachbot.answering.protocols import Answer, Question


class LocalChatModel:
    """Answers with the active local model of the question's scope plus what was taught since."""

    name = "local"

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge

    async def answer(self, question: Question) -> Answer:
        return await asyncio.to_thread(self.knowledge.answer, question.text, question.scope)
