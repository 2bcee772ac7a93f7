"""The OpenAI-compatible client built from ``Settings``, and SDK errors turned into safe user replies.

The official SDK already retries 429, 408, 409 and 5xx answers (and connection errors) with
exponential backoff, honouring ``Retry-After``/``retry-after-ms``; we only configure it. Whatever
fails after those retries becomes a ``UserError`` whose text never contains the API key; what the
server said about a bad request or an unknown model is quoted, clipped and masked. ``llm_timeout_seconds``
bounds a whole answer, retries included: each request gets it as its own timeout and the chat model
enforces it as a deadline across them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import openai
from openai import AsyncOpenAI

from teachbot.config import Settings
from teachbot.errors import UserError
from teachbot.logs import MASK, SecretFilter

__all__ = ["NO_API_KEY", "LLMError", "build_client", "llm_errors", "server_said", "timeout_error", "user_error_for"]

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


def user_error_for(
    exc: openai.OpenAIError,
    *,
    model: str,
    timeout: float | None = None,
    secrets: Iterable[str] = (),
    answering: bool = False,
) -> LLMError:
    """The reply a user sees for an SDK error; details go to the log only. ``answering``: the error came
    while the answer was being streamed (the server stopped mid-answer). What a server says about a bad
    request or an unknown model is quoted, clipped and with secrets masked."""
    if isinstance(exc, openai.APITimeoutError):
        return timeout_error(timeout, answering=answering)
    if answering and isinstance(exc, openai.APIConnectionError):  # the connection broke mid-answer
        return LLMError(
            "The answer was interrupted: the language model server stopped sending it before the end. Please ask again."
        )
    if isinstance(exc, openai.APIConnectionError):
        return LLMError("The language model server cannot be reached right now. Please try again later.")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc.status_code, model, server_said(exc.body, secrets))
    if isinstance(exc, openai.APIError):  # an error event inside a stream, or an invalid response
        said = server_said(exc.body, secrets)
        quoted = f" It said: “{said}”" if said else ""
        return LLMError(f"The language model server sent an error instead of an answer.{quoted} Please try again.")
    return LLMError("The language model could not answer. Please try again later.")


def timeout_error(timeout: float | None, *, answering: bool = False) -> LLMError:
    """The reply when ``llm_timeout_seconds`` ran out (retries included)."""
    limit = f" (more than {timeout:g} s)" if timeout else ""
    what = "to finish its answer" if answering else "to answer"
    return LLMError(f"The language model took too long {what}{limit}. Please try again later.")


def server_said(body: object, secrets: Iterable[str] = ()) -> str:
    """The message in an error body (OpenAI's ``{"message": …}``, Ollama's plain string), on one line,
    clipped, with the API key and anything shaped like a secret masked; empty when there is none."""
    message: object = body
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("detail") or ""
        if isinstance(message, dict):
            message = message.get("message") or ""
    if not isinstance(message, str) or message.lstrip().startswith("<"):  # nothing, or an HTML error page
        return ""
    text = " ".join(message.split())
    text = SecretFilter(secrets).redact(text)
    text = _KEY_FRAGMENT.sub(MASK, text)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= MAX_SAID else text[: MAX_SAID - 1] + "…"


_KEY_FRAGMENT = re.compile(r"\b(?:sk|key|pk|rk)-\S*", re.IGNORECASE)  # partial keys servers echo ("sk-abc****")
MAX_SAID = 200
_MODEL_UNKNOWN = re.compile(
    r"model.*(not found|does not exist|not exist|unknown|no such|not available|invalid)"
    r"|(unknown|invalid|no such) model",
    re.IGNORECASE,
)
_TOO_LARGE = re.compile(r"context length|context window|too (long|large|many tokens)|maximum|exceed", re.IGNORECASE)


def _status_error(status: int, model: str, said: str) -> LLMError:
    quoted = f" It said: “{said}”" if said else ""
    if status in (401, 403):  # never quoted: servers echo parts of the key
        return LLMError(
            f"The language model server refused teachbot's request (HTTP {status}): the API key is "
            "missing, wrong or not allowed. An admin should check the llm_api_key setting.",
            status=status,
        )
    if status == 413 or (status in (400, 422) and _TOO_LARGE.search(said)):
        return LLMError(
            f"The language model server refused the request as too large (HTTP {status}).{quoted} "
            "Try a shorter question or fewer attachments.",
            status=status,
        )
    if status == 404 or (status in (400, 422) and _MODEL_UNKNOWN.search(said)):
        return LLMError(
            f"The language model server does not know the model '{model}' (HTTP {status}).{quoted} "
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
    return LLMError(f"The language model server rejected the request (HTTP {status}).{quoted}", status=status)


def describe(exc: BaseException) -> str:
    """A one-line description for logs: type, status and the server's message (never the key)."""
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}" + (f" {status}" if status else "") + f": {message[:300]}"


@contextmanager
def llm_errors(
    model: str, *, timeout: float | None = None, secrets: Iterable[str] = (), answering: bool = False
) -> Iterator[None]:
    """Run SDK calls, turning any SDK error (and the ``llm_timeout_seconds`` deadline running out, as
    ``TimeoutError``) into an ``LLMError`` after logging it."""
    try:
        yield
    except openai.OpenAIError as exc:
        log.warning("LLM request to model %s failed: %s", model, describe(exc))
        raise user_error_for(exc, model=model, timeout=timeout, secrets=secrets, answering=answering) from exc
    except TimeoutError as exc:
        log.warning("LLM request to model %s ran out of its %s s", model, timeout)
        raise timeout_error(timeout, answering=answering) from exc
