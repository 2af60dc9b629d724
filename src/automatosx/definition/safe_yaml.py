"""A bounded YAML reader for files we do not trust.

PyYAML's safe loader already refuses to run code, but it still accepts tags, expands aliases
into structures that grow exponentially once walked (the "billion laughs"), and recurses on
deep nesting. So this module builds the document itself from the parser's *event stream*
(libyaml's C parser when available), which lets it stop at the first problem:

- any explicit tag (`!!python/...`, `!!binary`, `!custom`) is refused: a workflow needs none;
- nesting deeper than `max_depth` is refused as soon as it is reached (no recursion at all);
- every alias adds the size of what it points to to a running node count, so an alias bomb
  fails after a few hundred events, with memory bounded (aliases share, never copy);
- duplicate mapping keys are refused (YAML says so; PyYAML silently keeps the last one);
- mapping keys are taken as text (`on:`/`yes:` stay the strings they look like), timestamps
  stay strings, and non-finite numbers are refused so every document is also valid JSON.

Errors carry the line and column (1-based) of the offending event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader

DEFAULT_MAX_DEPTH = 100
DEFAULT_MAX_NODES = 1_000_000
YAML_TAG_PREFIX = "tag:yaml.org,2002:"


class YamlLimitError(Exception):
    """The document breaks one of the rules above; `line`/`column` are 1-based (0 = unknown)."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    @classmethod
    def at(cls, message: str, event: yaml.Event) -> YamlLimitError:
        mark = event.start_mark
        if mark is None:
            return cls(message)
        return cls(message, mark.line + 1, mark.column + 1)


_MERGE = object()


@dataclass
class _Frame:
    """A collection being built; mappings alternate between expecting a key and a value."""

    value: dict[str, Any] | list[Any]
    anchor: str | None
    size: int = 1
    key: Any = None  # the pending key of a mapping: None (expecting a key), str or _MERGE
    merges: list[dict[str, Any]] = field(default_factory=list)


class _Builder:
    def __init__(self, max_depth: int, max_nodes: int) -> None:
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.total = 0
        self.documents = 0
        self.root: Any = None
        self.resolver = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise YamlLimitError.at(
                    "a workflow file holds one YAML document, not several", event
                )
        elif isinstance(event, yaml.NodeEvent | yaml.CollectionEndEvent):
            self._node_event(event)

    def _node_event(self, event: yaml.Event) -> None:
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = "!!" + tag[len(YAML_TAG_PREFIX) :] if tag.startswith(YAML_TAG_PREFIX) else tag
            raise YamlLimitError.at(f"YAML tags are not allowed (found '{shown}')", event)
        frame = self.stack[-1] if self.stack else None
        expecting_key = frame is not None and isinstance(frame.value, dict) and frame.key is None
        if expecting_key and not isinstance(event, yaml.MappingEndEvent):
            self._key(event)
            return
        if isinstance(event, yaml.ScalarEvent):
            self._add(self._scalar(event), 1, event.anchor, event)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            if len(self.stack) >= self.max_depth:
                raise YamlLimitError.at(f"nesting is deeper than {self.max_depth} levels", event)
            empty: dict[str, Any] | list[Any] = (
                {} if isinstance(event, yaml.MappingStartEvent) else []
            )
            self.stack.append(_Frame(empty, event.anchor))
            self._count(1, event)
        else:  # the end of a sequence or mapping
            done = self.stack.pop()
            value = done.value
            if isinstance(value, dict):
                for source in done.merges:
                    for key, item in source.items():
                        value.setdefault(key, item)
            self._add(value, done.size, done.anchor, event, counted=True)

    def _key(self, event: yaml.Event) -> None:
        frame = self.stack[-1]
        assert isinstance(frame.value, dict)
        if not isinstance(event, yaml.ScalarEvent):
            raise YamlLimitError.at("mapping keys must be plain text, not lists or maps", event)
        if event.anchor:
            raise YamlLimitError.at("anchors on mapping keys are not supported", event)
        if event.value == "<<" and event.implicit[0]:
            frame.key = _MERGE
            return
        if event.value in frame.value:
            raise YamlLimitError.at(f"duplicate key '{event.value}'", event)
        frame.key = event.value

    def _scalar(self, event: yaml.ScalarEvent) -> Any:
        tag: str = self.resolver.resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, event.value, event.implicit
        )
        node = yaml.ScalarNode(tag, event.value)
        kind = tag[len(YAML_TAG_PREFIX) :]
        try:
            if kind == "null":
                return None
            if kind == "bool":
                return self.constructor.construct_yaml_bool(node)
            if kind == "int":
                return self.constructor.construct_yaml_int(node)
            if kind == "float":
                number = self.constructor.construct_yaml_float(node)
                if not math.isfinite(number):
                    raise YamlLimitError.at(f"'{event.value}' is not a finite number", event)
                return number
        except ValueError as exc:  # e.g. an integer with more digits than Python accepts
            message = f"'{event.value[:40]}' is not a usable number: {exc}"
            raise YamlLimitError.at(message, event) from None
        return event.value

    def _alias(self, event: yaml.AliasEvent) -> None:
        if event.anchor not in self.anchors:
            raise YamlLimitError.at(f"alias '*{event.anchor}' names no earlier anchor", event)
        value, size = self.anchors[event.anchor]
        self._count(size, event)
        self._add(value, size, None, event, counted=True)

    def _count(self, nodes: int, event: yaml.Event) -> None:
        self.total += nodes
        if self.total > self.max_nodes:
            raise YamlLimitError.at(
                f"the document expands to more than {self.max_nodes} values "
                "(aliases expanding too much?)",
                event,
            )

    def _add(
        self, value: Any, size: int, anchor: str | None, event: yaml.Event, counted: bool = False
    ) -> None:
        if not counted:
            self._count(size, event)
        if anchor:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        frame.size += size
        if isinstance(frame.value, list):
            frame.value.append(value)
            return
        if frame.key is _MERGE:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                raise YamlLimitError.at("'<<' merges a map or a list of maps only", event)
            frame.merges.extend(sources)
        else:
            frame.value[frame.key] = value
        frame.key = None


def load_yaml(
    text: str, *, max_depth: int = DEFAULT_MAX_DEPTH, max_nodes: int = DEFAULT_MAX_NODES
) -> Any:
    """The single document in `text` as plain dicts, lists and scalars (None if empty).

    Raises `YamlLimitError` for the rules of this module and `yaml.YAMLError` for syntax.
    """
    builder = _Builder(max_depth, max_nodes)
    for event in yaml.parse(text, Loader=_Loader):
        builder.feed(event)
    return builder.root
