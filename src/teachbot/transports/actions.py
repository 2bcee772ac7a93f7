"""What each bot command does, once, for every transport: a service call and the text to show.

The console and the Discord cogs only find the arguments (a replied-to message, an attachment, a
console line) and deliver the returned text; the wording of replies lives here.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from teachbot.answering.chat import StoredAnswer, Where
from teachbot.answering.protocols import Question
from teachbot.app import App
from teachbot.config import ActivationPolicy, Backend
from teachbot.datasets.examples import Example
from teachbot.datasets.formats import parse_examples, write_examples
from teachbot.datasets.safezip import read_zip_members
from teachbot.datasets.service import dataset_name_for
from teachbot.datasets.validation import ValidationReport, validate_file
from teachbot.errors import UserError
from teachbot.paths import safe_filename
from teachbot.teaching.service import FeedbackKind
from teachbot.training.evaluation import EvaluationReport
from teachbot.training.service import MIN_HOLDOUT_EXAMPLES, Progress
from teachbot.transports.catalogue import BY_NAME

MAX_JSON_TEST_CHARS = 100_000


@dataclass(frozen=True, slots=True)
class Upload:
    """A dataset file handed to a command (a Discord attachment, or a file read by the console)."""

    filename: str
    data: bytes


def usage(prefix: str, name: str) -> UserError:
    spec = BY_NAME[name]
    return UserError(f"Usage: `{f'{prefix}{spec.name} {spec.usage}'.strip()}`")


def split_leading_id(text: str) -> tuple[int | None, str]:
    """``"12 better answer"`` → ``(12, "better answer")``; no leading number → ``(None, text)``."""
    head, _, tail = text.strip().partition(" ")
    if head.isdigit() and tail.strip():
        return int(head), tail.strip()
    return None, text.strip()


class Actions:
    """Transport-neutral command behaviour over the app's services."""

    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def prefix(self) -> str:
        return self.app.settings.command_prefix

    # -- teaching
    async def correct(self, where: Where, target: StoredAnswer | None, better: str, *, trusted: bool) -> str:
        return (await self.app.teaching.correct(where, target, better, trusted=trusted)).describe()

    async def feedback(self, where: Where, text: str, *, trusted: bool) -> str:
        result = await self.app.teaching.feedback(where, FeedbackKind.TEXT, text=text, trusted=trusted)
        return f"Thanks, your feedback {result.item_id} is stored."

    async def rate(self, where: Where, target: StoredAnswer | None, *, good: bool, trusted: bool) -> str:
        kind = FeedbackKind.UP if good else FeedbackKind.DOWN
        result = await self.app.teaching.feedback(where, kind, target=target, trusted=trusted)
        return f"Thanks, your {'👍' if good else '👎'} ({result.item_id}) is stored."

    async def undo(self, where: Where) -> str:
        return await self.app.teaching.undo_last(where.scope, where.author)

    async def forget(self, where: Where, target: StoredAnswer | None, argument: str) -> str:
        text = argument.strip().lstrip("#")
        if text.isdigit():
            example_id = int(text)
        elif target is not None and target.example_id is not None:
            example_id = target.example_id
        else:
            raise UserError("Reply to the answer to forget, or give its example id (`!forget 12`).")
        return await self.app.teaching.forget(where.scope, example_id, author=where.author)

    async def review_list(self, scope: str) -> str:
        items = await self.app.teaching.pending(scope)
        if not items:
            return "Nothing waits for review."
        lines = [item.describe() for item in items]
        lines.append(f"Approve or reject with `{self.prefix}approve ID` / `{self.prefix}reject ID`.")
        return "\n".join(lines)

    async def review(self, where: Where, item_id: str, *, approve: bool) -> str:
        if not item_id.strip():
            raise usage(self.prefix, "approve" if approve else "reject")
        result = await self.app.teaching.review(where.scope, item_id, approve=approve, reviewer=where.author)
        return result.describe()

    # -- datasets and training
    def _check_size(self, upload: Upload) -> None:
        limit = self.app.settings.max_upload_bytes
        if len(upload.data) > limit:
            raise UserError(f"{upload.filename} is {len(upload.data):,} bytes; the limit is {limit:,}.")

    def unpack(self, upload: Upload) -> list[Upload]:
        """A zip upload becomes its dataset files (checked against path tricks and zip bombs)."""
        self._check_size(upload)
        if not upload.filename.lower().endswith(".zip"):
            return [upload]
        members = read_zip_members(upload.data, max_total_bytes=self.app.settings.max_upload_bytes, max_members=50)
        files = [Upload(name.rsplit("/", 1)[-1], data) for name, data in sorted(members.items())]
        if not files:
            raise UserError(f"{upload.filename} holds no files.")
        return files

    async def import_upload(self, where: Where, upload: Upload, name: str | None = None) -> str:
        """Import one uploaded dataset file (all or nothing); ``train`` validates it first."""
        examples = await asyncio.to_thread(parse_examples, upload.data, source=upload.filename)
        info = await self.app.datasets.import_examples(
            where.scope,
            name or dataset_name_for(upload.filename),
            examples,
            source_name=upload.filename,
            author=where.author,
        )
        return info.describe()

    async def train(
        self,
        where: Where,
        upload: Upload | None = None,
        *,
        name: str | None = None,
        progress: Progress | None = None,
        activation: ActivationPolicy | None = None,
    ) -> str:
        """Import ``upload`` (if any), then train a new version of ``where.scope``."""
        lines = []
        if upload is not None:
            files = await asyncio.to_thread(self.unpack, upload)
            for file in files:  # validate every file before importing any of them
                report = await self.validate(file)
                if not report.ok:
                    raise UserError(
                        f"{file.filename} has errors, so nothing was imported or trained:\n{report.to_text()}"
                    )
            for file in files:
                lines.append(await self.import_upload(where, file, name if len(files) == 1 else None))
        elif name:
            await self.app.datasets.select(where.scope, name, "positive")
            lines.append(f"Training with dataset `{name}` selected.")
        if self.app.remote is not None and self.app.settings.backend is Backend.OPENAI:
            remote = await self.app.remote.fine_tune(where.scope, author=where.author, progress=progress)
            lines.append(remote.describe())
            return "\n".join(lines)
        outcome = await self.app.training.train(
            where.scope, author=where.author, progress=progress, activation=activation
        )
        lines.append(outcome.describe())
        return "\n".join(lines)

    async def test(self, where: Where, upload: Upload | None, text: str = "") -> tuple[str, EvaluationReport | None]:
        """Test on an uploaded file, on JSON given inline (a list of prompts or of {prompt, answer}), or
        on the held-out split; ``text`` may start with the version to test (default: what answers now)."""
        text = text.strip()
        version: str | None = None
        if text and not text.startswith(("[", "{")):
            version, _, text = text.partition(" ")
            text = text.strip()
        if upload is not None:
            self._check_size(upload)
            examples = await asyncio.to_thread(parse_examples, upload.data, source=upload.filename)
        elif text:
            prompts, examples = parse_inline_test(text)
            if prompts:
                return await self._answers_for(where, prompts), None
        else:
            examples = await self.app.training.holdout_examples(where.scope)
            if not examples:
                raise UserError(
                    f"There is no held-out split yet (it needs {MIN_HOLDOUT_EXAMPLES} dataset examples): attach a "
                    f'test set, or give JSON: `{self.prefix}test ["question", …]`.'
                )
        report = await self.app.training.test(where.scope, examples, version=version)
        mistakes = [(o.prompt, o.answer or "", o.expected) for o in report.errors]
        queued = await self.app.teaching.suggest(where.scope, mistakes, author=f"test:{where.author}")
        summary = report.summary()
        if queued:
            summary += f"\n{queued} wrong answer(s) queued for review with the expected answer (`{self.prefix}review`)."
        return summary, report

    async def _answers_for(self, where: Where, prompts: Sequence[str]) -> str:
        lines = []
        for prompt in prompts:
            reply = await self.app.model.answer(Question(text=prompt, scope=where.scope, user_id=where.author))
            lines.append(f"• {prompt} → {reply.text} ({reply.confidence:.0%})")
        return "\n".join(lines)

    async def validate(self, upload: Upload) -> ValidationReport:
        """Validate an uploaded file as a file (line numbers, raw-JSON checks), then delete the copy."""
        self._check_size(upload)
        folder = self.app.data_dir / "uploads"
        path = folder / f".{uuid.uuid4().hex}-{safe_filename(upload.filename)}"

        def check() -> ValidationReport:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                path.write_bytes(upload.data)
                report = validate_file(path, max_bytes=self.app.settings.max_upload_bytes)
            finally:
                path.unlink(missing_ok=True)
            report.source = upload.filename
            return report

        return await asyncio.to_thread(check)

    async def datasets(self, where: Where, argument: str = "") -> str:
        """``list`` | ``show NAME [V]`` | ``diff NAME V1 V2`` | ``export NAME FORMAT`` | ``delete NAME`` |
        ``from_chat NAME [liked]``."""
        parts = argument.split()
        verb, args = (parts[0].lower(), parts[1:]) if parts else ("list", [])
        scope = where.scope
        if verb == "list" and not args:
            infos = await self.app.datasets.list_datasets(scope)
            return "\n".join(i.describe() for i in infos) if infos else "No datasets yet."
        if verb == "show" and len(args) in (1, 2):
            version = _number(args[1]) if len(args) == 2 else None
            examples = await self.app.datasets.examples(scope, args[0], version)
            shown = "\n".join(f"• {e.prompt} → {e.answer}" for e in examples[:10])
            return f"`{args[0]}`: {len(examples)} examples.\n{shown}"
        if verb == "diff" and len(args) == 3:
            return (await self.app.datasets.diff(scope, args[0], _number(args[1]), _number(args[2]))).describe()
        if verb == "export" and len(args) in (1, 2):
            return await self.export(where, args[0], args[1] if len(args) == 2 else "openai-chat")
        if verb == "delete" and len(args) == 1:
            return await self.app.datasets.delete(scope, args[0], author=where.author)
        if verb == "from_chat" and len(args) in (1, 2):
            info = await self.app.datasets.from_conversations(
                scope, args[0], author=where.author, only_liked=args[1:] == ["liked"]
            )
            return info.describe()
        raise UserError(
            f"Usage: `{self.prefix}datasets [list | show NAME [V] | diff NAME V1 V2 | export NAME FORMAT | "
            f"delete NAME | from_chat NAME [liked]]`"
        )

    async def export(self, where: Where, name: str, fmt: str) -> str:
        """Write a dataset (or ``corrections`` as preference pairs) into ``exports/``."""
        if name == "corrections":
            examples = await self.app.datasets.preference_pairs(where.scope)
            fmt = "preference" if fmt == "openai-chat" else fmt
        else:
            examples = await self.app.datasets.examples(where.scope, name)
        extension = {"csv": "csv", "yaml": "yaml"}.get(fmt, "jsonl")
        filename = safe_filename(f"{where.scope}-{name}-{fmt}.{extension}")
        path = self.app.data_dir / "exports" / filename
        await asyncio.to_thread(write_examples, examples, path, fmt)
        return f"Exported {len(examples)} examples to `{filename}`. `{self.prefix}getfile {filename}` sends it."

    async def select_dataset(self, scope: str, argument: str) -> str:
        parts = argument.split()
        if not parts or len(parts) > 2:
            raise usage(self.prefix, "select_dataset")
        info = await self.app.datasets.select(scope, parts[0], parts[1].lower() if len(parts) > 1 else "positive")
        return info.describe()

    async def jobs(self, where: Where, argument: str) -> str:
        parts = argument.split()
        if len(parts) == 2 and parts[0] == "cancel" and parts[1].lstrip("#").isdigit():
            run_id = int(parts[1].lstrip("#"))
            if self.app.remote is not None and await self.app.training.run_kind(where.scope, run_id) == "remote":
                return await self.app.remote.cancel(where.scope, run_id)
            return await self.app.training.cancel(where.scope, run_id)
        if parts:
            raise usage(self.prefix, "jobs")
        runs = await self.app.training.runs(where.scope)
        return "\n".join(r.describe() for r in runs) if runs else "No training runs yet."

    # -- files
    async def archive(self, where: Where, what: str) -> str:
        path = await asyncio.to_thread(self.app.files.archive, what, author=where.author)
        size = path.stat().st_size
        return f"Archive written: `{path.name}` ({size:,} bytes). `{self.prefix}getfile {path.name}` sends it."

    async def file_to_send(self, name: str) -> Path:
        if not name.strip():
            raise usage(self.prefix, "getfile")
        return await asyncio.to_thread(self.app.files.file_to_send, name.strip())

    async def models(self, where: Where, argument: str) -> str:
        parts = argument.split()
        if parts[:1] == ["activate"] and len(parts) == 2:
            return await self.app.training.activate(where.scope, parts[1], author=where.author)
        if parts == ["rollback"]:
            return await self.app.training.rollback(where.scope, author=where.author)
        if parts:
            raise usage(self.prefix, "models")
        versions = await self.app.training.versions(where.scope)
        if not versions and where.scope != "global":
            return "This server has no model version of its own yet; it uses the global one. `!train` makes one."
        return "\n".join(v.describe() for v in versions) if versions else "No model versions yet."


def _number(text: str) -> int:
    if not text.lstrip("v").isdigit():
        raise UserError(f"`{text}` is not a version number.")
    return int(text.lstrip("v"))


def parse_inline_test(text: str) -> tuple[list[str], list[Example]]:
    """JSON test input: a list of prompts (answers are just shown) or of {prompt, answer} objects."""
    if len(text) > MAX_JSON_TEST_CHARS:
        raise UserError("That test JSON is too long; attach it as a file instead.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"That is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.") from None
    if not isinstance(data, list) or not data:
        raise UserError('Give a non-empty JSON list of prompts, or of {"prompt": …, "answer": …} objects.')
    if all(isinstance(item, str) and item.strip() for item in data):
        return [item.strip() for item in data[:50]], []
    examples = []
    for number, item in enumerate(data, 1):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("prompt"), str)
            or not isinstance(item.get("answer"), str)
        ):
            raise UserError(f'Item {number} is not a {{"prompt": …, "answer": …}} object of strings.')
        if not item["prompt"].strip() or not item["answer"].strip():
            raise UserError(f"Item {number} has an empty prompt or answer.")
        examples.append(Example(item["prompt"].strip(), item["answer"].strip()))
    return [], examples
