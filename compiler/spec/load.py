"""Load stage: one spec file becomes one strict JSON document.

Python's ``json`` module accepts duplicate keys (the last one silently wins),
NaN and Infinity, and integers of any length. A spec is a contract, so each of
those is an error here, reported with the JSON path of the value at fault.

A spec is also untrusted input, so the loader bounds the work any file can
cause before the later stages see it: the file's size, its nesting depth, the
number of JSON values it holds and the number of entries per section are all
capped, and each cap is checked in time linear in the capped quantity.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FusecError, LoadError, PathPart, Problem, Span
from .positions import Positions

MAX_BYTES = 8 * 1024 * 1024  # far above any real spec; keeps a hostile file cheap to refuse
MAX_DEPTH = 64  # a spec nests about 8 deep; Bidirectional config adds 2
MAX_INT_DIGITS = 19  # int64
MAX_VALUES = 250_000  # JSON values in one document (a 20,000-node spec holds about 150,000)
MAX_ENTRIES = 20_000  # entries of one section (inputs, nodes, shared, blocks, outputs), as the schema says
_SECTIONS = ("inputs", "shared", "blocks", "nodes", "outputs")


@dataclass(frozen=True)
class Spec:
    """A loaded spec.

    Attributes:
        path: where it was read from.
        doc: the parsed JSON document (not yet validated).
        sha256: hex digest of the file's bytes, recorded beside compiled models.
        text: the file's text, saved beside compiled models.
    """

    path: Path
    doc: Any
    sha256: str
    text: str

    @property
    def file(self) -> str:
        return str(self.path)

    @functools.cached_property
    def positions(self) -> Positions:
        """The line and column of every key and value (scanned on first use; ``positions.py``)."""
        return Positions.of(self.text.removeprefix("\ufeff"))

    def key_lines(self, paths: Iterable[tuple[PathPart, ...]]) -> dict[tuple[PathPart, ...], int]:
        """The line each path's key is written on (the review page's "line N"); paths not in the file are left out.

        One scan along these paths only (the full scan when positions were already built).
        """
        wanted = set(paths)
        if "positions" in self.__dict__:
            pos = self.positions
        else:
            try:
                pos = Positions.of(self.text.removeprefix("\ufeff"), only=list(wanted))
            except ValueError:
                return {}
        out = {}
        for path in wanted:
            span = pos.key(path) if path in pos else None
            if span is not None:
                out[path] = span.line
        return out

    def _places(self, problems: Sequence[Problem]) -> Positions:
        """The positions these problems need: all of them once scanned, else only their paths' (cheaper)."""
        if "positions" in self.__dict__:
            return self.positions
        return Positions.of(self.text.removeprefix("\ufeff"), only=[p.path for p in problems if p.span is None])

    def locate(self, err: FusecError) -> FusecError:
        """``err`` with a place (line and column) on each of its problems about this file."""
        if err.file == self.file and any(p.span is None for p in err.problems):
            err.locate(self.file, self._places(err.problems).locate)
        return err

    def located(self, problems: Sequence[Problem]) -> tuple[Problem, ...]:
        """``problems`` (warnings) with their places in this file."""
        if all(p.span for p in problems):
            return tuple(problems)
        where = self._places(problems).locate
        return tuple(p if p.span else p.placed(where(p.path)) for p in problems)


class _Bad:
    """Stands in for a value the loader refuses, so its path can be found."""

    def __init__(self, message: str, hint: str) -> None:
        self.message = message
        self.hint = hint


@dataclass
class _Parse:
    """Parser hooks that note refused values without building paths (cheap on valid files)."""

    flagged: bool = False
    duplicates: dict[int, tuple[Any, list[str]]] = field(default_factory=dict)  # id(obj) -> (obj, keys)

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            dups: list[str] = []
            for key, _ in pairs:
                if key in seen and key not in dups:
                    dups.append(key)
                seen.add(key)
            self.duplicates[id(obj)] = (obj, dups)  # keeps obj alive, so its id stays unique
            self.flagged = True
        return obj

    def bad(self, message: str, hint: str) -> _Bad:
        self.flagged = True
        return _Bad(message, hint)

    def constant(self, name: str) -> _Bad:
        return self.bad(f"{name} is not valid JSON", "write a finite number")

    def int(self, text: str) -> int | _Bad:
        digits = text.lstrip("-")
        if len(digits) > MAX_INT_DIGITS:
            shown = f"{text[:12]}...({len(digits)} digits)"
            return self.bad(f"integer {shown} is too large", "use a number below 2**63")
        return int(text)

    def float(self, text: str) -> float | _Bad:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            return self.bad(f"number {text[:24]} overflows a double", "use a finite number")
        return value


