"""``fusec compile``: a spec into a SavedModel and a trainable ``.keras`` archive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import MAX_MESSAGE, printable
from .options import CheckOptions, check_options, spec_arg
from .progress import quiet_option, showing
from .report import echo_json, guard, warn


def _output_folder(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    if value == "":
        raise click.BadParameter("an empty path is not a folder; give the output folder's path")
    return Path(value) if value is not None else None


def _report(spec: Path, checked: Any, art: Any, as_json: bool) -> None:
    """Print what was written: the folder, the SavedModel's signature, the archive."""
    for note in art.notes:
        click.echo(f"warning: {printable(note, MAX_MESSAGE)}", err=True)
    if as_json:
        echo_json(
            {
                "ok": True,
                "output": str(art.root),
                "saved_model": str(art.saved_model) if art.saved_model else None,
                "keras": str(art.keras) if art.keras else None,
                "params": checked.totals.params,
            }
        )
        return
    ins = ", ".join(checked.doc["inputs"])
    outs = ", ".join(checked.doc["outputs"])
    click.echo(f"compiled {printable(str(spec))} -> {printable(str(art.root))} ({checked.totals.params:,} params)")
    if art.saved_model:
        click.echo(f"  SavedModel: {printable(str(art.saved_model))}  (serving_default: {ins} -> {outs})")
    if art.keras:
        click.echo(f"  Keras:      {printable(str(art.keras))}")


@click.command("compile")
@spec_arg
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    callback=_output_folder,
    help="Output folder (default: out/<model name>). Replaced only on success, and only if fusec wrote it.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["all", "savedmodel", "keras"]),
    default="all",
    show_default=True,
    help="Which artifacts to write.",
)
@quiet_option
@check_options
def compile_command(spec: Path, output: Path | None, fmt: str, quiet: bool, opts: CheckOptions) -> None:
    """Compile a spec into a SavedModel and a trainable .keras archive.

    Progress goes to stderr: a status line on a terminal, one line per stage
    otherwise (none with --json or --quiet); see docs/cli.md.
    """
    from ..keras.pipeline import build_and_save, check_output, output_folder
    from ..keras.tf import keras_warnings, quiet_environment

    quiet_environment()
    with showing("compile", quiet, opts.as_json) as progress:

        def check() -> Any:
            with progress.stage(f"checking {printable(str(spec))}", announce=False):
                return opts.check(spec)

        checked = guard(check, opts.as_json)
        warn(checked, opts.as_json)
        out: Path = guard(lambda: output_folder(checked, fmt, output), opts.as_json)
        guard(lambda: check_output(checked, out), opts.as_json)
        with keras_warnings(checked):
            art = guard(lambda: build_and_save(checked, out, fmt), opts.as_json)
    _report(spec, checked, art, opts.as_json)
