"""``fusec render``: draw a spec as a diagram (SVG, PNG, PDF or DOT), without TensorFlow.

Registered on the main group in ``cli.py`` with ``cli.add_command(render_command)``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import OutputError, printable
from . import _guard, allow_option, budget_option, json_option, spec_arg, strict_option, warn

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


def _out_error(message: str, hint: str = "choose another output file with -o") -> OutputError:
    return OutputError.single((), message, hint, "output")


def check_target(path: Path, inputs: Sequence[Path] = (), derived: bool = False) -> os.stat_result | None:
    """Refuse an output file render must not write; write nothing.

    Render writes only regular files: a new one, or one replacing a regular
    file that is none of its inputs.

    Args:
        path: the output file.
        inputs: the files being read (the spec and the files it names).
        derived: the name was made from the spec's (no -o was given).

    Returns:
        The ``lstat`` of the regular file to replace, or None when there is none.

    Raises:
        OutputError: the name is too long; the path is a folder, a link, a
            device, a FIFO or a socket; it is the spec or a file the spec
            reads; its folder is missing or not writable.
    """
    from ..keras.save import _writable, describe, too_long

    shown = printable(str(path))
    folder = path.parent
    if too_long(folder, path.name):
        size = len(os.fsencode(path.name))
        if derived:
            raise _out_error(
                f"the default output name `{shown}` (the spec's file name with the format's extension) is "
                f"{size} bytes, longer than a file name may be",
                "pass -o FILE with a shorter name",
            )
        raise _out_error(f"output `{shown}`: the file name is {size} bytes, longer than a file name may be")
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise _out_error(f"output `{shown}`: `{printable(str(folder))}` is not a folder") from None
    except OSError as exc:
        raise _out_error(f"output `{shown}` cannot be inspected: {exc.strerror or exc}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise _out_error(f"output `{shown}` is a folder", "give a file name with -o")
        if not stat.S_ISREG(st.st_mode):
            raise _out_error(
                f"output `{shown}` is {describe(st)}, not a regular file: fusec writes only regular files",
                "choose a regular file with -o, or -o - to write to standard output",
            )
        resolved = path.resolve()
        for i, f in enumerate(inputs):
            try:
                same = f.resolve() == resolved or os.path.samestat(os.stat(f), st)
            except OSError:
                continue
            if same:
                what = "the spec being drawn" if i == 0 else f"a file the spec reads (`{printable(str(f))}`)"
                raise _out_error(f"output `{shown}` is {what}")
    if not folder.is_dir():
        raise _out_error(
            f"output `{shown}`: the folder `{printable(str(folder))}` does not exist",
            "create it first, or choose another output file with -o",
        )
    if not _writable(folder):
        raise _out_error(
            f"output `{shown}`: the folder `{printable(str(folder))}` is not writable",
            "choose a writable location with -o",
        )
    return st


def write_atomic(path: Path, data: bytes, inputs: Sequence[Path] = (), derived: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in its folder and one rename.

    A failure (or a kill) leaves either the old file or the new one, never a
    half-written file. Only a regular file is ever replaced: a new file is
    renamed into place with ``RENAME_NOREPLACE``, and an existing one is
    swapped out with ``RENAME_EXCHANGE`` and removed only if it is the
    regular file checked a moment before (else it is swapped back).

    Raises:
        OutputError: see ``check_target``; or the folder refused the write,
            or the path changed while it was written.
    """
    from ..keras.save import _exchange, _renameat2

    check_target(path, inputs, derived)
    shown = printable(str(path))
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=".fusec-render-", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o644)
        before = check_target(path, inputs, derived)  # the last look before the rename
        if before is None:
            try:
                done = _renameat2(tmp, path, 1)  # RENAME_NOREPLACE
            except FileExistsError:
                raise _out_error(f"output `{shown}` was created by another process while fusec wrote it") from None
            if not done:
                if os.path.lexists(path):  # no renameat2 here: check, then rename (a narrow race)
                    raise _out_error(f"output `{shown}` was created by another process while fusec wrote it")
                os.rename(tmp, path)
        elif _exchange(tmp, path):
            after = os.lstat(tmp)  # what was at `path`
            if not (stat.S_ISREG(after.st_mode) and os.path.samestat(after, before)):
                _exchange(tmp, path)
                raise _out_error(f"output `{shown}` was replaced by another process while fusec wrote it")
            tmp.unlink()  # the file just replaced
        else:
            os.replace(tmp, path)  # no renameat2 here: checked a moment ago (a narrow race)
        tmp = None
    except OSError as exc:
        raise _out_error(
            f"cannot write `{shown}`: {exc.strerror or exc}", "choose a writable location with -o"
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


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
    max_memory: int | None,
    allow_dirs: tuple[Path, ...],
    strict: bool,
) -> None:
    """Draw a spec: shapes, parameters, merges and shared layers (no TensorFlow).

    Needs Graphviz's `dot` program for svg, png and pdf.
    """
    from ..render import render
    from ..static.check import check_spec

    fmt = _pick_format(fmt, output)
    if output == "-" and as_json:
        raise click.UsageError("-o - writes the diagram to stdout; it cannot be combined with --json")
    checked = _guard(lambda: check_spec(spec, max_params, allow_dirs, strict=strict, max_memory=max_memory), as_json)
    warn(checked, as_json)
    target = Path(output) if output and output != "-" else Path(f"{spec.stem}.{fmt}")
    inputs: list[Path] = []
    if output != "-":
        from ..keras.save import input_files

        inputs = _guard(lambda: input_files(checked), as_json)
        _guard(lambda: check_target(target, inputs, derived=output is None), as_json)  # before paying for dot
    data: bytes = _guard(lambda: render(checked, fmt, rankdir, collapse, depth, timeout), as_json)
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    _guard(lambda: write_atomic(target, data, inputs, derived=output is None), as_json)
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
