"""Load stage: one spec file becomes one strict JSON document.

Python's ``json`` module accepts duplicate keys (the last one silently wins),
NaN and Infinity, and integers of any length. A spec is a contract, so each of
those is an error here, reported with the JSON path of the value at fault.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LoadError, PathPart, Problem

MAX_BYTES = 8 * 1024 * 1024  # far above any real spec; keeps a hostile file cheap to refuse
MAX_DEPTH = 64  # a spec nests about 8 deep; Bidirectional config adds 2
MAX_INT_DIGITS = 19  # int64


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


class _Obj(dict[str, Any]):
    """A JSON object that remembers keys given more than once."""

    duplicates: list[str]


class _Bad:
    """Stands in for a value the loader refuses, so its path can be found."""

    def __init__(self, message: str, hint: str) -> None:
        self.message = message
        self.hint = hint


def _pairs(pairs: list[tuple[str, Any]]) -> _Obj:
    obj = _Obj()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _constant(name: str) -> _Bad:
    return _Bad(f"{name} is not valid JSON", "write a finite number")


def _int(text: str) -> int | _Bad:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        shown = f"{text[:12]}...({len(digits)} digits)"
        return _Bad(f"integer {shown} is too large", "use a number below 2**63")
    return int(text)


def _float(text: str) -> float | _Bad:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Bad(f"number {text[:24]} overflows a double", "use a finite number")
    return value


def _audit(value: Any, path: tuple[PathPart, ...], problems: list[Problem], depth: int = 0) -> Any:
    """Find refused values and duplicate keys; return plain dicts and lists."""
    if depth > MAX_DEPTH:
        problems.append(Problem(path, f"nesting is deeper than {MAX_DEPTH} levels", "flatten the document", "json"))
        return None
    if isinstance(value, _Bad):
        problems.append(Problem(path, value.message, value.hint, "json"))
        return None
    if isinstance(value, dict):
        for key in getattr(value, "duplicates", []):
            problems.append(
                Problem(
                    (*path, key),
                    f"key `{key}` is given more than once in one object",
                    "keep one; JSON parsers disagree on which one wins",
                    "json",
                )
            )
        return {k: _audit(v, (*path, k), problems, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_audit(v, (*path, i), problems, depth + 1) for i, v in enumerate(value)]
    return value


def parse_spec(data: bytes, file: str) -> Any:
    """Parse spec bytes as strict JSON.

    Args:
        data: the file's bytes.
        file: the name used in error messages.

    Returns:
        The document as plain dicts, lists, strings, numbers, booleans and None.

    Raises:
        LoadError: for non-UTF-8 bytes, invalid JSON, duplicate keys, NaN or
            Infinity, over-long integers, or over-deep nesting.
    """
    if len(data) > MAX_BYTES:
        raise LoadError.single(
            (), f"file is {len(data):,} bytes; the limit is {MAX_BYTES:,}", "split the spec", "json", file
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
    try:
        raw = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_int, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise LoadError.single(
            (), f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", "", "json", file
        ) from None
    except RecursionError:
        raise LoadError.single(
            (), f"nesting is deeper than {MAX_DEPTH} levels", "flatten the document", "json", file
        ) from None
    problems: list[Problem] = []
    doc = _audit(raw, (), problems)
    if problems:
        raise LoadError(problems, file=file)
    return doc


def load_spec(path: str | Path) -> Spec:
    """Read a spec file strictly.

    Args:
        path: the spec's path.

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
    if not p.exists():
        raise LoadError.single((), "no such file", "check the path", "file", file)
    if not p.is_file():
        raise LoadError.single((), "not a regular file", "pass the path of a .json spec", "file", file)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise LoadError.single((), f"cannot read the file: {exc.strerror}", "", "file", file) from None
    doc = parse_spec(data, file)
    return Spec(p, doc, hashlib.sha256(data).hexdigest(), data.decode("utf-8"))