_STRING = re.compile(r'"[^"]*"')  # a string, once escaped quotes are gone: no backtracking


def _surely_too_many(text: str) -> bool:
    """True when the text holds more than MAX_VALUES values, judged before parsing.

    Every comma outside a string adds one value, so counting them bounds the
    values from below; the parser then never builds millions of values only
    to refuse them. Escapes are dropped first (pairs of backslashes, then
    escaped quotes), so every quote left delimits a string and the count takes
    linear time whatever the text.
    """
    if text.count(",") <= MAX_VALUES:
        return False
    plain = text.replace("\\\\", "").replace('\\"', "")
    return _STRING.sub("", plain).count(",") > MAX_VALUES


def _measure(doc: Any) -> tuple[int, int]:
    """(number of values, deepest nesting), stopping early past MAX_VALUES or MAX_DEPTH."""
    count, deepest = 1, 0
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH or count > MAX_VALUES:
            break
        if type(value) is not dict and type(value) is not list:
            continue  # a document that is one scalar
        items = value.values() if type(value) is dict else value
        count += len(items)
        stack.extend((v, depth + 1) for v in items if type(v) is dict or type(v) is list)
    return count, deepest


def _audit(value: Any, path: tuple[PathPart, ...], problems: list[Problem], parse: _Parse, depth: int = 0) -> None:
    """Find refused values, duplicate keys and over-deep nesting, with their paths."""
    if depth > MAX_DEPTH:
        problems.append(Problem(path, f"nesting is deeper than {MAX_DEPTH} levels", "flatten the document", "json"))
        return
    if isinstance(value, _Bad):
        problems.append(Problem(path, value.message, value.hint, "json"))
    elif isinstance(value, dict):
        for key in parse.duplicates.get(id(value), (None, []))[1]:
            problems.append(
                Problem(
                    (*path, key),
                    f"key `{key}` is given more than once in one object",
                    "keep one; JSON parsers disagree on which one wins",
                    "json",
                )
            )
        for k, v in value.items():
            _audit(v, (*path, k), problems, parse, depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _audit(v, (*path, i), problems, parse, depth + 1)


def _section_problems(doc: Any) -> list[Problem]:
    """Sections over MAX_ENTRIES, refused before the schema stage spends time on each entry."""
    if not isinstance(doc, dict):
        return []
    sections: list[tuple[tuple[PathPart, ...], Any]] = [((s,), doc.get(s)) for s in _SECTIONS]
    blocks = doc.get("blocks")
    if isinstance(blocks, dict):
        sections += [(("blocks", b, "nodes"), v.get("nodes")) for b, v in blocks.items() if isinstance(v, dict)]
    return [
        Problem(
            path,
            f"`{path[-1]}` has {len(value):,} entries; the limit is {MAX_ENTRIES:,}",
            "split the model into sub-models, or use blocks",
            "limit",
        )
        for path, value in sections
        if isinstance(value, Mapping) and len(value) > MAX_ENTRIES
    ]


def _too_many(file: str) -> LoadError:
    return LoadError.single(
        (),
        f"the document holds more than {MAX_VALUES:,} JSON values",
        "split the model into sub-models, or use blocks",
        "limit",
        file,
    )


# long: one pass of read, parse, limits and schema, each step with its own message.
def parse_spec(data: bytes, file: str) -> Any:
    """Parse spec bytes as strict JSON, within fusec's limits.

    Args:
        data: the file's bytes.
        file: the name used in error messages.

    Returns:
        The document as plain dicts, lists, strings, numbers, booleans and None.

    Raises:
        LoadError: for a file over MAX_BYTES, non-UTF-8 bytes, invalid JSON,
            duplicate keys, NaN or Infinity, over-long integers, nesting
            deeper than MAX_DEPTH, more than MAX_VALUES values, or a section
            with more than MAX_ENTRIES entries.
    """
    if len(data) > MAX_BYTES:
        raise LoadError.single(
            (), f"file is {len(data):,} bytes; the limit is {MAX_BYTES:,}", "split the spec", "limit", file
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError.single(
            (),
            f"file is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
            "save the spec as UTF-8 JSON",
            "json",
            file,
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise LoadError.single((), "file is empty", 'a spec is a JSON object: {"fusec": 1, ...}', "json", file)
    if _surely_too_many(text):
        raise _too_many(file)
    parse = _Parse()
    try:
        raw = json.loads(
            text,
            object_pairs_hook=parse.pairs,
            parse_constant=parse.constant,
            parse_int=parse.int,
            parse_float=parse.float,
        )
    except json.JSONDecodeError as exc:
        at = Span(exc.lineno, exc.colno, exc.lineno, exc.colno + 1)
        message = f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise LoadError([Problem((), message, "", "json", span=at)], file=file) from None
    except RecursionError:
        raise LoadError.single(
            (), f"nesting is deeper than {MAX_DEPTH} levels", "flatten the document", "json", file
        ) from None
    count, deepest = _measure(raw)
    if count > MAX_VALUES and deepest <= MAX_DEPTH:
        raise _too_many(file)
    problems: list[Problem] = []
    if parse.flagged or deepest > MAX_DEPTH:
        _audit(raw, (), problems, parse)
    problems = problems or _section_problems(raw)
    if problems:
        raise LoadError(problems, file=file)
    return raw


#: Why a spec path cannot be read, by the error ``stat`` gives: (message, fix).
_STAT_ERRORS = {
    errno.ENOENT: ("no such file", "check the path"),
    errno.ENOTDIR: ("no such file (a part of the path is not a folder)", "check the path"),
    errno.ELOOP: ("the path is a loop of symbolic links", "point the link at the spec file"),
    errno.ENAMETOOLONG: ("the path is too long for the file system", "use a shorter name (255 bytes at most)"),
    errno.EACCES: ("permission denied", "make the file readable"),
}


def load_spec(path: str | Path, source: str | None = None) -> Spec:
    """Read a spec file strictly.

    Args:
        path: the spec's path.
        source: the spec's text when it is not read from ``path`` (an
            editor's unsaved buffer): it is checked as if it were the file.

    Returns:
        The loaded Spec (parsed, not yet validated).

    Raises:
        LoadError: when the path is missing or not a file, or its contents
            are not one strict JSON document (see ``parse_spec``).

    Example:
        >>> spec = load_spec("specs/image_tag.json")  # doctest: +SKIP
        >>> spec.doc["name"]  # doctest: +SKIP
        'image_tag'
    """
    p = Path(path)
    file = str(path)
    if source is not None:
        return _parsed(p, source.encode("utf-8", "surrogatepass"))
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        message, hint = _STAT_ERRORS.get(exc.errno or 0, (f"cannot read the file: {exc.strerror}", "check the path"))
        raise LoadError.single((), message, hint, "file", file) from None
    if not stat.S_ISREG(mode):
        raise LoadError.single((), "not a regular file", "pass the path of a .json spec", "file", file)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise LoadError.single((), f"cannot read the file: {exc.strerror}", "", "file", file) from None
    return _parsed(p, data)


def _parsed(path: Path, data: bytes) -> Spec:
    """The Spec of a file's bytes; a refusal of a value names its line and column."""
    try:
        doc = parse_spec(data, str(path))
    except LoadError as err:
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise err from None
        if any(p.path for p in err.problems):  # a limit on the whole file has no place to scan for
            err.locate(str(path), Positions.of(text, only=[p.path for p in err.problems]).locate)
        raise err from None
    return Spec(path, doc, hashlib.sha256(data).hexdigest(), data.decode("utf-8"))
