"""A small OpenAI-compatible server on loopback, for tests that go through the real ``openai`` SDK.

Shapes follow openai-python 3.x types: ``ChatCompletion``, ``ChatCompletionChunk`` (SSE ``data:``
lines ending with ``data: [DONE]``), ``FileObject``, ``FineTuningJob``, ``FineTuningJobEvent`` and
cursor pages (``{"object": "list", "data": [...], "has_more": false}``). Every request is recorded;
errors and delays are programmable; fine-tuning jobs follow a scripted life cycle, one step per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from teachbot.tokens import count_chat_tokens, count_tokens

__all__ = ["TEST_API_KEY", "FakeOpenAIServer", "Recorded", "echo_reply"]

TEST_API_KEY = "sk-test-very-secret-key-1234"  # tests assert it never reaches a user-facing message

Reply = Callable[[dict[str, Any]], str]
LIFE_CYCLE = ("validating_files", "queued", "running")


def echo_reply(body: dict[str, Any]) -> str:
    """The default reply: repeats the last user message's text, so tests can see what was asked."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return f"You said: {content}"
    return "Hello."


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class _Failure:
    path: str
    status: int
    body: Any
    headers: dict[str, str]
    times: int


@dataclass
class _Job:
    data: dict[str, Any]
    outcome: str
    step: int = 0
    polled: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)


