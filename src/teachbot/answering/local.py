"""The embedded local backend as a ``ChatModel``: answers from the knowledge, off the event loop."""

from __future__ import annotations

from teachbot.answering.batching import AnswerQueue
from teachbot.answering.knowledge import Knowledge
from teachbot.answering.protocols import Answer, Question


class LocalChatModel:
    """Answers with the active local model of the question's scope plus what was taught since."""

    name = "local"

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.queue = AnswerQueue(knowledge)  # questions arriving together are answered in one trip

    async def answer(self, question: Question) -> Answer:
        return await self.queue.answer(question.text, question.scope)
