"""``fusec render``: draw a spec as a diagram (SVG, PNG, PDF or DOT), without TensorFlow.

Registered on the main group in ``cli/__init__.py``.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import printable
from ..render.output import check_target, write_atomic
from .options import CheckOptions, check_options, spec_arg
from .report import echo_json, guard, warn

FORMATS = ("svg", "png", "pdf", "dot")
DEFAULT_FORMAT = "svg"
MAX_TIMEOUT = 86_400.0  # a day: Graphviz gets any finite time up to this


def _pick_format(fmt: str | None, output: str | None) -> str:
    """The format: --format, else the -o extension, else svg; a clash is a usage error."""
    ext = Path(output).suffix.lower().lstrip(".") if output and output != "-" else ""
    if fmt is not None:
        if ext in FORMATS and ext != fmt:
            raise click.UsageError(f"-o {output} ends in .{ext} but --format is {fmt}; make them agree")
        return fmt
    if ext in FORMATS:
        return ext
    if ext:
        raise click.UsageError(
            f"cannot tell the format from -o {output}: use a .svg, .png, .pdf or .dot name, or --format"
        )
    return DEFAULT_FORMAT


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
    help="Output format (default: from the -o extension, else svg). dot needs no Graphviz.",
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
    timeout: float,
    opts: CheckOptions,
) -> None:
    """Draw a spec: shapes, parameters, merges and shared layers (no TensorFlow).

    Needs Graphviz's `dot` program for svg, png and pdf.
    """
    from ..render import render

    as_json = opts.as_json
    fmt = _pick_format(fmt, output)
    if output == "-" and as_json:
        raise click.UsageError("-o - writes the diagram to stdout; it cannot be combined with --json")
    checked = opts.checked(spec)
    warn(checked, as_json)
    target = Path(output) if output and output != "-" else Path(f"{spec.stem}.{fmt}")
    inputs: list[Path] = []
    if output != "-":
        from ..static.archive import input_files

        inputs = guard(lambda: input_files(checked), as_json)
        guard(lambda: check_target(target, inputs, derived=output is None), as_json)  # before paying for dot
    data: bytes = guard(lambda: render(checked, fmt, rankdir, collapse, depth, timeout), as_json)
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    guard(lambda: write_atomic(target, data, inputs, derived=output is None), as_json)
    if as_json:
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
        click.echo(f"rendered {printable(str(spec))} -> {printable(str(target))} ({fmt}, {len(checked.order)} nodes)")
