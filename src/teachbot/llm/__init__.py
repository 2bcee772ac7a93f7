"""The OpenAI-compatible LLM backend: client, prompts, chat model, quotas and fine-tuning jobs."""

from teachbot.llm.chat_model import OpenAIChatModel, Retrieve
from teachbot.llm.client import LLMError, build_client
from teachbot.llm.finetune import FineTuner, FineTuningUnavailable, JobPlan, JobStatus
from teachbot.llm.hybrid import HybridChatModel
from teachbot.llm.prompt import BuiltPrompt, PromptBuilder
from teachbot.llm.quota import InMemoryUsageLedger, QuotaExceeded, QuotaGuard, UsageLedger
from teachbot.llm.stream import AnswerStream, StreamingChatModel

__all__ = [
    "AnswerStream",
    "BuiltPrompt",
    "FineTuner",
    "FineTuningUnavailable",
    "HybridChatModel",
    "InMemoryUsageLedger",
    "JobPlan",
    "JobStatus",
    "LLMError",
    "OpenAIChatModel",
    "PromptBuilder",
    "QuotaExceeded",
    "QuotaGuard",
    "Retrieve",
    "StreamingChatModel",
    "UsageLedger",
    "build_client",
]
