"""Places in a document: fusec's 1-based character columns against LSP's 0-based UTF-16 ones.

fusec counts columns in characters (code points), 1-based, as terminals and
``file:line:col`` links do; the Language Server Protocol counts them from 0
in UTF-16 code units (a character outside the Basic Multilingual Plane, an
emoji in a ``doc``, counts two). Every conversion goes through here.
"""

from __future__ import annotations

import re

from lsprotocol import types

from ..errors import Span
from ..spec.positions import STRING

_STRING = re.compile(STRING)


def split_lines(text: str) -> list[str]:
    """The document's lines as fusec numbers them (split at ``\\n``; a ``\\r`` before it stays on its line)."""
    return text.split("\n")


def utf16_col(line: str, col: int) -> int:
    """The UTF-16 offset of the 0-based character column ``col`` of ``line``."""
    head = line[:col]
    if head.isascii():
        return len(head)
    return len(head.encode("utf-16-le")) // 2


def char_col(line: str, units: int) -> int:
    """The 0-based character column at UTF-16 offset ``units`` of ``line`` (clamped to the line)."""
    if line.isascii():
        return min(units, len(line))
    count = 0
    for i, char in enumerate(line):
        if count >= units:
            return i
        count += 2 if ord(char) > 0xFFFF else 1
    return len(line)


def _line(lines: list[str], number: int) -> str:
    return lines[number] if 0 <= number < len(lines) else ""


def to_position(lines: list[str], line: int, col: int) -> types.Position:
    """The LSP position of fusec's 1-based (line, column)."""
    n = max(line - 1, 0)
    return types.Position(line=n, character=utf16_col(_line(lines, n), max(col - 1, 0)))


def to_range(lines: list[str], span: Span) -> types.Range:
    """The LSP range of a fusec span (both ends exclusive of the end, as LSP's)."""
    return types.Range(
        start=to_position(lines, span.line, span.col),
        end=to_position(lines, span.end_line, span.end_col),
    )


def from_position(lines: list[str], position: types.Position) -> tuple[int, int]:
    """fusec's 1-based (line, column) of an LSP position."""
    return position.line + 1, char_col(_line(lines, position.line), position.character) + 1


def string_at(line: str, col: int) -> tuple[int, int] | None:
    """The 0-based [start, end) character columns of the string literal around column ``col``, if any.

    An unterminated string (being typed) runs to the end of its line. The
    cursor counts as inside when it sits after the opening quote and no
    further than the closing one.
    """
    for match in _STRING.finditer(line):
        start, end = match.span()
        closed = end - start > 1 and match.group().endswith('"')
        if start < col < end or (col == end and not closed):
            return start, end
        if start >= col:
            break
    return None
