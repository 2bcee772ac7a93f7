"""Fine-tuning jobs on servers that offer ``/fine_tuning/jobs`` (OpenAI and a few compatible ones).

``prepare`` renders the JSONL in memory and estimates its size and cost; ``start`` uploads it and
creates the job; ``follow`` polls the job and its events until it ends; ``cancel`` stops it. Servers
without fine-tuning (Ollama, llama.cpp, LM Studio, most vLLM setups) raise ``FineTuningUnavailable``,
which points at the JSONL export instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from openai.types.fine_tuning import FineTuningJob

from teachbot.datasets.examples import Example
from teachbot.errors import UserError
from teachbot.llm.client import describe, user_error_for
from teachbot.tokens import count_chat_tokens

__all__ = [
    "TRAINING_PRICES_PER_MILLION",
    "FineTuner",
    "FineTuningUnavailable",
    "JobEvent",
    "JobPlan",
    "JobStatus",
    "Method",
]

log = logging.getLogger(__name__)

Method = Literal["supervised", "dpo"]
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
#: Status polls in a row that may fail for a passing reason (the network, a 5xx, a 429: after the client's
#: own retries) before following a job gives up. The job runs on at the server for hours whatever our
#: connection does, so a blip must not mark the run failed.
POLL_FAILURES = 20

# USD per 1M training tokens (OpenAI's published prices for supervised fine-tuning in 2025). An
# estimate only: prices change, DPO may be billed differently, and local servers cost nothing.
TRAINING_PRICES_PER_MILLION: dict[str, float] = {
    "gpt-4o-mini": 3.00,
    "gpt-4o": 25.00,
    "gpt-4.1": 25.00,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1-nano": 1.50,
    "gpt-3.5-turbo": 8.00,
}
REFUSAL_WORDS = ("not available", "not supported", "cannot", "not allowed", "access")


class FineTuningUnavailable(UserError):
    """The server does not offer fine-tuning (or not to this key, or not for this model)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"Fine-tuning is not available on this server ({reason}); export the data to fine-tune elsewhere.",
            see="datasets export NAME openai-chat",
        )
        self.reason = reason


@dataclass(frozen=True, slots=True)
class JobPlan:
    """A fine-tuning job ready to start: the files' bytes and what it will roughly cost."""

    method: Method
    model: str
    training_jsonl: bytes
    validation_jsonl: bytes | None
    example_count: int
    validation_count: int
    training_tokens: int  # one pass over the training file
    epochs: int
    estimated_cost_usd: float | None  # None when no price is known for the model
    skipped: int = 0
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        """One paragraph a trainer reads before confirming the job."""
        if self.estimated_cost_usd is None:
            cost = "no price known for this model, so no cost estimate"
        else:
            cost = f"estimated cost ≈ ${self.estimated_cost_usd:,.2f} (an estimate: the server's billing decides)"
        lines = [
            f"{self.method} fine-tuning of {self.model}: {self.example_count} examples"
            + (f" (+{self.validation_count} for validation)" if self.validation_count else "")
            + f", {self.training_tokens:,} tokens × {self.epochs} epochs; {cost}.",
            *self.warnings,
        ]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: str
    created_at: int
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's state at one poll, with the events that are new since the previous one."""

    job_id: str
    status: str
    events: tuple[JobEvent, ...] = ()
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class FineTuner:
    """Prepares, starts, follows and cancels fine-tuning jobs of one base model."""

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        system_prompt: str | None = None,
        prices: dict[str, float] | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.system_prompt = system_prompt
        self.prices = TRAINING_PRICES_PER_MILLION if prices is None else prices

    # -- prepare
    def prepare(
        self,
        examples: Sequence[Example],
        validation_examples: Sequence[Example] = (),
        method: Method = "supervised",
        *,
        epochs: int = 3,
    ) -> JobPlan:
        """Render the JSONL lines and count them; nothing is sent to the server."""
        lines, skipped = self._render(examples, method)
        if not lines:
            need = "examples with a rejected answer (preference pairs)" if method == "dpo" else "examples"
            raise UserError(f"Nothing to fine-tune on: no {need} in the selected data.")
        validation, _ = self._render(validation_examples, method)
        tokens = sum(_line_tokens(line) for line in lines)
        price = self.prices.get(self.model)
        warnings: list[str] = []
        if len(lines) < 10:
            warnings.append("OpenAI requires at least 10 training examples; 50-100 usually help more.")
        if skipped:
            why = "no rejected answer" if method == "dpo" else "empty or weight 0"
            warnings.append(f"{skipped} example(s) left out ({why}).")
        return JobPlan(
            method=method,
            model=self.model,
            training_jsonl=_jsonl(lines),
            validation_jsonl=_jsonl(validation) if validation else None,
            example_count=len(lines),
            validation_count=len(validation),
            training_tokens=tokens,
            epochs=epochs,
            estimated_cost_usd=None if price is None else round(tokens * epochs * price / 1_000_000, 2),
            skipped=skipped,
            warnings=tuple(warnings),
        )

    def _render(self, examples: Sequence[Example], method: Method) -> tuple[list[dict[str, Any]], int]:
        lines: list[dict[str, Any]] = []
        skipped = 0
        for example in examples:
            if not example.prompt.strip() or not example.answer.strip() or example.weight <= 0:
                skipped += 1
                continue
            system = example.system or self.system_prompt
            head = [{"role": "system", "content": system}] if system else []
            head.append({"role": "user", "content": example.prompt})
            if method == "supervised":
                lines.append({"messages": [*head, {"role": "assistant", "content": example.answer}]})
            elif example.rejected and example.rejected.strip():
                lines.append(
                    {
                        "input": {"messages": head},
                        "preferred_output": [{"role": "assistant", "content": example.answer}],
                        "non_preferred_output": [{"role": "assistant", "content": example.rejected}],
                    }
                )
            else:
                skipped += 1
        return lines, skipped

    # -- start, follow, cancel
    async def start(self, plan: JobPlan) -> str:
        """Upload the files and create the job; returns the job id."""
        with _fine_tuning_errors(self.model, starting=True):
            training = await self.client.files.create(
                file=("teachbot-train.jsonl", plan.training_jsonl, "application/jsonl"), purpose="fine-tune"
            )
            validation_id: str | openai.Omit = openai.omit
            if plan.validation_jsonl:
                validation = await self.client.files.create(
                    file=("teachbot-validation.jsonl", plan.validation_jsonl, "application/jsonl"), purpose="fine-tune"
                )
                validation_id = validation.id
            hyper = {"n_epochs": plan.epochs}
            method: Any = (
                {"type": "dpo", "dpo": {"hyperparameters": hyper}}
                if plan.method == "dpo"
                else {"type": "supervised", "supervised": {"hyperparameters": hyper}}
            )
            job = await self.client.fine_tuning.jobs.create(
                model=plan.model,
                training_file=training.id,
                validation_file=validation_id,
                method=method,
                suffix="teachbot",
            )
        log.info("fine-tuning job %s started (%s, %d examples)", job.id, plan.method, plan.example_count)
        return job.id

    async def status(self, job_id: str) -> JobStatus:
        with _fine_tuning_errors(self.model):
            job = await self.client.fine_tuning.jobs.retrieve(job_id)
        return _status(job)

    async def follow(self, job_id: str, *, poll_interval: float = 15.0) -> AsyncIterator[JobStatus]:
        """Yield the job's status whenever it changes or new events arrive, until it ends."""
        seen: set[str] = set()
        last: str | None = None
        failures = 0
        while True:
            try:
                with _fine_tuning_errors(self.model):
                    job = await self.client.fine_tuning.jobs.retrieve(job_id)
                    page = await self.client.fine_tuning.jobs.list_events(job_id, limit=100)
            except UserError as exc:
                if not _passing(exc.__cause__) or failures >= POLL_FAILURES:
                    raise
                failures += 1
                log.warning("fine-tuning job %s: status unavailable (%s); asking again", job_id, exc)
                await asyncio.sleep(poll_interval)
                continue
            failures = 0
            fresh = [e for e in page.data if e.id not in seen]
            seen.update(e.id for e in fresh)
            fresh.sort(key=lambda e: e.created_at)  # the server lists newest first
            events = tuple(JobEvent(e.id, e.created_at, e.level, e.message) for e in fresh)
            if events or job.status != last:
                last = job.status
                yield _status(job, events)
            if job.status in TERMINAL:
                return
            await asyncio.sleep(poll_interval)

    async def cancel(self, job_id: str) -> JobStatus:
        with _fine_tuning_errors(self.model):
            job = await self.client.fine_tuning.jobs.cancel(job_id)
        return _status(job)


