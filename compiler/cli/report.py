"""How every command ends: results and errors printed, and the exit status.

Each error carries its exit status (``FusecError.exit_code``, as click's
exceptions carry theirs): 1 for a bad input or output, 2 for bad usage
(click's own), 3 for an internal error (a bug: one clean message, the
traceback only with ``FUSEC_DEBUG=1``), 130 when interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from ..errors import EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, MAX_MESSAGE, FusecError, Problem, printable
from ..version import __version__
from .style import echo_err, paint_diagnostic


def _spec_param() -> str | None:
    """The SPEC argument of the running command, for errors that carry no file (outputs)."""
    ctx = click.get_current_context(silent=True)
    spec = ctx.params.get("spec") if ctx is not None else None
    return printable(str(spec)) if spec is not None else None


def emit_errors(errors: list[FusecError], as_json: bool) -> None:
    """Print errors: ``error:`` lines on stderr, or the --json report on stdout.

    The JSON report has the shape of ``fusec check --json`` (schema in
    docs/security.md): ``{"ok": false, "files": [{"file", "ok", "errors": [...]}]}``.
    """
    if as_json:
        click.echo(json.dumps({"ok": False, "files": error_files(errors)}, indent=2))
        return
    for err in errors:
        for problem in err.problems:
            echo_err(paint_diagnostic(problem.line(err.file)))


def error_files(errors: list[FusecError]) -> list[dict[str, Any]]:
    """The ``files`` list of the --json error report: per file, its errors."""
    fallback = _spec_param()
    files: dict[str | None, list[dict[str, Any]]] = {}
    for err in errors:
        for item in err.to_json():
            item["file"] = item["file"] or fallback
            files.setdefault(item["file"], []).append(item)
    return [{"file": file, "ok": False, "errors": items} for file, items in files.items()]


def internal(exc: BaseException, as_json: bool) -> NoReturn:
    """Report a bug in fusec (exit 3): one clean message, the traceback only with FUSEC_DEBUG=1."""
    what = printable(f"{type(exc).__name__}: {exc}", MAX_MESSAGE)
    if as_json:
        problem = Problem((), f"internal error in fusec {__version__}: {what}", "this is a bug in fusec", "internal")
        emit_errors([FusecError([problem])], True)
    echo_err(paint_diagnostic(f"error: internal error in fusec {__version__}: {what}"))
    echo_err("This is a bug in fusec, not in your spec. Re-run with FUSEC_DEBUG=1 for the traceback and report it.")
    sys.exit(EXIT_INTERNAL)


def fail(errors: list[FusecError], as_json: bool) -> NoReturn:
    """Print the errors and exit with the first one's status."""
    emit_errors(errors, as_json)
    sys.exit(errors[0].exit_code if errors else EXIT_INPUT)


def guard(fn: Callable[[], Any], as_json: bool) -> Any:
    """Run ``fn``; turn FusecError into a clean report and anything else into exit 3."""
    try:
        return guard_static(fn, as_json)
    except FusecError as err:
        fail([err], as_json)


def guard_static(fn: Callable[[], Any], as_json: bool = False) -> Any:
    """Run ``fn``; let FusecError through (``check`` collects them per file), end anything else cleanly."""
    try:
        return fn()
    except FusecError:
        raise
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if os.environ.get("FUSEC_DEBUG"):
            raise
        internal(exc, as_json)


def warn(checked: Any, as_json: bool) -> None:
    """Print a checked spec's warnings as ``warning:`` lines on stderr (in --json they go in the report)."""
    if as_json:
        return
    for problem in checked.warnings:
        echo_err(paint_diagnostic(problem.line(checked.spec.file)))


def echo_json(payload: Any) -> None:
    """Print a --json result."""
    click.echo(json.dumps(payload, indent=2))
