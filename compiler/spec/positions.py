"""Where every key and value of a spec sits in its text: lines and columns for errors and editors.

``json.loads`` gives values, not places. ``Positions.of(text)`` scans the
text once more with one regular expression over its tokens and records, for
every value, its JSON path, the offsets of its key (object members) and of
the value itself. Offsets become 1-based lines and columns (counted in
characters, as code points) only when asked for, through a table of line
starts.

The scan is tolerant: a document being typed in an editor (a missing comma,
an unclosed string, a key without a value) still yields the places of
everything written so far, so the language server can complete and hover in
a file that does not parse yet. It never raises.

The check does not pay for it on a valid spec: a spec's positions are built
on first use (``Spec.positions``), when there is a problem or a warning to
place, or when the language server asks.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable
from json.scanner import make_scanner
from typing import Any

from ..errors import PathPart, Span

__all__ = ["Positions", "Span"]

# Every character of a text belongs to one token, so offsets are running sums of lengths (findall
# builds no match objects: half the time of finditer). A token is (value, colon, trail): a string
# (possibly unterminated at the end of its line; the unrolled form is a third faster), a bracket, a
# bare word (a number, true, false, null, or a typo) or a stray colon or comma; then the colon that
# makes a string a key; then whitespace and commas. Items are counted, not commas, so a missing
# comma is forgiven.
STRING = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?'  # also the language server's string under the cursor
_TOKEN = re.compile(rf'({STRING}|[{{}}\[\]]|[^\s{{}}\[\]:,"]+|[:,])(\s*:)?([\s,]*)')
_LEADING = re.compile(r"[\s,]*")
_NEWLINE = re.compile(r"\n")

Path = tuple[PathPart, ...]


class _Place:
    """Offsets of one value: its key (object members only) and the value; ``end`` is -1 while open."""

    __slots__ = ("children", "container", "end", "key_end", "key_start", "start")

    def __init__(self, key_start: int, key_end: int, start: int, end: int, container: bool) -> None:
        self.key_start = key_start
        self.key_end = key_end
        self.start = start
        self.end = end
        self.container = container
        self.children: list[Path] = []


def _key_text(token: str) -> str:
    """A string token's text (its escapes decoded when it has any)."""
    if "\\" not in token:
        return token[1:-1] if len(token) > 1 and token.endswith('"') else token[1:]
    try:
        decoded = json.loads(token if token.endswith('"') and len(token) > 1 else token + '"')
    except ValueError:
        return token.strip('"')
    return decoded if isinstance(decoded, str) else token.strip('"')