def _passing(exc: BaseException | None) -> bool:
    """Whether a failed request may well succeed later: no connection, a timeout, a 429, a server error."""
    if isinstance(exc, openai.APIConnectionError | openai.RateLimitError):
        return True
    return isinstance(exc, openai.InternalServerError) and exc.status_code != 501  # 501: no such endpoint


def _status(job: FineTuningJob, events: tuple[JobEvent, ...] = ()) -> JobStatus:
    error = None
    if job.error is not None and (job.error.message or job.error.code):
        error = job.error.message or job.error.code
    return JobStatus(
        job_id=job.id,
        status=job.status,
        events=events,
        fine_tuned_model=job.fine_tuned_model,
        trained_tokens=job.trained_tokens,
        error=error,
    )


def _line_tokens(line: dict[str, Any]) -> int:
    if "messages" in line:
        return count_chat_tokens(line["messages"])
    return count_chat_tokens([*line["input"]["messages"], *line["preferred_output"], *line["non_preferred_output"]])


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")


def _refusal(exc: openai.APIStatusError, starting: bool) -> str | None:
    """Why the server cannot fine-tune, when the error says so; None for other errors."""
    said = (exc.message or "").lower()
    openai_style = isinstance(exc.body, dict) and ("message" in exc.body or "error" in exc.body)
    if exc.status_code in (404, 405, 501) and (starting or not openai_style):
        return f"HTTP {exc.status_code}: the server has no fine-tuning endpoint"
    if exc.status_code == 403:
        return "HTTP 403: this API key may not fine-tune"
    if "fine-tun" in said and any(w in said for w in REFUSAL_WORDS):
        return f"HTTP {exc.status_code}: the server says fine-tuning is not available for this account or model"
    return None


@contextmanager
def _fine_tuning_errors(model: str, *, starting: bool = False) -> Iterator[None]:
    try:
        yield
    except openai.APIStatusError as exc:
        log.warning("fine-tuning request failed: %s", describe(exc))
        reason = _refusal(exc, starting)
        if reason:
            raise FineTuningUnavailable(reason) from exc
        if exc.status_code == 404:
            raise UserError("The server does not know that fine-tuning job.") from exc
        raise user_error_for(exc, model=model) from exc
    except openai.OpenAIError as exc:
        log.warning("fine-tuning request failed: %s", describe(exc))
        raise user_error_for(exc, model=model) from exc
