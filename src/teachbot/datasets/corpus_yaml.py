"""ChatterBot corpus files (YAML): each consecutive pair of statements in a conversation is an example.

A module of its own so that PyYAML is imported only when such a file is read, not at every start.
"""

from __future__ import annotations

from typing import Any

import yaml

from teachbot.datasets.examples import Example
from teachbot.errors import DataFormatError

__all__ = ["MAX_YAML_DEPTH", "parse_corpus_yaml"]

_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")}

MAX_YAML_DEPTH = 32  # a corpus needs 3 levels; deep nesting only costs time (PyYAML slows down quadratically)


class _ShallowLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses nesting deeper than ``MAX_YAML_DEPTH`` while scanning, before it costs
    seconds of parsing or ends in a ``RecursionError``."""

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_YAML_DEPTH:
            self._too_deep()
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_YAML_DEPTH:
            self._too_deep()
        return bool(super().add_indent(column))

    def _too_deep(self) -> None:
        mark = self.get_mark()
        raise yaml.scanner.ScannerError(problem=f"nested more than {MAX_YAML_DEPTH} levels deep", problem_mark=mark)


def parse_corpus_yaml(text: str, source: str) -> list[Example]:
    """A ChatterBot corpus: each consecutive pair of a conversation is a statement and its response.

    The YAML is only *composed* (never constructed), so no tag can run code and aliases cannot
    expand; both are refused with the line they are on.
    """
    try:
        root = yaml.compose(text, Loader=_ShallowLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DataFormatError(
            f"invalid YAML: {exc.problem or exc.context}", source=source, line=mark.line + 1 if mark else None
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise DataFormatError(f"invalid YAML ({type(exc).__name__})", source=source) from None
    if root is None:
        return []
    _check_yaml_nodes(root, source)
    if not isinstance(root, yaml.MappingNode):
        raise DataFormatError("must be a mapping with a `conversations` list", source=source, line=_line(root))
    top = {key.value: value for key, value in root.value if isinstance(key, yaml.ScalarNode)}
    conversations = top.get("conversations")
    if conversations is None:
        raise DataFormatError("has no `conversations` list", source=source, line=_line(root))
    if not isinstance(conversations, yaml.SequenceNode):
        raise DataFormatError(
            "`conversations` must be a list of conversations", source=source, line=_line(conversations)
        )
    examples: list[Example] = []
    for conversation in conversations.value:
        if not isinstance(conversation, yaml.SequenceNode):
            raise DataFormatError(
                "each conversation must be a list of statements", source=source, line=_line(conversation)
            )
        statements = [_yaml_text(node, source) for node in conversation.value]
        if len(statements) < 2:
            raise DataFormatError(
                "a conversation needs a statement and a response", source=source, line=_line(conversation)
            )
        for node, prompt, answer in zip(conversation.value, statements, statements[1:], strict=False):
            examples.append(Example(prompt, answer, line=_line(node)))
    return examples


def _check_yaml_nodes(root: yaml.Node, source: str) -> None:
    """Refuse tags beyond plain data, and aliases (a node reached twice), before anything is read."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise DataFormatError("YAML aliases (`*name`) are not allowed", source=source, line=_line(node))
        seen.add(id(node))
        if node.tag not in _TAGS:
            raise DataFormatError(f"YAML tag `{node.tag}` is not allowed", source=source, line=_line(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def _yaml_text(node: yaml.Node, source: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise DataFormatError("a statement must be text, not a list or mapping", source=source, line=_line(node))
    text = "" if node.tag.endswith(":null") else node.value.strip()
    if not text:
        raise DataFormatError("empty statement", source=source, line=_line(node))
    return text


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1
