"""``fusec diff OLD NEW``: what changed between two specs, as text, JSON or a drawing (no TensorFlow).

Exit status: 0 when both specs check clean and are equal; 1 when they differ,
when either has errors (printed as ``fusec check`` prints them, then the diff
of what could be read) or cannot be read at all; 2 bad usage. Registered on
the main group in ``cli/__init__.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..errors import EXIT_INPUT, EXIT_OK, FusecError
from .options import CheckOptions, check_options, drawing_format, spec_paths
from .render import MAX_TIMEOUT, Seconds
from .report import echo_json, emit_errors, guard
from .style import complete_spec_paths, paint

DRAW_FORMATS = ("html", "svg", "png", "pdf", "dot")
#: Each text line's role (``diff.report``) -> its colour role (``cli.style``).
_PAINT = {"added": "ok", "removed": "error", "changed": "warning", "reordered": "warning", "renamed": "note"}


def _pick_format(fmt: str | None, output: str | None) -> str | None:
    """The drawing's format: --format, else -o's extension; None when nothing is drawn."""
    if output is None:
        if fmt is not None:
            raise click.UsageError("--format picks the drawing's format; give -o FILE (or -o - for stdout) too")
        return None
    return drawing_format(fmt, output, DRAW_FORMATS)


def _draw(diff: Any, fmt: str, output: str, as_json: bool, timeout: float) -> None:
    """Draw the union graph and write it (atomically; never over either spec)."""
    from ..diff.draw import draw
    from ..diff.page import diff_page
    from ..render.output import check_target, write_atomic

    sources = [Path(diff.old.file), Path(diff.new.file)]
    target = Path(output)
    if output != "-":
        guard(lambda: check_target(target, sources), as_json)
    if fmt == "html":
        data: bytes = guard(lambda: diff_page(diff, timeout=timeout), as_json)
    else:
        data = guard(lambda: draw(diff, fmt, timeout=timeout), as_json)
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        guard(lambda: write_atomic(target, data, sources), as_json)


def _print(diff: Any, as_json: bool, stat: bool, drawn: str | None) -> None:
    from ..diff.report import to_json

    if as_json:
        payload = to_json(diff)
        if drawn is not None:
            payload["output"] = drawn
        echo_json(payload)
        return
    from ..diff.report import text_lines

    for role, text in text_lines(diff, stat):
        click.echo(paint(text, _PAINT.get(role, "path" if role == "header" else ""), sys.stdout), color=True)


@click.command("diff")
@click.argument("old", type=click.Path(), callback=spec_paths, shell_complete=complete_spec_paths)
@click.argument("new", type=click.Path(), callback=spec_paths, shell_complete=complete_spec_paths)
@click.option("-o", "--output", metavar="FILE", help="Also draw the diff: .html, .svg, .png, .pdf, .dot; '-': stdout.")
@click.option("--format", "fmt", type=click.Choice(DRAW_FORMATS), default=None, help="The drawing's format.")
@click.option("--stat", is_flag=True, help="Print the counts only.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on stdout; the exit status says it all.")
@click.option("--timeout", type=Seconds(MAX_TIMEOUT), default=30.0, show_default=True,
              help="Seconds Graphviz may take to lay out the drawing.")  # fmt: skip
@check_options
def diff_command(
    old: Path,
    new: Path,
    output: str | None,
    fmt: str | None,
    stat: bool,
    quiet: bool,
    timeout: float,
    opts: CheckOptions,
) -> None:
    """Show what changed from OLD to NEW: interface, nodes added, removed, changed and renamed.

    Exit status 0 when both specs check clean and are equal, 1 when they
    differ or either has errors (printed first), 2 bad usage. Never imports
    TensorFlow; -o draws the union of both graphs (Graphviz for svg, png, pdf, html).
    """
    from ..diff.compare import compare
    from ..diff.load import load_pair

    as_json = opts.as_json and not quiet
    drawing = _pick_format(fmt, output)
    if output == "-" and (as_json or stat):
        raise click.UsageError("-o - writes the drawing to stdout; it cannot be combined with --json or --stat")

    def check(path: Path) -> Any:
        return opts.check(path, lenient=True)

    sides = guard(lambda: load_pair(old, new, check, lines=drawing == "html"), as_json)
    failed = [s for s in sides if isinstance(s, FusecError)]
    if failed:
        emit_errors(failed, as_json)
        sys.exit(EXIT_INPUT)
    if not as_json:
        emit_errors([FusecError(list(s.problems), file=s.file) for s in sides if s.problems], False)
    diff = guard(lambda: compare(*sides), as_json)
    if drawing is not None and output is not None:
        _draw(diff, drawing, output, as_json, timeout)
    if not quiet and output != "-":
        _print(diff, as_json, stat, output if drawing is not None else None)
    clean = not any(s.problems for s in sides)
    sys.exit(EXIT_OK if diff.equal and clean else EXIT_INPUT)
