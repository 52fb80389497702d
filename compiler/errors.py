"""One exception family for every stage of the pipeline.

Every problem carries the spec file, the JSON path of the value at fault, the
rule that was broken (with what was received) and, where one exists, the fix.
A stage collects all the problems it can find before raising, so a user sees
every mistake in one run rather than one per run.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

PathPart = str | int

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters a spec (or a file name) may carry that would act on a terminal or
# a reader instead of being shown: control characters (ANSI escape sequences,
# new lines that fake extra `error:` lines), bidirectional overrides that
# reorder what is displayed, zero-width characters and lone surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2069\u3164\ufe00-\ufe0f\ufeff\uffa0\ud800-\udfff]"
)
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
        elif _IDENT.fullmatch(part):
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


#: Exit statuses of the ``fusec`` command: success, a bad input or output (a spec, a data
#: file, a path), bad usage (click's), an internal error (a bug in fusec), interrupted.
EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class NameIndex:
    """Names to suggest from, indexed once; near misses found in bounded time.

    An exact match ignoring case is a dict lookup. A near miss is found in
    three steps of growing cost: only among the ``MAX_CANDIDATES`` names that
    sort next to the word, forwards and backwards (a typo keeps either the
    start or the end of a name); those ranked by difflib's linear-time
    ``quick_ratio`` (an upper bound of the full ratio); and difflib's full
    ``ratio`` (quadratic in the name's length on repetitive names) on at most
    ``MAX_RATIO`` of them, best first, stopping as soon as none left can win.
    Names are compared on their first ``MAX_COMPARED`` characters.

    Fuzzy lookups are bounded per check, not per index: a spec can hold many
    indexes (one per block), so the count lives in a context variable that
    ``suggestion_budget`` sets for one check (``MAX_FUZZY`` lookups in all);
    outside one, each index allows ``MAX_FUZZY`` lookups. A spec with 3,000
    dangling references to 20,000 ids used to spend minutes in suggestions;
    now the whole cost is bounded. Real specs stay far below these bounds, so
    their suggestions do not change.
    """

    MAX_FUZZY = 25
    MAX_CANDIDATES = 1_000
    MAX_RATIO = 32
    MAX_COMPARED = 48

    def __init__(self, choices: Iterable[str]) -> None:
        self.names = sorted(set(choices))
        self._lower: dict[str, str] = {}
        for c in self.names:
            self._lower.setdefault(c.lower(), c)
        self._sorted: tuple[list[str], list[str]] | None = None
        self._own_budget = [self.MAX_FUZZY]

    def near(self, word: str, n: int = 3) -> list[str]:
        """Up to ``n`` names close to ``word``, best first (``[]`` when none is close)."""
        lowered = word.lower()
        exact = self._lower.get(lowered)
        if exact is not None:
            return [exact]
        budget = _FUZZY_BUDGET.get() or self._own_budget
        if budget[0] <= 0 or not self._lower:
            return []
        budget[0] -= 1
        pool = self._candidates(lowered) if len(self._lower) > self.MAX_CANDIDATES else list(self._lower)
        return [self._lower[h] for h in _closest(lowered, pool, n, self.MAX_RATIO, self.MAX_COMPARED)]

    def _candidates(self, lowered: str) -> list[str]:
        """The names sorting next to ``lowered``, and those whose reversal sorts next to its reversal."""
        if self._sorted is None:
            self._sorted = (sorted(self._lower), sorted(low[::-1] for low in self._lower))
        forwards, backwards = self._sorted
        half = self.MAX_CANDIDATES // 4
        found = set()
        for names, key, flip in ((forwards, lowered, False), (backwards, lowered[::-1], True)):
            at = bisect.bisect_left(names, key)
            for name in names[max(0, at - half) : at + half]:
                found.add(name[::-1] if flip else name)
        return sorted(found)


#: Fuzzy lookups left in the current check (``suggestion_budget``); None outside one.
_FUZZY_BUDGET: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("fusec_fuzzy_budget", default=None)


@contextlib.contextmanager
def suggestion_budget(lookups: int = NameIndex.MAX_FUZZY) -> Iterator[None]:
    """Bound the fuzzy did-you-mean lookups of everything run inside, across every ``NameIndex``."""
    if _FUZZY_BUDGET.get() is not None:  # a nested check (a sub-model spec) shares its parent's budget
        yield
        return
    token = _FUZZY_BUDGET.set([lookups])
    try:
        yield
    finally:
        _FUZZY_BUDGET.reset(token)


def _closest(word: str, pool: Sequence[str], n: int, most: int, compared: int) -> list[str]:
    """Up to ``n`` names of ``pool`` with difflib's ratio >= 0.6 to ``word``, best first, in bounded time.

    The same answer as ``difflib.get_close_matches`` whenever the exact search
    ends within ``most`` full ratios: candidates are scored in the order of
    ``quick_ratio`` (an upper bound of ``ratio``), stopping once no remaining
    one can beat the ``n``-th best score found.
    """
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(word[:compared])
    ranked: list[tuple[float, str]] = []
    for name in pool:
        matcher.set_seq1(name[:compared])
        if matcher.real_quick_ratio() >= 0.6:
            quick = matcher.quick_ratio()
            if quick >= 0.6:
                ranked.append((quick, name))
    ranked.sort(reverse=True)
    scored: list[tuple[float, str]] = []
    for quick, name in ranked[:most]:
        if len(scored) >= n and quick < scored[n - 1][0]:
            break
        matcher.set_seq1(name[:compared])
        score = matcher.ratio()
        if score >= 0.6:
            scored.append((score, name))
            scored.sort(reverse=True)
    return [name for _, name in scored[:n]]


def did_you_mean(word: str, choices: Iterable[str] | NameIndex, n: int = 3) -> list[str]:
    """Return up to ``n`` names from ``choices`` close to ``word``, best first.

    Case is ignored first (``Relu`` is ``relu``, not ``elu``), then names are
    compared letter by letter, case-insensitively. Pass a ``NameIndex`` when
    asking about many words against one large set of names.
    """
    index = choices if isinstance(choices, NameIndex) else NameIndex(choices)
    return index.near(word, n)


def quote_names(names: Sequence[str], limit: int = 12) -> str:
    """Render names as ```a`, `b`, `c``` (truncated with a count past ``limit``)."""
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    if len(names) > limit:
        shown += f" (and {len(names) - limit} more)"
    return shown


@dataclass(frozen=True)
class Span:
    """A place in a file: 1-based lines and columns (columns count characters), end exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


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
        span: where the value at fault sits in the file (line and column),
            when known: the check fills it in for every problem of the
            checked file (``spec/positions.py``).
    """

    path: tuple[PathPart, ...]
    message: str
    hint: str = ""
    code: str = "spec"
    severity: str = "error"
    span: Span | None = field(default=None, compare=False)

    @property
    def jsonpath(self) -> str:
        return json_path(self.path)

    @property
    def text(self) -> str:
        """``message (hint)``, safe to print on a terminal: what every format (text, SARIF, LSP) shows."""
        text = printable(self.message, MAX_MESSAGE)
        if self.hint:
            text += f" ({printable(self.hint, MAX_MESSAGE)})"
        return text

    def _at(self, file: str | None) -> str:
        """``$.path: ``; nothing for a problem with neither file nor path (a missing output folder)."""
        return f"{printable(self.jsonpath, MAX_MESSAGE)}: " if (file or self.path) else ""

    def format(self, file: str | None) -> str:
        """One line: ``file: $.path: message (hint)``, safe to print on a terminal."""
        where = f"{printable(file)}: " if file else ""
        return f"{where}{self._at(file)}{self.text}"

    def placed(self, span: Span) -> Problem:
        """This problem at ``span`` (built directly: ``dataclasses.replace`` costs 3x more per problem)."""
        return Problem(self.path, self.message, self.hint, self.code, self.severity, span)

    def line(self, file: str | None) -> str:
        """The ``file:line:col: error: $.path: message (hint)`` line that editors and terminals link.

        Without a known place it is ``file: error: $.path: ...``; a problem
        with neither file nor path (a missing output folder) is ``error: message``.
        """
        text = f"{self._at(file)}{self.text}"
        if file is None:
            return f"{self.severity}: {text}"
        where = f"{printable(file)}:{self.span}" if self.span else printable(file)
        return f"{where}: {self.severity}: {text}"

    def to_json(self, file: str | None) -> dict[str, Any]:
        """The problem as a JSON object (see docs/security.md for the schema)."""
        out: dict[str, Any] = {
            "file": printable(file) if file is not None else None,
            "path": printable(self.jsonpath, MAX_MESSAGE),
            "code": self.code,
            "message": printable(self.message, MAX_MESSAGE),
            "hint": printable(self.hint, MAX_MESSAGE),
            "severity": self.severity,
        }
        if self.span:
            s = self.span
            out.update(line=s.line, column=s.col, end_line=s.end_line, end_column=s.end_col)
        return out


@dataclass
class FusecError(Exception):
    """A spec, or what fusec was asked to do with it, is wrong.

    Attributes:
        problems: every problem found, most important first.
        file: the spec file the problems belong to, when known.
        exit_code: the CLI's exit status for this error (as click's
            exceptions carry theirs): 1, a bad input or output.
    """

    problems: list[Problem] = field(default_factory=list)
    file: str | None = None
    exit_code: ClassVar[int] = EXIT_INPUT

    def __post_init__(self) -> None:
        # The message is formatted when asked for (str), not here: an error
        # with 20,000 problems is built and re-raised by several stages.
        super().__init__()

    def __str__(self) -> str:
        return "\n".join(p.format(self.file) for p in self.problems)

    def lines(self) -> list[str]:
        return [p.format(self.file) for p in self.problems]

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json(self.file) for p in self.problems]

    def locate(self, file: str, where: Callable[[tuple[PathPart, ...]], Span]) -> None:
        """Give the problems of ``file`` that have no place yet the place ``where`` finds for their path."""
        if self.file == file:
            self.problems = [p if p.span else p.placed(where(p.path)) for p in self.problems]

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
