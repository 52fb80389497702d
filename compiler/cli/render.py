"""``fusec render``: draw a spec as a diagram (SVG, PNG, PDF, DOT or an HTML review page), without TensorFlow.

A spec with errors is drawn too (what could be checked, the failing nodes in
red), and the command still exits 1 with the errors listed. Registered on
the main group in ``cli/__init__.py``.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ..errors import FusecError, printable
from .options import CheckOptions, check_options, drawing_format, spec_arg
from .report import echo_json, error_files, fail, guard, guard_static, warn
from .style import echo_err

FORMATS = ("svg", "png", "pdf", "dot", "html")
DEFAULT_FORMAT = "svg"
MAX_TIMEOUT = 86_400.0
#: A spec with errors is drawn (in red) up to this many nodes; beyond, only its errors are reported:
#: laying out thousands of nodes would take minutes and the errors are what matter.
MAX_BROKEN_DRAWN = 2_000  # a day: Graphviz gets any finite time up to this


def _pick_format(fmt: str | None, output: str | None) -> str:
    """The format: --format, else the -o extension, else svg; a clash is a usage error."""
    return drawing_format(fmt, output, FORMATS, DEFAULT_FORMAT)


class Seconds(click.ParamType):
    """A finite number of seconds in (0, high]; anything else (inf, nan, 0, -1) is a usage error."""

    name = "seconds"

    def __init__(self, high: float) -> None:
        self.high = high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not (math.isfinite(seconds) and 0 < seconds <= self.high):
            self.fail(
                f"{printable(str(value))!r} is not a valid time: give seconds, more than 0 and at most {self.high:g}",
                param,
                ctx,
            )
        return seconds


def _output_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (value == "" or value.endswith(("/", os.sep))):
        raise click.BadParameter(f"{value!r} is not a file name; give a file path, or - for standard output")
    return value


@click.command("render")
@spec_arg
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    callback=_output_value,
    help="Output file (default: <spec file stem>.<format> here); '-' writes to stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format (default: from the -o extension, else svg). dot needs no Graphviz; "
    "html is one self-contained interactive review page.",
)
@click.option(
    "--rankdir",
    type=click.Choice(["TB", "LR"]),
    default="TB",
    show_default=True,
    help="Flow direction: top to bottom or left to right.",
)
@click.option("--collapse", is_flag=True, help="Draw every block instance as one node (same as --depth 0).")
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    default=None,
    help="Draw block instances nested deeper than this as one node each.",
)
@click.option(
    "--unfold",
    is_flag=True,
    help="Draw every branch of a repeated parallel group instead of one ×N box.",
)
@click.option(
    "--timeout",
    type=Seconds(MAX_TIMEOUT),
    default=30.0,
    show_default=True,
    help="Seconds Graphviz may take to lay out the diagram.",
)
@check_options
def render_command(
    spec: Path,
    output: str | None,
    fmt: str | None,
    rankdir: str,
    collapse: bool,
    depth: int | None,
    unfold: bool,
    timeout: float,
    opts: CheckOptions,
) -> None:
    """Draw a spec: shapes, parameters, merges and shared layers (no TensorFlow).

    Needs Graphviz's `dot` program for svg, png, pdf and html. A spec with
    errors is drawn as far as it can be checked, the failing nodes and edges
    in red, and the command exits 1 with the errors.
    """
    from ..render import render
    from ..render.output import check_target, write_atomic

    as_json = opts.as_json
    fmt = _pick_format(fmt, output)
    if output == "-" and as_json:
        raise click.UsageError("-o - writes the diagram to stdout; it cannot be combined with --json")
    checked = opts.checked(spec, lenient=True)
    warn(checked, as_json)
    target = Path(output) if output and output != "-" else Path(f"{spec.stem}.{fmt}")
    inputs: list[Path] = []
    if output != "-":
        from ..static.archive import input_files

        inputs = guard(lambda: input_files(checked), as_json)
        guard(lambda: check_target(target, inputs, derived=output is None), as_json)  # before paying for dot
    errors = [FusecError(list(checked.problems), file=checked.spec.file)] if checked.problems else []
    if errors and len(checked.order) > MAX_BROKEN_DRAWN:
        _not_drawn(errors, f"it has {len(checked.order):,} nodes, and a spec with errors is drawn up to "
                   f"{MAX_BROKEN_DRAWN:,}", as_json)  # fmt: skip
    try:
        data: bytes = guard_static(
            lambda: render(checked, fmt, rankdir, collapse, depth, timeout, unfold=unfold), as_json
        )
    except FusecError as err:
        if errors:  # the spec's own errors come first: the drawing was only a courtesy
            _not_drawn(errors, err.problems[0].message if err.problems else str(err), as_json)
        fail([err], as_json)
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        if errors:
            fail(errors, as_json)
        return
    guard(lambda: write_atomic(target, data, inputs, derived=output is None), as_json)
    _report(spec, target, fmt, data, checked, errors, as_json)


def _not_drawn(errors: list[FusecError], why: str, as_json: bool) -> NoReturn:
    """A spec with errors that could not be drawn: one note saying why, then its errors (exit 1)."""
    if not as_json:
        echo_err(f"note: not drawn: {why}; fix the errors below first")
    fail(errors, as_json)


def _report(
    spec: Path, target: Path, fmt: str, data: bytes, checked: Any, errors: list[FusecError], as_json: bool
) -> None:
    """Say what was written; a spec with errors was drawn in red and the command exits 1."""
    drawn = f"{len(checked.order)} nodes" + (f", {len(checked.problems)} errors in red" if errors else "")
    if as_json and errors:  # the error report, with what was drawn anyway
        drawing = {"output": str(target), "format": fmt, "bytes": len(data), "nodes": len(checked.order)}
        echo_json({"ok": False, "files": error_files(errors), "drawing": drawing})
    elif as_json:
        t = checked.totals
        payload = {
            "ok": True,
            "output": str(target),
            "format": fmt,
            "bytes": len(data),
            "nodes": len(checked.order),
            "params": {"total": t.params, "trainable": t.trainable, "non_trainable": t.non_trainable},
        }
        echo_json(payload)
    else:
        line = f"rendered {printable(str(spec))} -> {printable(str(target))} ({fmt}, {drawn})"
        click.echo(line, err=bool(errors))
    if errors:
        if not as_json:
            fail(errors, False)
        sys.exit(errors[0].exit_code)
