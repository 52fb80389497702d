"""One open document: its text, a tolerant reading of it, and the last check that passed.

An editor's buffer is mid-edit most of the time: a missing comma, an
unclosed string. ``View`` reads what is there through
``Positions`` (the loader's tolerant scanner), so ids, layer names and
config keys are known in a file that does not parse; each scalar is read
back from its own span. ``DocState`` keeps, besides the current view, the
last ``Checked`` record (shapes, parameters) for hover, so a typo in one
node does not blank the shapes of the rest.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PathPart, Span
from ..spec.positions import Positions
from ..static.check import Checked
from .text import split_lines

JsonPath = tuple[PathPart, ...]
#: What ``View.scalar`` returns where there is no readable scalar.
MISSING: Any = object()


class View:
    """A tolerant reading of one version of a document's text."""

    def __init__(self, text: str) -> None:
        self.text = text

    @functools.cached_property
    def positions(self) -> Positions:
        return Positions.of(self.text)

    @functools.cached_property
    def lines(self) -> list[str]:
        return split_lines(self.text)

    def keys(self, path: JsonPath) -> list[str]:
        """The keys of the object at ``path`` as written, in text order (``[]`` if none)."""
        return [str(p[-1]) for p in self.positions.children(path) if isinstance(p[-1], str)]

    def items(self, path: JsonPath) -> list[JsonPath]:
        """The paths of the members or items of the container at ``path``."""
        return self.positions.children(path)

    def has(self, path: JsonPath) -> bool:
        return tuple(path) in self.positions

    def offsets(self, span: Span) -> tuple[int, int]:
        pos = self.positions
        return pos.offset(span.line, span.col), pos.offset(span.end_line, span.end_col)

    def scalar(self, path: JsonPath) -> Any:
        """The scalar value at ``path`` read from its own text, or ``MISSING`` (absent, a container, broken)."""
        span = self.positions.value(path)
        if span is None:
            return MISSING
        start, end = self.offsets(span)
        raw = self.text[start:end]
        if raw[:1] in ("{", "["):
            return MISSING
        try:
            return json.loads(raw)
        except ValueError:
            return MISSING

    def string(self, path: JsonPath) -> str | None:
        """The string at ``path``, or None."""
        value = self.scalar(path)
        return value if isinstance(value, str) else None

    def value_span(self, path: JsonPath) -> Span | None:
        return self.positions.value(path)

    def key_span(self, path: JsonPath) -> Span | None:
        return self.positions.key(path)

    def member_span(self, path: JsonPath) -> Span | None:
        """From the member's key (or the item's start) to the end of its value."""
        value = self.positions.value(path)
        if value is None:
            return None
        key = self.positions.key(path) or value
        return Span(key.line, key.col, value.end_line, value.end_col)


@dataclass
class DocState:
    """What the server holds for one open document.

    Attributes:
        uri: the document's URI.
        path: the file it is checked as (its folder resolves sub-model paths).
        view: the current text's reading.
        version: the editor's version of that text.
        checked: the last check that passed (None until one does).
        pending: the debounced check waiting to run, cancelled by the next edit.
    """

    uri: str
    path: Path
    view: View
    version: int | None = None
    checked: Checked | None = None
    pending: asyncio.Task[None] | None = field(default=None, repr=False)

    def update(self, text: str, version: int | None) -> None:
        if text != self.view.text:
            self.view = View(text)
        self.version = version
