"""``fusec render``: draw a spec as a diagram (SVG, PNG, PDF or DOT), without TensorFlow.

Registered on the main group in ``cli.py`` with ``cli.add_command(render_command)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import click

from .cli import _guard, allow_option, budget_option, json_option, spec_arg, strict_option, warn
from .errors import OutputError

FORMATS = ("svg", "png", "pdf", "dot")
DEFAULT_FORMAT = "svg"


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


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and one rename.

    A failure (or a kill) leaves either the old file or the new one, never a
    half-written file.

    Raises:
        OutputError: the folder is missing or not writable, or ``path`` is a folder.
    """
    from .save import _writable

    folder = path.parent
    if path.is_dir():
        raise OutputError.single((), f"output `{path}` is a folder", "give a file name with -o", "output")
    if folder.is_dir() and not _writable(folder):
        raise OutputError.single(
            (),
            f"output `{path}`: the folder `{folder}` is not writable",
            "choose a writable location with -o",
            "output",
        )
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
        tmp = None
    except OSError as exc:
        raise OutputError.single(
            (),
            f"cannot write `{path}`: {exc.strerror or exc}",
            "choose a writable location with -o",
            "output",
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()


@click.command("render")
@spec_arg
@click.option(
    "-o",
    "--output",
    metavar="FILE",
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
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds Graphviz may take to lay out the diagram.",
)
@json_option
@budget_option
@allow_option
@strict_option
def render_command(
    spec: Path,
    output: str | None,
    fmt: str | None,
    rankdir: str,
    collapse: bool,
    depth: int | None,
    timeout: float,
    as_json: bool,
    max_params: int,
    allow_dirs: tuple[Path, ...],
    strict: bool,
) -> None:
    """Draw a spec: shapes, parameters, merges and shared layers (no TensorFlow).

    Needs Graphviz's `dot` program for svg, png and pdf.
    """
    from .check import check_spec
    from .render import render

    fmt = _pick_format(fmt, output)
    if output == "-" and as_json:
        raise click.UsageError("-o - writes the diagram to stdout; it cannot be combined with --json")
    checked = _guard(lambda: check_spec(spec, max_params, allow_dirs, strict=strict), as_json)
    warn(checked, as_json)
    data: bytes = _guard(lambda: render(checked, fmt, rankdir, collapse, depth, timeout), as_json)
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(output) if output else Path(f"{spec.stem}.{fmt}")
    _guard(lambda: write_atomic(target, data), as_json)
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
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(f"rendered {spec} -> {target} ({fmt}, {len(checked.order)} nodes)")
