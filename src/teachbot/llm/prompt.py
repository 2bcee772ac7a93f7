"""Chat messages for one question, fitted into the prompt token budget.

Priority when the budget is tight, highest first: the system instruction and the current question
(always kept), the taught examples (best match first), the question's attachments (text truncated
to what is left), then the conversation history, newest turn first, so the oldest turns go first.
Taught examples live in the single system message: several system messages or a system message that
is not first break the chat templates of some local servers (llama.cpp, Mistral templates).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teachbot.answering.protocols import Attachment, Question, TaughtExample
from teachbot.config import Settings
from teachbot.errors import ConfigError
from teachbot.tokens import count_tokens, truncate_to_tokens

__all__ = ["BuiltPrompt", "PromptBuilder", "load_system_prompt"]

log = logging.getLogger(__name__)

MESSAGE_OVERHEAD = 3  # tokens of framing per message, as teachbot.tokens.count_chat_tokens counts them
REPLY_PRIMING = 3
IMAGE_TOKENS = 765  # what OpenAI bills for a 1024x1024 image at "auto" detail; an estimate for others
MAX_EXAMPLE_TOKENS = 400  # one long taught answer must not push every other example out

EXAMPLES_HEADER = (
    "Answers taught by this community. When the user's question matches one of these questions "
    "(same meaning, even if worded differently), answer exactly as taught, word for word. "
    "Otherwise answer normally, staying consistent with them."
)
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
IMAGE_SUFFIXES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
TEXT_TYPES = {
    "application/json",
    "application/xml",
    "application/x-yaml",
    "application/yaml",
    "application/toml",
    "application/javascript",
    "application/x-sh",
    "application/sql",
}
TEXT_SUFFIXES = {
    ".txt",
    ".md",
    ".markdown",
    ".rst",
    ".csv",
    ".tsv",
    ".json",
    ".jsonl",
    ".yaml",
    ".yml",
    ".toml",
    ".ini",
    ".cfg",
    ".log",
    ".xml",
    ".html",
    ".htm",
    ".py",
    ".js",
    ".ts",
    ".java",
    ".c",
    ".h",
    ".cpp",
    ".rs",
    ".go",
    ".rb",
    ".sh",
    ".sql",
    ".css",
}


@dataclass(frozen=True, slots=True)
class BuiltPrompt:
    """The messages to send, which taught examples they contain, and what had to be left out."""

    messages: list[dict[str, Any]]
    example_ids: tuple[int, ...]
    prompt_tokens: int
    dropped_turns: int = 0
    notes: tuple[str, ...] = ()


def load_system_prompt(settings: Settings) -> str:
    """The system instruction: the file's text when ``llm_system_prompt_file`` is set, else the setting."""
    path = settings.llm_system_prompt_file
    if path is None:
        return settings.llm_system_prompt
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"setting 'llm_system_prompt_file': cannot read {path}: {exc.__class__.__name__}") from None


