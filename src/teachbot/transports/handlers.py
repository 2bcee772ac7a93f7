"""What each bot command does, once, for every door: typed arguments in, a ``Reply`` out.

A door (Discord, the terminal, the command line) reads its own syntax into typed arguments and builds
a ``Call`` saying who is asking and where; the method named like the command (``group_sub`` for a
subcommand, see ``catalogue.handler_name``) calls the services and returns the reply, worded with the
configured prefix. Doors only deliver the reply.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from teachbot.answering.chat import Origin, StoredAnswer
from teachbot.answering.knowledge import TAUGHT_MARK, Candidate
from teachbot.answering.protocols import GLOBAL_SCOPE, Answer, Question
from teachbot.app import App
from teachbot.config import ActivationPolicy, Backend
from teachbot.datasets.examples import Example
from teachbot.datasets.formats import parse_examples, write_examples
from teachbot.datasets.names import dataset_name_for, export_filename
from teachbot.datasets.safezip import dataset_members, read_zip_members
from teachbot.errors import UserError
from teachbot.paths import safe_filename
from teachbot.teaching.service import FeedbackKind
from teachbot.training.data import MIN_HOLDOUT_EXAMPLES
from teachbot.training.evaluation import EvaluationReport
from teachbot.training.runs import Progress
from teachbot.transports import wording
from teachbot.transports.catalogue import Door, Privilege, help_rows, help_text, instruction_text

if TYPE_CHECKING:
    from teachbot.datasets.validation import ValidationReport

MAX_JSON_TEST_CHARS = 100_000
MAX_JSON_DEPTH = 20
MAX_ZIP_MEMBERS = 50
CANDIDATES = 3  # answers offered to pick from when teaching interactively


@dataclass(frozen=True, slots=True)
class Upload:
    """A dataset file handed to a command (a Discord attachment, or a file read by the terminal)."""

    filename: str
    data: bytes


@dataclass(frozen=True, slots=True)
class OutFile:
    """A file a reply carries (Discord attaches it; the terminal does not show it)."""

    filename: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """What a command answers: text, and what a door may show besides."""

    text: str
    files: tuple[OutFile, ...] = ()
    send_path: Path | None = None  # a file of the data folder to send (``getfile``)
    report: EvaluationReport | None = None  # a test report (Discord attaches it with a chart)
    review_items: tuple[str, ...] = ()  # review item ids a door may offer buttons for
    rows: tuple[tuple[str, str], ...] = ()  # (name, text) pairs a door may show as a table (Discord: an embed)
    markdown: bool = False  # the text is Markdown a terminal may render (Discord renders it anyway)


class VoiceControl:
    """Voice channel presence for a command's caller; only Discord has one."""

    async def join(self) -> str:
        raise UserError("Voice channels exist only on Discord.")

    async def leave(self) -> str:
        raise UserError("Voice channels exist only on Discord.")

    async def listen(self) -> str:
        raise UserError("Voice channels exist only on Discord.")

    async def stop(self) -> str:
        raise UserError("Voice channels exist only on Discord.")


@dataclass(slots=True)
class Toggle:
    """An on/off state of a door that a command flips (the terminal's interactive teaching)."""

    on: bool = False


@dataclass(slots=True)
class Call:
    """Who runs a command, where, and what the door knows about the message it came in."""

    origin: Origin
    door: Door
    privilege: Privilege = Privilege.MEMBER
    trusted: bool = False
    replied_to: str | None = None  # transport id of the message the command replies to (Discord)
    external_ids: bool = True  # message ids users give are transport ids (Discord) or stored answer ids
    progress: Progress | None = None
    voice: VoiceControl = field(default_factory=VoiceControl)
    interactive: Toggle = field(default_factory=Toggle)  # offer candidate answers after each answer

    @property
    def scope(self) -> str:
        return self.origin.scope


