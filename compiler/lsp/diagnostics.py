"""fusec's full check of an editor's buffer, as LSP diagnostics.

The check is ``check_spec(path, source=text)``: the same stages as
``fusec check`` (schema, references, cycles, shapes, parameter and memory
budgets, losses), on the unsaved text, with sub-model paths resolved beside
the file. Every problem of the raised ``FusecError`` and every warning of
the ``Checked`` record becomes one diagnostic at the problem's span; a
problem about another file (none reach here today: a sub-model's problems
are reported on its ``model`` node) goes on the first line. The problem's
JSON path and a did-you-mean hint's suggestion travel in the diagnostic's
``data``, so a quick fix can apply it (``actions.py``); what exactly it
replaces is worked out only when the editor asks, so publishing stays as
cheap as the check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from ..errors import MAX_MESSAGE, FusecError, Problem, Span
from ..static.budget import DEFAULT_MAX_PARAMS
from ..static.check import Checked, check_spec
from .documents import View
from .text import to_range

_SUGGESTION = re.compile(r"did you mean `([^`]+)`\?")
_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}


@dataclass(frozen=True)
class Settings:
    """What the checks may ask of this machine (the command line's check options)."""

    max_params: int = DEFAULT_MAX_PARAMS
    allow_dirs: tuple[Path, ...] = ()
    trust: tuple[str, ...] = ()
    max_memory: int | None = None


@dataclass(frozen=True)
class Outcome:
    """One check of one version of a document: the record when it passed, and every problem found."""

    checked: Checked | None
    problems: tuple[Problem, ...]
    file: str | None


def run_check(path: Path, text: str, settings: Settings) -> Outcome:
    """``check_spec`` on ``text`` as if it were the file at ``path``; never raises for a bad spec."""
    try:
        checked = check_spec(
            path,
            settings.max_params,
            settings.allow_dirs,
            max_memory=settings.max_memory,
            trust=settings.trust,
            source=text,
        )
    except FusecError as err:
        return Outcome(None, tuple(err.problems), err.file)
    return Outcome(checked, tuple(checked.warnings), str(path))


def _span(problem: Problem, view: View, own: bool) -> Span:
    if not own:
        return Span(1, 1, 1, 1)
    return problem.span or view.positions.locate(problem.path)


def to_diagnostic(problem: Problem, view: View, own: bool = True) -> types.Diagnostic:
    """One problem as a diagnostic at its span (``own``: the problem is about this document)."""
    text = problem.text
    if problem.path:
        data: dict[str, Any] = {"path": list(problem.path)}
        found = _SUGGESTION.search(problem.hint) if own else None
        if found is not None:
            data["suggestion"] = found.group(1)
    else:
        data = {}
    return types.Diagnostic(
        range=to_range(view.lines, _span(problem, view, own)),
        message=text,
        severity=_SEVERITY.get(problem.severity, types.DiagnosticSeverity.Error),
        code=problem.code,
        source="fusec",
        data=data or None,
    )


def diagnostics(outcome: Outcome, view: View, path: Path) -> list[types.Diagnostic]:
    """Every problem of a check as diagnostics, in the order the check found them."""
    own = outcome.file is None or Path(outcome.file) == path
    return [to_diagnostic(p, view, own) for p in outcome.problems]


def internal_diagnostic(error: BaseException) -> types.Diagnostic:
    """A bug in fusec, shown on the first line rather than crashing the server."""
    zero = types.Position(line=0, character=0)
    return types.Diagnostic(
        range=types.Range(start=zero, end=zero),
        message=f"fusec could not check this file (an internal error; please report it): {error!r}"[:MAX_MESSAGE],
        severity=types.DiagnosticSeverity.Error,
        code="internal",
        source="fusec",
    )