class PromptBuilder:
    """Builds the chat messages for a question; pure and synchronous so it can be timed and tested."""

    def __init__(
        self,
        *,
        system_prompt: str,
        context_tokens: int,
        model: str,
        vision_models: Sequence[str] = (),
        max_examples: int = 8,
    ) -> None:
        self.system_prompt = system_prompt
        self.context_tokens = context_tokens
        self.model = model
        self.vision = model in set(vision_models)
        self.max_examples = max_examples

    @classmethod
    def from_settings(cls, settings: Settings) -> PromptBuilder:
        return cls(
            system_prompt=load_system_prompt(settings),
            context_tokens=settings.llm_context_tokens,
            model=settings.llm_model,
            vision_models=settings.llm_vision_models,
        )

    def build(self, question: Question, examples: Sequence[TaughtExample] = ()) -> BuiltPrompt:
        """Messages within ``context_tokens``: system and question kept, the rest by priority."""
        system_tokens = MESSAGE_OVERHEAD + count_tokens(self.system_prompt)
        left = self.context_tokens - REPLY_PRIMING - system_tokens - MESSAGE_OVERHEAD
        question_text = question.text
        question_tokens = count_tokens(question_text)
        if question_tokens > left:  # only when the question alone overflows the budget
            question_text = truncate_to_tokens(question_text, max(left, 0))
            question_tokens = count_tokens(question_text)
        left -= question_tokens

        section, example_ids, left = self._examples(examples, left)
        parts, notes, left = self._attachments(question.attachments, left)
        history, dropped, left = self._history(question, left)

        system = self.system_prompt + (f"\n\n{section}" if section else "")
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, *history]
        if notes:
            question_text += "".join(_note_line(note) for note in notes)
        if parts:
            content: str | list[dict[str, Any]] = [{"type": "text", "text": question_text}, *parts]
        else:
            content = question_text
        messages.append({"role": "user", "content": content})
        if dropped:
            log.debug("prompt budget: dropped %d old turn(s)", dropped)
        return BuiltPrompt(messages, example_ids, self.context_tokens - left, dropped, tuple(notes))

    def _examples(self, examples: Sequence[TaughtExample], left: int) -> tuple[str, tuple[int, ...], int]:
        """The system-message section listing taught Q/A pairs, best score first, within ``left``."""
        if not examples:
            return "", (), left
        header_tokens = count_tokens("\n\n" + EXAMPLES_HEADER)
        if header_tokens >= left:
            return "", (), left
        budget = left - header_tokens
        lines: list[str] = []
        used: list[int] = []
        seen: set[int] = set()
        for example in sorted(examples, key=lambda e: e.score, reverse=True):
            if len(used) >= self.max_examples:
                break
            if example.example_id in seen:
                continue
            entry = _example_entry(example)
            cost = count_tokens(entry)
            if cost > MAX_EXAMPLE_TOKENS:
                entry = truncate_to_tokens(entry, MAX_EXAMPLE_TOKENS)
                cost = count_tokens(entry)
            if cost > budget:
                continue  # a shorter, lower-scored example may still fit
            lines.append(entry)
            used.append(example.example_id)
            seen.add(example.example_id)
            budget -= cost
        if not lines:
            return "", (), left
        section = EXAMPLES_HEADER + "".join(lines)
        return section, tuple(used), budget

    def _attachments(self, attachments: Sequence[Attachment], left: int) -> tuple[list[dict[str, Any]], list[str], int]:
        """Content parts for the question: text files read in, images for vision models, notes otherwise."""
        parts: list[dict[str, Any]] = []
        notes: list[str] = []

        def note(text: str) -> None:
            nonlocal left
            notes.append(text)
            left -= count_tokens(_note_line(text))

        for attachment in attachments:
            kind = _kind(attachment)
            if kind == "image":
                if not self.vision:
                    note(
                        f"The user attached the image {attachment.filename}; it was ignored "
                        "because this model cannot see images."
                    )
                elif left < IMAGE_TOKENS:
                    note(f"The image {attachment.filename} was left out: the prompt is full.")
                else:
                    mime = _image_type(attachment)
                    url = f"data:{mime};base64,{base64.b64encode(attachment.data).decode('ascii')}"
                    parts.append({"type": "image_url", "image_url": {"url": url}})
                    left -= IMAGE_TOKENS
            elif kind == "text":
                text = _decode(attachment.data)
                head = f"Attached file {attachment.filename}:\n"
                room = left - count_tokens(head) - 1
                if count_tokens(text) > room:
                    cut = f"The file {attachment.filename} was cut short to fit the prompt."
                    room -= count_tokens(_note_line(cut))
                    if room <= 0:
                        note(f"The file {attachment.filename} was left out: the prompt is full.")
                        continue
                    note(cut)
                part = head + truncate_to_tokens(text, room)
                parts.append({"type": "text", "text": part})
                left -= count_tokens(part)
            else:
                note(f"The user attached {attachment.filename}; it was ignored (not text or an image).")
        return parts, notes, left

    def _history(self, question: Question, left: int) -> tuple[list[dict[str, Any]], int, int]:
        """The newest turns that fit, in chronological order; the count of older turns dropped."""
        turns = [t for t in question.history if t.role in ("user", "assistant") and t.content]
        kept: list[dict[str, Any]] = []
        for index in range(len(turns) - 1, -1, -1):
            cost = MESSAGE_OVERHEAD + count_tokens(turns[index].content)
            if cost > left:
                return kept[::-1], index + 1, left
            kept.append({"role": turns[index].role, "content": turns[index].content})
            left -= cost
        return kept[::-1], 0, left


def _note_line(note: str) -> str:
    return f"\n\n[{note}]"


def _example_entry(example: TaughtExample) -> str:
    return f"\n\nQ: {example.prompt.strip()}\nA: {example.answer.strip()}"


def _kind(attachment: Attachment) -> str:
    content_type = attachment.content_type.split(";")[0].strip().lower()
    suffix = Path(attachment.filename).suffix.lower()
    if content_type in IMAGE_TYPES or (not content_type.startswith("text/") and suffix in IMAGE_SUFFIXES):
        return "image"
    if content_type.startswith("text/") or content_type in TEXT_TYPES or suffix in TEXT_SUFFIXES:
        return "text" if b"\x00" not in attachment.data[:8192] else "binary"
    return "binary"


def _image_type(attachment: Attachment) -> str:
    content_type = attachment.content_type.split(";")[0].strip().lower()
    if content_type in IMAGE_TYPES:
        return content_type
    return IMAGE_SUFFIXES.get(Path(attachment.filename).suffix.lower(), "image/png")


def _decode(data: bytes) -> str:
    """UTF-8 (a BOM dropped); undecodable bytes become U+FFFD rather than failing the question."""
    return data.decode("utf-8-sig", errors="replace")