class CommandHandlers:
    """Transport-neutral command behaviour over the app's services."""

    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def prefix(self) -> str:
        return self.app.settings.command_prefix

    # -- everyday
    async def hi(self, call: Call) -> Reply:
        return Reply("HI!")

    async def help(self, call: Call) -> Reply:
        rows = help_rows(self.prefix, call.door, call.privilege)
        return Reply(help_text(self.prefix, call.door, call.privilege), rows=tuple(rows))

    async def instruction(self, call: Call) -> Reply:
        return Reply(await asyncio.to_thread(instruction_text, self.app.settings.instruction_file), markdown=True)

    # -- teaching
    async def _answer_about(self, call: Call, message_id: int | None) -> StoredAnswer | None:
        """The answer a command is about: the one with ``message_id``, the one replied to, else the last
        answer in this channel."""
        chat = self.app.chat
        if message_id is not None:
            if call.external_ids:
                return await chat.find_answer(call.scope, external_id=str(message_id))
            return await chat.find_answer(call.scope, answer_id=message_id)
        if call.replied_to is not None:
            return await chat.find_answer(call.scope, external_id=call.replied_to)
        return await chat.last_answer(call.scope, call.origin.channel)

    async def correct(self, call: Call, answer: str, message_id: int | None = None) -> Reply:
        target = await self._answer_about(call, message_id)
        result = await self.app.teaching.correct(call.origin, target, answer, trusted=call.trusted)
        return Reply(wording.teach_result(result, self.prefix))

    async def interactive(self, call: Call, mode: str | None = None) -> Reply:
        """Turn interactive teaching on or off (flip it without ``mode``)."""
        call.interactive.on = not call.interactive.on if mode is None else mode == "on"
        return Reply(wording.interactive_mode(call.interactive.on))

    async def candidates(self, scope: str, question: str, given: Answer, k: int = CANDIDATES) -> list[Candidate]:
        """The answers to offer for ``question``, up to ``k``: the one given first (unless it was the
        fallback), then the likeliest others (``Knowledge.candidates``)."""
        found = await asyncio.to_thread(self.app.knowledge.candidates, question, scope, k)
        if given.is_fallback or (found and found[0].answer == given.text):
            return found
        first = Candidate(given.text, given.confidence, taught=given.model_version.endswith(TAUGHT_MARK))
        return [first, *(c for c in found if c.answer != given.text)][:k]

    async def feedback(self, call: Call, text: str) -> Reply:
        if text.strip() in ("+", "👍", "-", "👎"):
            return await self.rate(call, await self._answer_about(call, None), good=text.strip() in ("+", "👍"))
        result = await self.app.teaching.feedback(call.origin, FeedbackKind.TEXT, text=text, trusted=call.trusted)
        return Reply(f"Thanks, your feedback {result.item_id} is stored.")

    async def rate(self, call: Call, target: StoredAnswer | None, *, good: bool) -> Reply:
        """👍 / 👎 on an answer (a reaction on Discord, ``!feedback +`` in the terminal)."""
        kind = FeedbackKind.UP if good else FeedbackKind.DOWN
        result = await self.app.teaching.feedback(call.origin, kind, target=target, trusted=call.trusted)
        return Reply(f"Thanks, your {'👍' if good else '👎'} ({result.item_id}) is stored.")

    async def undo(self, call: Call) -> Reply:
        return Reply(f"Undone: {await self.app.teaching.undo_last(call.scope, call.origin.author)}.")

    async def forget(self, call: Call, example_id: int | None = None) -> Reply:
        if example_id is None:
            target = await self._answer_about(call, None)
            example_id = target.example_id if target is not None else None
        if example_id is None:
            raise UserError(f"Reply to the answer to forget, or give its example id (`{self.prefix}forget 12`).")
        prompt = await self.app.teaching.forget(call.scope, example_id, author=call.origin.author)
        return Reply(f"Forgotten: what I learned for “{wording.clip(prompt)}”.")

    async def review(self, call: Call) -> Reply:
        items = await self.app.teaching.pending(call.scope)
        if not items:
            return Reply("Nothing waits for review.")
        lines = [wording.review_item(item) for item in items]
        lines.append(f"Approve or reject with `{self.prefix}approve ID` / `{self.prefix}reject ID`.")
        return Reply("\n".join(lines), review_items=tuple(i.item_id for i in items))

    async def approve(self, call: Call, item_id: str) -> Reply:
        return await self._decide(call, item_id, approve=True)

    async def reject(self, call: Call, item_id: str) -> Reply:
        return await self._decide(call, item_id, approve=False)

    async def _decide(self, call: Call, item_id: str, *, approve: bool) -> Reply:
        result = await self.app.teaching.review(call.scope, item_id, approve=approve, reviewer=call.origin.author)
        return Reply(wording.teach_result(result, self.prefix))

    # -- datasets and training
    def check_upload_size(self, filename: str, size: int) -> None:
        """Refuse a file over ``max_upload_bytes`` (before downloading it, where the door can)."""
        limit = self.app.settings.max_upload_bytes
        if size > limit:
            raise UserError(f"{filename} is {size:,} bytes; the limit is {limit:,}.")

    def unpack(self, upload: Upload) -> list[tuple[str, Upload]]:
        """A dataset upload as (dataset name, file) pairs: a zip becomes its dataset files, checked against
        path tricks and zip bombs, named so that files in different folders stay apart."""
        self.check_upload_size(upload.filename, len(upload.data))
        if not upload.filename.lower().endswith(".zip"):
            return [(dataset_name_for(upload.filename), upload)]
        limit = self.app.settings.max_upload_bytes
        members = read_zip_members(upload.data, max_total_bytes=limit, max_members=MAX_ZIP_MEMBERS)
        files = [(m.name, Upload(m.filename, m.data)) for m in dataset_members(members)]
        if not files:
            raise UserError(f"{upload.filename} holds no files.")
        return files

    async def import_upload(self, origin: Origin, upload: Upload, name: str) -> str:
        """Import one uploaded dataset file as dataset ``name`` (all or nothing); ``train`` validates it first."""
        examples = await asyncio.to_thread(parse_examples, upload.data, source=upload.filename)
        info = await self.app.datasets.import_examples(
            origin.scope, name, examples, source_name=upload.filename, author=origin.author
        )
        return wording.dataset_info(info, imported=True, prefix=self.prefix)

    async def train(
        self,
        call: Call,
        file: Upload | None = None,
        name: str | None = None,
        *,
        activation: ActivationPolicy | None = None,
    ) -> Reply:
        """Import ``file`` (if any), then train a new version of the caller's scope."""
        lines = []
        if file is not None:
            files = await asyncio.to_thread(self.unpack, file)
            for _, each in files:  # validate every file before importing any of them
                report = await self._validate(each)
                if not report.ok:
                    raise UserError(
                        f"{each.filename} has errors, so nothing was imported or trained:\n{report.to_text()}"
                    )
            for dataset, each in files:
                chosen = name if name and len(files) == 1 else dataset
                lines.append(await self.import_upload(call.origin, each, chosen))
        elif name:
            await self.app.datasets.select(call.scope, name, "positive")
            lines.append(f"Training with dataset `{name}` selected.")
        author = call.origin.author
        if self.app.remote is not None and self.app.settings.backend is Backend.OPENAI:
            remote = await self.app.remote.fine_tune(call.scope, author=author, progress=call.progress)
            lines.append(wording.remote_outcome(remote, self.prefix))
            return Reply("\n".join(lines))
        outcome = await self.app.training.train(
            call.scope, author=author, progress=call.progress, activation=activation
        )
        lines.append(wording.train_outcome(outcome, self.prefix))
        return Reply("\n".join(lines))

    async def test(self, call: Call, file: Upload | None = None, version: str | None = None, data: str = "") -> Reply:
        """Test on a file, on inline JSON (a list of prompts or of {prompt, answer}), or on the held-out
        split; ``version`` picks a stored version (default: what answers now)."""
        data = data.strip()
        if file is not None:
            self.check_upload_size(file.filename, len(file.data))
            examples = await asyncio.to_thread(parse_examples, file.data, source=file.filename)
        elif data:
            prompts, examples = parse_inline_test(data)
            if prompts:
                if version is not None:
                    raise UserError("A list of questions is answered by what answers now; leave out the version.")
                return Reply(await self._answers_for(call, prompts))
        else:
            examples = await self.app.testing.holdout_examples(call.scope)
            if not examples:
                raise UserError(
                    f"There is no held-out split yet (it needs {MIN_HOLDOUT_EXAMPLES} dataset examples): attach a "
                    f'test set, or give JSON: `{self.prefix}test ["question", …]`.'
                )
        report = await self.app.testing.test(call.scope, examples, version=version, author=call.origin.author)
        mistakes = [(o.prompt, o.answer or "", o.expected) for o in report.errors]
        queued = await self.app.teaching.suggest(call.scope, mistakes, author=f"test:{call.origin.author}")
        summary = report.summary()
        if queued:
            summary += f"\n{queued} wrong answer(s) queued for review with the expected answer (`{self.prefix}review`)."
        return Reply(summary, report=report)

    async def _answers_for(self, call: Call, prompts: Sequence[str]) -> str:
        lines = []
        for prompt in prompts:
            reply = await self.app.model.answer(Question(text=prompt, scope=call.scope, user_id=call.origin.author))
            lines.append(f"• {prompt} → {reply.text} ({reply.confidence:.0%})")
        return "\n".join(lines)

    async def validate(self, call: Call, file: Upload | None = None) -> Reply:
        if file is None:
            raise UserError(
                "Attach the dataset file to check."
                if call.door is Door.DISCORD
                else f"Name the dataset file to check: `{self.prefix}validate FILE`."
            )
        report = await self._validate(file, by_meaning=True)
        payload = json.dumps(report.to_json(), ensure_ascii=False, indent=2).encode()
        return Reply(report.to_text(), files=(OutFile("validation.json", payload),))

    async def _validate(self, upload: Upload, *, by_meaning: bool = False) -> ValidationReport:
        """Validate an uploaded file as a file (line numbers, raw-JSON checks), then delete the copy;
        ``by_meaning`` also compares its prompts by meaning (``!validate``: seconds for thousands)."""
        from teachbot.datasets.validation import validate_file  # counts tokens: loaded when first needed

        self.check_upload_size(upload.filename, len(upload.data))
        folder = self.app.data_dir / "uploads"
        path = folder / f".{uuid.uuid4().hex}-{safe_filename(upload.filename)}"

        def check() -> ValidationReport:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                path.write_bytes(upload.data)
                report = validate_file(
                    path,
                    max_bytes=self.app.settings.max_upload_bytes,
                    backend=self.app.settings.backend,
                    encoder=self.app.encoder if by_meaning else None,
                )
            finally:
                path.unlink(missing_ok=True)
            report.source = upload.filename
            return report

        return await asyncio.to_thread(check)

    async def datasets_list(self, call: Call) -> Reply:
        infos = await self.app.datasets.list_datasets(call.scope)
        return Reply("\n".join(wording.dataset_info(i) for i in infos) if infos else "No datasets yet.")

    async def datasets_show(self, call: Call, name: str, version: int | None = None) -> Reply:
        examples = await self.app.datasets.examples(call.scope, name, version)
        shown = "\n".join(f"• {e.prompt} → {e.answer}" for e in examples[:10])
        return Reply(f"`{name}`: {len(examples)} examples.\n{shown}")

    async def datasets_diff(self, call: Call, name: str, old: int, new: int) -> Reply:
        return Reply(wording.dataset_diff(await self.app.datasets.diff(call.scope, name, old, new)))

    async def datasets_export(self, call: Call, name: str, format: str | None = None) -> Reply:
        """Write a dataset (or ``corrections`` as preference pairs) into ``exports/``."""
        fmt = format or "openai-chat"
        if name == "corrections":
            examples = await self.app.datasets.preference_pairs(call.scope)
            fmt = "preference" if fmt == "openai-chat" else fmt
        else:
            examples = await self.app.datasets.examples(call.scope, name)
        extension = {"csv": "csv", "yaml": "yaml"}.get(fmt, "jsonl")
        filename = export_filename(call.scope, name, fmt, extension)
        path = self.app.data_dir / "exports" / filename
        await asyncio.to_thread(write_examples, examples, path, fmt)
        return Reply(f"Exported {len(examples)} examples to `{filename}`. `{self.prefix}getfile {filename}` sends it.")

    async def datasets_delete(self, call: Call, name: str) -> Reply:
        await self.app.datasets.delete(call.scope, name, author=call.origin.author)
        return Reply(f"Deleted dataset `{name}` and all its versions.")

    async def datasets_from_chat(self, call: Call, name: str, liked: str | None = None) -> Reply:
        info = await self.app.datasets.from_conversations(
            call.scope, name, author=call.origin.author, only_liked=liked == "liked"
        )
        return Reply(wording.dataset_info(info))

    async def select_dataset(self, call: Call, name: str, use: str | None = None) -> Reply:
        return Reply(wording.dataset_info(await self.app.datasets.select(call.scope, name, use or "positive")))

    async def jobs_list(self, call: Call) -> Reply:
        runs = await self.app.runs.recent(call.scope)
        return Reply("\n".join(wording.run_info(r) for r in runs) if runs else "No training runs yet.")

    async def jobs_cancel(self, call: Call, run_id: int) -> Reply:
        if self.app.remote is not None and await self.app.runs.kind(call.scope, run_id) == "remote":
            await self.app.remote.cancel(call.scope, run_id)
            return Reply(f"Cancelling fine-tuning job #{run_id}.")
        await self.app.training.cancel(call.scope, run_id)
        return Reply(f"Run #{run_id} will stop at its next step.")

    async def status(self, call: Call) -> Reply:
        from teachbot.status import collect_status, render_status

        every = self.app.settings.heartbeat_seconds
        return Reply(render_status(await self.app.db.run(lambda s: collect_status(s, every))))

    async def models_list(self, call: Call) -> Reply:
        versions = await self.app.versions.in_scope(call.scope)
        if not versions and call.scope != GLOBAL_SCOPE:
            global_version = self.app.knowledge.model_version(GLOBAL_SCOPE) or "none yet"
            return Reply(
                f"This server has no model version of its own yet; it uses the global one ({global_version}). "
                f"`{self.prefix}train` makes one."
            )
        return Reply("\n".join(wording.version_info(v) for v in versions) if versions else "No model versions yet.")

    async def models_activate(self, call: Call, version: str) -> Reply:
        remote = await self.app.versions.activate(call.scope, version, author=call.origin.author)
        return Reply(wording.activated(version, remote))

    async def models_rollback(self, call: Call) -> Reply:
        return Reply(wording.activated(*await self.app.versions.rollback(call.scope, author=call.origin.author)))

    # -- files
    async def archive(self, call: Call, what: str | None = None) -> Reply:
        path = await asyncio.to_thread(self.app.files.archive, what or "all", author=call.origin.author)
        size = path.stat().st_size
        return Reply(f"Archive written: `{path.name}` ({size:,} bytes). `{self.prefix}getfile {path.name}` sends it.")

    async def getfile(self, call: Call, name: str) -> Reply:
        path = await asyncio.to_thread(self.app.files.file_to_send, name.strip())
        return Reply(f"`{path.name}`", send_path=path)

    # -- voice
    async def join(self, call: Call) -> Reply:
        return Reply(await call.voice.join())

    async def leave(self, call: Call) -> Reply:
        return Reply(await call.voice.leave())

    async def listen(self, call: Call) -> Reply:
        return Reply(await call.voice.listen())

    async def stop(self, call: Call) -> Reply:
        return Reply(await call.voice.stop())


Handler = Callable[..., Awaitable[Reply]]


def parse_inline_test(text: str) -> tuple[list[str], list[Example]]:
    """JSON test input: a list of prompts (answers are just shown) or of {prompt, answer} objects."""
    if len(text) > MAX_JSON_TEST_CHARS:
        raise UserError("That test JSON is too long; attach it as a file instead.")
    if _nesting(text) > MAX_JSON_DEPTH:
        raise UserError("That test JSON is nested too deeply: give a flat list.")
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


def _nesting(text: str) -> int:
    """How deep brackets nest (strings skipped), so deeply nested JSON is refused before parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