class Positions:
    """The places of every key and value of one JSON text.

    Example:
        >>> pos = Positions.of('{"nodes": {"d": {"layer": "Dense"}}}')
        >>> pos.value(("nodes", "d", "layer"))
        Span(line=1, col=27, end_line=1, end_col=34)
    """

    def __init__(self, text: str, places: dict[Path, _Place]) -> None:
        self.text = text
        self._places = places
        self._lines = [0, *(m.end() for m in _NEWLINE.finditer(text))]

    @classmethod
    def of(cls, text: str, only: Iterable[Path] | None = None) -> Positions:
        """Scan ``text`` once (linear time; tolerant of broken JSON).

        Args:
            text: the JSON text.
            only: record only these paths and their ancestors (what a few
                problems need): values off those paths are skipped by
                ``json``'s own parser (a tenth of the full scan's time for one
                problem; a broken document falls back to the full scan). None
                records every key and value.
        """
        if only is None:
            return cls(text, _scan(text))
        wanted = _Wanted(only)
        places = _Walk(text, wanted).run()  # valid JSON: what is not wanted is skipped by json's C parser
        return cls(text, places if places is not None else _scan(text))  # broken JSON: every place

    def __contains__(self, path: Path) -> bool:
        return tuple(path) in self._places

    def __len__(self) -> int:
        return len(self._places)

    # -- offsets and lines ---------------------------------------------------------------

    def point(self, offset: int) -> tuple[int, int]:
        """(line, column), both 1-based, of a character offset."""
        line = bisect.bisect_right(self._lines, offset) - 1
        return line + 1, offset - self._lines[line] + 1

    def offset(self, line: int, col: int) -> int:
        """The character offset of a 1-based (line, column); clamped to the text."""
        line = min(max(line, 1), len(self._lines))
        start = self._lines[line - 1]
        stop = self._lines[line] - 1 if line < len(self._lines) else len(self.text)
        return min(start + max(col, 1) - 1, stop)

    def span(self, start: int, end: int) -> Span:
        """The Span of offsets [start, end)."""
        return Span(*self.point(start), *self.point(max(end, start)))

    # -- places -------------------------------------------------------------------------

    def _end(self, place: _Place) -> int:
        return place.end if place.end >= 0 else len(self.text)

    def value(self, path: Path) -> Span | None:
        """The span of the value at ``path`` (a whole object or array included), or None."""
        place = self._places.get(tuple(path))
        return None if place is None else self.span(place.start, self._end(place))

    def key(self, path: Path) -> Span | None:
        """The span of the key (quotes included) of the object member at ``path``, or None."""
        place = self._places.get(tuple(path))
        if place is None or place.key_start < 0:
            return None
        return self.span(place.key_start, place.key_end)

    def children(self, path: Path) -> list[Path]:
        """The paths of the members or items of the container at ``path``, in text order."""
        place = self._places.get(tuple(path))
        return list(place.children) if place is not None else []

    def locate(self, path: Path) -> Span:
        """Where a problem about ``path`` is shown: the nearest place that exists.

        A member with a scalar value spans its key through its value
        (``"units": -1``); a member holding an object or array spans its key
        (``"fuse"``), an item holding one spans its opening line; a path that
        does not exist (a missing key) falls back to its nearest ancestor.
        """
        path = tuple(path)
        while path not in self._places and path:
            path = path[:-1]
        place = self._places.get(path)
        if place is None:
            return Span(1, 1, 1, 1)
        if place.key_start >= 0:
            return self.span(place.key_start, place.key_end if place.container else self._end(place))
        if place.container:
            line_end = self.text.find("\n", place.start)
            stop = self._end(place) if line_end < 0 else min(line_end, self._end(place))
            return self.span(place.start, stop)
        return self.span(place.start, self._end(place))

    def path_at(self, line: int, col: int) -> tuple[Path, str]:
        """The innermost path at a 1-based (line, column), and whether the point is on its ``key`` or ``value``.

        A point between values (after a comma, on blank space inside an
        object) belongs to the container around it (``value``).
        """
        offset = self.offset(line, col)
        path: Path = ()
        where = "value"
        while True:
            place = self._places.get(path)
            if place is None or not place.children:
                return path, where
            starts = [self._start(self._places[c]) for c in place.children]
            at = bisect.bisect_right(starts, offset) - 1
            if at < 0:
                return path, where
            child = place.children[at]
            inner = self._places[child]
            if inner.key_start >= 0 and inner.key_start <= offset <= inner.key_end:
                return child, "key"
            if not inner.start <= offset <= self._end(inner) or inner.start < 0:
                return path, "value"
            path, where = child, "value"

    @staticmethod
    def _start(place: _Place) -> int:
        return place.key_start if place.key_start >= 0 else place.start


_WS = re.compile(r"[ \t\n\r]*")
_KEY = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"[ \t\n\r]*:[ \t\n\r]*')
_SKIP = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed types it as its own class


class _Walk:
    """A targeted walk over a valid JSON text: only the wanted paths are entered, the rest skipped in C."""

    def __init__(self, text: str, wanted: _Wanted) -> None:
        self.text = text
        self.below = wanted.below
        self.places: dict[Path, _Place] = {}

    def run(self) -> dict[Path, _Place] | None:
        """The places, or None when the text is not valid JSON (the token scan then takes over)."""
        try:
            self.value((), _WS.match(self.text).end(), -1, -1)  # type: ignore[union-attr]
        except (ValueError, IndexError, AttributeError, StopIteration, RecursionError):
            return None
        return self.places

    def value(self, path: Path, pos: int, key_start: int, key_end: int) -> int:
        """Record the value at ``pos`` (entering it when something below is wanted); return its end."""
        char = self.text[pos]
        kids = self.below.get(path)
        container = char == "{" or char == "["
        place = _Place(key_start, key_end, pos, -1, container)
        self.places[path] = place
        if not container or kids is None or not kids:
            place.end = _SKIP(self.text, pos)[1]
        else:
            place.end = (self.members if char == "{" else self.items)(path, pos + 1, kids, place)
        return place.end

    def members(self, path: Path, pos: int, kids: set[PathPart], place: _Place) -> int:
        text = self.text
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if text[pos] == "}":
            return pos + 1
        while True:
            match = _KEY.match(text, pos)
            raw = match.group(1)  # type: ignore[union-attr]
            key = json.loads(f'"{raw}"') if "\\" in raw else raw
            start = match.end()  # type: ignore[union-attr]
            if key in kids:
                child = (*path, key)
                if child not in self.places:
                    place.children.append(child)
                end = self.value(child, start, pos, pos + len(raw) + 2)
            else:
                end = _SKIP(text, start)[1]
            pos = _WS.match(text, end).end()  # type: ignore[union-attr]
            if text[pos] == "}":
                return pos + 1
            if text[pos] != ",":
                raise ValueError(pos)
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]

    def items(self, path: Path, pos: int, kids: set[PathPart], place: _Place) -> int:
        text = self.text
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if text[pos] == "]":
            return pos + 1
        index = 0
        while True:
            if index in kids:
                place.children.append((*path, index))
                end = self.value((*path, index), pos, -1, -1)
            else:
                end = _SKIP(text, pos)[1]
            index += 1
            pos = _WS.match(text, end).end()  # type: ignore[union-attr]
            if text[pos] == "]":
                return pos + 1
            if text[pos] != ",":
                raise ValueError(pos)
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]


