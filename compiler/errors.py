"""One exception family for every stage of the pipeline.

Every problem carries the spec file, the JSON path of the value at fault, the
rule that was broken (with what was received) and, where one exists, the fix.
A stage collects all the problems it can find before raising, so a user sees
every mistake in one run rather than one per run.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

PathPart = str | int

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Characters a spec (or a file name) may carry that would act on a terminal or
# a reader instead of being shown: control characters (ANSI escape sequences,
# new lines that fake extra `error:` lines), bidirectional overrides that
# reorder what is displayed, zero-width characters and lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
MAX_MESSAGE = 1000  # characters of one message or hint; a hostile value cannot flood the terminal


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with unsafe characters escaped (``\\x1b``, ``\\u202e``) and cut to ``limit`` characters."""
    text = _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)
    if limit is not None and len(text) > limit:
        half = (limit - 5) // 2  # keep both ends: the rule starts a message, what was received often ends it
        text = f"{text[:half]} ... {text[-half:]}"
    return text


def json_path(parts: Iterable[PathPart]) -> str:
    """Format path parts as a JSONPath string such as ``$.nodes.fuse.inputs[1]``.

    Args:
        parts: object keys (str) and array indices (int), outermost first.

    Returns:
        The path; keys that are not plain identifiers are quoted
        (``$.nodes['my-node']``).
    """
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENT.match(part):
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` names from ``choices`` close to ``word``, best first.

    Case is ignored first (``Relu`` is ``relu``, not ``elu``), then names are
    compared letter by letter, case-insensitively.
    """
    pool = sorted(set(choices))
    lowered: dict[str, str] = {}
    for c in pool:
        lowered.setdefault(c.lower(), c)
    exact = lowered.get(word.lower())
    if exact is not None:
        return [exact]
    return [lowered[h] for h in difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)]


def quote_names(names: Sequence[str], limit: int = 12) -> str:
    """Render names as ```a`, `b`, `c``` (truncated with a count past ``limit``)."""
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    if len(names) > limit:
        shown += f" (and {len(names) - limit} more)"
    return shown


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec.

    Attributes:
        path: JSON path parts of the value at fault (empty for the whole file).
        message: the rule that was broken and what was received.
        hint: how to fix it, or the nearest valid names ("" when none helps).
        code: a stable machine-readable category (``schema``, ``reference``...).
        severity: ``error`` (the spec is refused) or ``warning`` (it compiles,
            but will probably not train or serve as meant; ``--strict`` refuses it).
    """

    path: tuple[PathPart, ...]
    message: str
    hint: str = ""
    code: str = "spec"
    severity: str = "error"

    @property
    def jsonpath(self) -> str:
        return json_path(self.path)

    def format(self, file: str | None) -> str:
        """One line: ``file: $.path: message (hint)``, safe to print on a terminal."""
        where = f"{printable(file)}: " if file else ""
        # A problem with no file and no path (a missing output folder, say) is not about a spec.
        at = f"{printable(self.jsonpath, MAX_MESSAGE)}: " if (file or self.path) else ""
        text = f"{where}{at}{printable(self.message, MAX_MESSAGE)}"
        if self.hint:
            text += f" ({printable(self.hint, MAX_MESSAGE)})"
        return text

    def to_json(self, file: str | None) -> dict[str, Any]:
        """The problem as a JSON object (see docs/security.md for the schema)."""
        return {
            "file": printable(file) if file is not None else None,
            "path": printable(self.jsonpath, MAX_MESSAGE),
            "code": self.code,
            "message": printable(self.message, MAX_MESSAGE),
            "hint": printable(self.hint, MAX_MESSAGE),
            "severity": self.severity,
        }


@dataclass
class FusecError(Exception):
    """A spec, or what fusec was asked to do with it, is wrong.

    Attributes:
        problems: every problem found, most important first.
        file: the spec file the problems belong to, when known.
    """

    problems: list[Problem] = field(default_factory=list)
    file: str | None = None
    stage: str = "spec"

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(p.format(self.file) for p in self.problems)

    def lines(self) -> list[str]:
        return [p.format(self.file) for p in self.problems]

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json(self.file) for p in self.problems]

    @classmethod
    def single(
        cls: type[_E],
        path: Iterable[PathPart],
        message: str,
        hint: str = "",
        code: str = "spec",
        file: str | None = None,
    ) -> _E:
        return cls([Problem(tuple(path), message, hint, code)], file=file)


_E = TypeVar("_E", bound=FusecError)


class LoadError(FusecError):
    """The file could not be read as one strict JSON document."""


class SchemaError(FusecError):
    """The document does not follow the spec schema."""


class GraphError(FusecError):
    """Ids, references, cycles or reachability are wrong."""


class ShapeError(FusecError):
    """Static shapes or parameter counts do not work out."""


class BuildError(FusecError):
    """Keras refused to build or compile the model."""


class OutputError(FusecError):
    """The output location cannot be written."""


class RuleError(Exception):
    """Raised by a layer or merge rule; the caller adds the JSON path.

    Attributes:
        message: the rule and what was received.
        key: the config key at fault, when one is (added to the path).
        hint: the fix, when one is known.
    """

    def __init__(self, message: str, key: str | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.hint = hint
