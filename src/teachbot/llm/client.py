"""The OpenAI-compatible client built from ``Settings``, and SDK errors turned into safe user replies.

The official SDK already retries 429, 408, 409 and 5xx answers (and connection errors) with
exponential backoff, honouring ``Retry-After``/``retry-after-ms``; we only configure it. Whatever
fails after those retries becomes a ``UserError`` whose text never contains the API key or the
server's own message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import openai
from openai import AsyncOpenAI

from teachbot.config import Settings
from teachbot.errors import UserError

__all__ = ["NO_API_KEY", "LLMError", "build_client", "llm_errors", "user_error_for"]

log = logging.getLogger(__name__)

# Local servers (Ollama, llama.cpp, vLLM, LM Studio) need no key, but the SDK refuses to start
# without one and would otherwise fall back to OPENAI_API_KEY from the environment.
NO_API_KEY = "no-key-needed"


class LLMError(UserError):
    """The language model server could not answer; the message says why without secrets."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def build_client(settings: Settings) -> AsyncOpenAI:
    """An ``AsyncOpenAI`` for ``llm_base_url`` with the configured timeout and retry budget."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key is not None else ""
    return AsyncOpenAI(
        base_url=settings.llm_base_url,
        api_key=key or NO_API_KEY,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )


def user_error_for(exc: openai.OpenAIError, *, model: str, timeout: float | None = None) -> LLMError:
    """The reply a user sees for an SDK error; details go to the log only."""
    if isinstance(exc, openai.APITimeoutError):
        limit = f" (more than {timeout:g} s)" if timeout else ""
        return LLMError(f"The language model took too long to answer{limit}. Please try again later.")
    if isinstance(exc, openai.APIConnectionError):
        return LLMError("The language model server cannot be reached right now. Please try again later.")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc.status_code, model)
    if isinstance(exc, openai.APIError):  # an error event inside a stream, or an invalid response
        return LLMError("The language model server sent an error instead of an answer. Please try again.")
    return LLMError("The language model could not answer. Please try again later.")


def _status_error(status: int, model: str) -> LLMError:
    if status in (401, 403):
        return LLMError(
            f"The language model server refused teachbot's request (HTTP {status}): the API key is "
            "missing, wrong or not allowed. An admin should check the llm_api_key setting.",
            status=status,
        )
    if status == 404:
        return LLMError(
            f"The language model server does not know the model '{model}' (HTTP 404). "
            "An admin should check the llm_model and llm_base_url settings.",
            status=status,
        )
    if status == 429:
        return LLMError(
            "The language model server is rate-limiting teachbot (HTTP 429), even after retries. "
            "Please try again in a minute.",
            status=status,
        )
    if status >= 500:
        return LLMError(
            f"The language model server had an internal error (HTTP {status}). Please try again later.",
            status=status,
        )
    if status in (400, 413, 422):
        return LLMError(
            f"The language model server rejected the request (HTTP {status}); the question or its "
            "attachments may be too large for the model.",
            status=status,
        )
    return LLMError(f"The language model server refused the request (HTTP {status}).", status=status)


def describe(exc: BaseException) -> str:
    """A one-line description for logs: type, status and the server's message (never the key)."""
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}" + (f" {status}" if status else "") + f": {message[:300]}"


@contextmanager
def llm_errors(model: str, *, timeout: float | None = None) -> Iterator[None]:
    """Run SDK calls, turning any SDK error into an ``LLMError`` after logging it."""
    try:
        yield
    except openai.OpenAIError as exc:
        log.warning("LLM request to model %s failed: %s", model, describe(exc))
        raise user_error_for(exc, model=model, timeout=timeout) from exc