class _Wanted:
    """The paths a targeted walk records: for each wanted path or ancestor, the keys or indices below it."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.below: dict[Path, set[PathPart]] = {(): set()}
        for path in paths:
            for depth in range(len(path)):
                self.below.setdefault(tuple(path[:depth]), set()).add(path[depth])
            self.below.setdefault(tuple(path), set())


# long: one loop over the tokens with its state in locals (a method call per token doubled the time).
def _scan(text: str) -> dict[Path, _Place]:
    """Every value's place in ``text``, in one pass; tolerant of broken JSON."""
    places: dict[Path, _Place] = {}
    # One frame per open container: [path, is_object, key, key_start, key_end, index, place, keys
    # seen]; in an object, key_start >= 0 while a key waits for its value.
    stack: list[list[Any]] = []
    pos = _LEADING.match(text).end()  # type: ignore[union-attr]
    for tok, colon, trail in _TOKEN.findall(text, pos):
        start = pos
        pos += len(tok) + len(colon) + len(trail)
        char = tok[0]
        is_key = colon and char == '"'  # a stray colon after anything else is skipped
        if char == "}" or char == "]":
            _close(stack, places, char == "}", start + 1)
            continue
        if char == ":" or char == ",":
            continue
        if not stack:
            if () in places:
                continue
            path: Path = ()
            key_start = key_end = -1
        else:
            frame = stack[-1]
            if not frame[1]:  # an array: every value is the next item
                path, key_start, key_end = (*frame[0], frame[5]), -1, -1
                frame[5] += 1
            elif is_key or (char == '"' and frame[3] < 0):  # a key (a missing colon is forgiven)
                _pending(frame, places)
                frame[2:5] = _key_text(tok), start, start + len(tok)
                continue
            elif frame[3] >= 0:  # the value of the waiting key
                key = frame[2]
                key_start, key_end = frame[3], frame[4]
                frame[3] = -1
                path = (*frame[0], key)
                if key in frame[7]:  # a duplicate key: the later one is placed, listed once
                    frame[6].children.remove(path)
                frame[7].add(key)
            else:
                continue  # a value with no key: nothing to place it under
            frame[6].children.append(path)
        container = char == "{" or char == "["
        place = places[path] = _Place(key_start, key_end, start, -1 if container else start + len(tok), container)
        if container:
            stack.append([path, char == "{", "", -1, -1, 0, place, set()])
    while stack:  # an unclosed document: keys still waiting are placed
        _pending(stack.pop(), places)
    return places


def _pending(frame: list[Any], places: dict[Path, _Place]) -> None:
    """Place a key that got no value (`"units": }` while typing) with an empty value after it."""
    if frame[1] and frame[3] >= 0:
        path = (*frame[0], frame[2])
        if frame[2] in frame[7]:
            frame[6].children.remove(path)
        frame[7].add(frame[2])
        frame[6].children.append(path)
        places[path] = _Place(frame[3], frame[4], frame[4], frame[4], False)
        frame[3] = -1


def _close(stack: list[list[Any]], places: dict[Path, _Place], is_object: bool, end: int) -> None:
    """A closing bracket: close frames up to the one it matches (or none, if it matches none)."""
    if not any(f[1] == is_object for f in stack):
        return
    while stack:
        frame = stack.pop()
        _pending(frame, places)
        places[frame[0]].end = end
        if frame[1] == is_object:
            break