class FakeOpenAIServer:
    """Serves ``/v1`` on 127.0.0.1 at a free port; set attributes between requests to change behaviour."""

    def __init__(self) -> None:
        self.reply: Reply = echo_reply
        self.requests: list[Recorded] = []
        self.delay = 0.0  # seconds before answering chat completions
        self.send_usage = True  # usage in responses and, when asked, in a final stream chunk
        self.reject_stream_options = False  # answer 400 to stream_options, like some older servers
        self.known_models: set[str] | None = None  # set: other models get ``unknown_model_status``
        self.listed_models = ["fake-model", "gpt-4o-mini"]  # GET /v1/models (known_models when set)
        self.unknown_model_status = 404  # OpenAI, vLLM and Ollama say 404; some proxies say 400
        self.cut_stream_after: int | None = None  # drop the connection after this many streamed pieces
        self.piece_delay = 0.0  # seconds between streamed pieces
        self.fine_tuning = True  # False: every files / fine-tuning route is a plain 404, like Ollama
        self.job_outcome = "succeeded"  # or "failed"
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, _Job] = {}
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)
        self._clock = itertools.count(1_700_000_000)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- control
    async def start(self) -> str:
        app = web.Application(middlewares=[self._record_and_fail])
        app.add_routes(
            [
                web.post("/v1/chat/completions", self._chat),
                web.get("/v1/models", self._models),
                web.post("/v1/files", self._upload),
                web.get("/v1/files/{id}", self._file),
                web.post("/v1/fine_tuning/jobs", self._create_job),
                web.get("/v1/fine_tuning/jobs/{id}", self._job),
                web.get("/v1/fine_tuning/jobs/{id}/events", self._events),
                web.post("/v1/fine_tuning/jobs/{id}/cancel", self._cancel),
            ]
        )
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    async def close(self) -> None:
        self._closing.set()  # slow handlers stop waiting
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail(
        self,
        status: int,
        *,
        path: str = "/v1/chat/completions",
        times: int = 1,
        message: str = "",
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` requests to ``path`` (a prefix) get ``status``; 429/5xx ask for a 10 ms retry."""
        if body is None:
            body = {
                "error": {
                    "message": message or f"fake error {status}",
                    "type": "fake_error",
                    "param": None,
                    "code": None,
                }
            }
        extra = {"retry-after-ms": "10"} if status == 429 or status >= 500 else {}
        self._failures.append(_Failure(path, status, body, {**extra, **(headers or {})}, times))

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests_to("/v1/chat/completions")]

    # -- middleware: record, then scripted failures
    @web.middleware
    async def _record_and_fail(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body: Any = {k: (v.file.read() if isinstance(v, web.FileField) else v) for k, v in form.items()}
        else:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.path, body, dict(request.headers)))
        for failure in self._failures:
            if request.path.startswith(failure.path) and failure.times > 0:
                failure.times -= 1
                if isinstance(failure.body, str):
                    return web.Response(status=failure.status, text=failure.body, headers=failure.headers)
                return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        if not self.fine_tuning and request.path.startswith(("/v1/files", "/v1/fine_tuning")):
            return web.Response(status=404, text="404 page not found")
        return await handler(request)

    # -- chat
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = self.requests[-1].body
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.delay)
        if self.known_models is not None and body.get("model") not in self.known_models:
            return web.json_response(
                {
                    "error": {
                        "message": f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "model_not_found",
                    }
                },
                status=self.unknown_model_status,
            )
        if body.get("stream") and self.reject_stream_options and "stream_options" in body:
            return web.json_response(
                {
                    "error": {
                        "message": "Unrecognized request argument: stream_options",
                        "type": "invalid_request_error",
                        "param": "stream_options",
                        "code": None,
                    }
                },
                status=400,
            )
        text = self.reply(body)
        usage = {"prompt_tokens": count_chat_tokens(body["messages"]), "completion_tokens": count_tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        ident, created = f"chatcmpl-{next(self._ids)}", next(self._clock)
        if not body.get("stream"):
            reply = {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
            }
            if self.send_usage:
                reply["usage"] = usage
            return web.json_response(reply)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

        async def send(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": choices,
                **(extra or {}),
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        try:
            await response.prepare(request)
            await send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            for sent, piece in enumerate(_pieces(text)):
                if sent == self.cut_stream_after:
                    assert request.transport is not None
                    request.transport.abort()  # mid-answer, as when a proxy or the server dies
                    return response
                if self.piece_delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), self.piece_delay)
                await send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            await send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if self.send_usage and (body.get("stream_options") or {}).get("include_usage"):
                await send([], {"usage": usage})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:  # the client gave up (its deadline) while we were still streaming
            pass
        return response

    # -- models
    async def _models(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TEST_API_KEY}":
            return web.json_response(
                {
                    "error": {
                        "message": "Incorrect API key provided.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        names = sorted(self.known_models) if self.known_models is not None else self.listed_models
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "fake"} for name in names
                ],
            }
        )

    # -- files
    async def _upload(self, request: web.Request) -> web.Response:
        form = self.requests[-1].body
        ident = f"file-{next(self._ids)}"
        data = form["file"]
        self.files[ident] = data
        return web.json_response(self._file_object(ident, form.get("purpose", "fine-tune")))

    async def _file(self, request: web.Request) -> web.Response:
        ident = request.match_info["id"]
        if ident not in self.files:
            return _not_found(f"No such File object: {ident}")
        return web.json_response(self._file_object(ident, "fine-tune"))

    def _file_object(self, ident: str, purpose: str) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "file",
            "bytes": len(self.files[ident]),
            "created_at": next(self._clock),
            "filename": "train.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    # -- fine-tuning jobs
    async def _create_job(self, request: web.Request) -> web.Response:
        body = self.requests[-1].body
        if body.get("training_file") not in self.files:
            return web.json_response(
                {
                    "error": {
                        "message": "invalid training_file",
                        "type": "invalid_request_error",
                        "param": "training_file",
                        "code": None,
                    }
                },
                status=400,
            )
        ident = f"ftjob-{next(self._ids)}"
        method = body.get("method") or {"type": "supervised"}
        data = {
            "id": ident,
            "object": "fine_tuning.job",
            "created_at": next(self._clock),
            "model": body["model"],
            "fine_tuned_model": None,
            "finished_at": None,
            "organization_id": "org-fake",
            "result_files": [],
            "status": "validating_files",
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "seed": 42,
            "trained_tokens": None,
            "error": None,
            "hyperparameters": {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"},
            "method": method,
        }
        job = _Job(data, self.job_outcome)
        self.jobs[ident] = job
        self._event(job, "info", f"Validating training file: {body['training_file']}")
        return web.json_response(data)

    async def _job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return _not_found("No such fine-tuning job")
        if job.polled:  # the first poll still sees validating_files
            self._advance(job)
        job.polled = True
        return web.json_response(job.data)

    async def _events(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return _not_found("No such fine-tuning job")
        limit = int(request.query.get("limit", "20"))
        newest_first = job.events[::-1]
        return web.json_response(
            {"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit}
        )

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return _not_found("No such fine-tuning job")
        if job.data["status"] in ("succeeded", "failed", "cancelled"):
            return web.json_response(
                {
                    "error": {
                        "message": "Job has already finished",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
                status=400,
            )
        job.data.update(status="cancelled", finished_at=next(self._clock))
        self._event(job, "info", "Fine-tuning job cancelled")
        return web.json_response(job.data)

    def _advance(self, job: _Job) -> None:
        """One step of the life cycle per poll: validating_files → queued → running → outcome."""
        if job.data["status"] in ("succeeded", "failed", "cancelled"):
            return
        job.step += 1
        if job.step < len(LIFE_CYCLE):
            job.data["status"] = LIFE_CYCLE[job.step]
            self._event(job, "info", "Job queued" if job.step == 1 else "Fine-tuning job started")
            return
        job.data["finished_at"] = next(self._clock)
        if job.outcome == "succeeded":
            self._event(job, "info", "Step 3/3: training loss=0.12", kind="metrics")
            job.data.update(
                status="succeeded",
                trained_tokens=1234,
                fine_tuned_model=f"ft:{job.data['model']}:teachbot:{job.data['id']}",
            )
            self._event(job, "info", "The job has successfully completed")
        else:
            job.data.update(
                status="failed",
                error={
                    "code": "invalid_training_file",
                    "param": "training_file",
                    "message": "The training file has too few examples.",
                },
            )
            self._event(job, "error", "The job failed: the training file has too few examples.")

    def _event(self, job: _Job, level: str, message: str, kind: str = "message") -> None:
        job.events.append(
            {
                "id": f"ftevent-{next(self._ids)}",
                "object": "fine_tuning.job.event",
                "created_at": next(self._clock),
                "level": level,
                "message": message,
                "data": {},
                "type": kind,
            }
        )


def _pieces(text: str) -> list[str]:
    """Split a reply into word-sized deltas, as servers stream them."""
    words = text.split(" ")
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]


def _not_found(message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}, status=404
    )
