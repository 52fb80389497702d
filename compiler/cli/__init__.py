"""The ``fusec`` command line: parse arguments, call one entry point, report.

Exit codes: 0 success, 1 a bad spec (or an output that cannot be written),
2 bad usage, 3 an internal error (a bug: please report it; FUSEC_DEBUG=1
shows the traceback).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from .. import __version__
from ..errors import MAX_MESSAGE, FusecError, Problem, printable
from ..static.shapes import DEFAULT_MAX_PARAMS

EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3


def _spec_param() -> str | None:
    """The SPEC argument of the running command, for errors that carry no file (outputs)."""
    ctx = click.get_current_context(silent=True)
    spec = ctx.params.get("spec") if ctx is not None else None
    return printable(str(spec)) if spec is not None else None


def _emit_errors(errors: list[FusecError], as_json: bool) -> None:
    """Print errors: ``error:`` lines on stderr, or the --json report on stdout.

    The JSON report has the shape of ``fusec check --json`` (schema in
    docs/security.md): ``{"ok": false, "files": [{"file", "ok", "errors": [...]}]}``.
    """
    if as_json:
        fallback = _spec_param()
        files: dict[str | None, list[dict[str, Any]]] = {}
        for err in errors:
            for item in err.to_json():
                item["file"] = item["file"] or fallback
                files.setdefault(item["file"], []).append(item)
        report = [{"file": file, "ok": False, "errors": items} for file, items in files.items()]
        click.echo(json.dumps({"ok": False, "files": report}, indent=2))
        return
    for err in errors:
        for problem in err.problems:
            click.echo(f"{problem.severity}: {problem.format(err.file)}", err=True)


def _internal(exc: BaseException, as_json: bool) -> NoReturn:
    """Report a bug in fusec (exit 3): one clean message, the traceback only with FUSEC_DEBUG=1."""
    what = printable(f"{type(exc).__name__}: {exc}", MAX_MESSAGE)
    if as_json:
        problem = Problem((), f"internal error in fusec {__version__}: {what}", "this is a bug in fusec", "internal")
        _emit_errors([FusecError([problem])], True)
    click.echo(
        f"error: internal error in fusec {__version__}: {what}\n"
        "This is a bug in fusec, not in your spec. Re-run with FUSEC_DEBUG=1 for the traceback and report it.",
        err=True,
    )
    sys.exit(EXIT_INTERNAL)


def _fail(errors: list[FusecError], as_json: bool) -> NoReturn:
    _emit_errors(errors, as_json)
    sys.exit(EXIT_SPEC)


def _guard(fn: Callable[[], Any], as_json: bool) -> Any:
    """Run ``fn``; turn FusecError into a clean report and anything else into exit 3."""
    try:
        return _guard_static(fn, as_json)
    except FusecError as err:
        _fail([err], as_json)


def _guard_static(fn: Callable[[], Any], as_json: bool = False) -> Any:
    """Run ``fn``; let FusecError through (``check`` collects them per file), end anything else cleanly."""
    try:
        return fn()
    except FusecError:
        raise
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("FUSEC_DEBUG"):
            raise
        _internal(exc, as_json)


json_option = click.option("--json", "as_json", is_flag=True, help="Print results and errors as JSON.")
_max_params_option = click.option(
    "--max-params",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PARAMS,
    show_default=True,
    help="Refuse models with more parameters than this.",
)


def _memory_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """--max-memory as bytes (``16G``, ``512M``); None: the default budget (docs/security.md)."""
    from ..static.budget import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_max_memory_option = click.option(
    "--max-memory",
    metavar="SIZE",
    callback=_memory_size,
    help="Refuse models whose compile needs more memory than this (e.g. 16G); default 80% of this machine's memory.",
)


def budget_option(fn: Any) -> Any:
    """``--max-params`` and ``--max-memory``: what a spec may ask of this machine."""
    return _max_params_option(_max_memory_option(fn))


def _allowed_dirs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[Path, ...]:
    """--allow-dir values as paths; an empty one is refused (it would silently mean the current folder)."""
    for value in values:
        if not value:
            raise click.BadParameter("an empty folder name would allow the current folder; write `.` if you mean it")
    return tuple(Path(v) for v in values)


allow_option = click.option(
    "--allow-dir",
    "allow_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    callback=_allowed_dirs,
    help="A folder outside the spec's own that sub-model paths may point into (repeatable).",
)
spec_arg = click.argument("spec", type=click.Path(path_type=Path, dir_okay=True, exists=False))
strict_option = click.option("--strict", is_flag=True, help="Refuse specs with warnings too (exit 1), as CI gates do.")


def warn(checked: Any, as_json: bool) -> None:
    """Print a checked spec's warnings as ``warning:`` lines on stderr (in --json they go in the report)."""
    if as_json:
        return
    for problem in checked.warnings:
        click.echo(f"warning: {problem.format(checked.spec.file)}", err=True)


class _Commands(click.Group):
    """The command group; ``render`` lives in cli_render.py and is loaded on first use.

    Loading it lazily (click's documented pattern) keeps cli_render, which
    imports this module's options, out of an import cycle whichever of the two
    is imported first.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "render"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "render":
            from .render import render_command

            return render_command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="fusec")
def cli() -> None:
    """Check, compile and draw neural networks written as JSON graph specs."""


@cli.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
@budget_option
@allow_option
@strict_option
def check(
    specs: tuple[Path, ...],
    as_json: bool,
    max_params: int,
    max_memory: int | None,
    allow_dirs: tuple[Path, ...],
    strict: bool,
) -> None:
    """Validate specs: schema, references, cycles, shapes, parameters, losses.

    Never imports TensorFlow. Reports every problem with its JSON path, in
    one run; warnings (what compiles but would not train or serve as meant)
    are shown and counted, and refused with --strict.
    """
    from ..static.check import check_spec

    failures: list[FusecError] = []
    results = []
    for spec in specs:
        try:
            check_one = functools.partial(
                check_spec, spec, max_params, allow_dirs, strict=strict, max_memory=max_memory
            )
            checked = _guard_static(check_one, as_json)
        except FusecError as err:
            failures.append(err)
            results.append({"file": str(spec), "ok": False, "errors": err.to_json()})
            continue
        t = checked.totals
        result: dict[str, Any] = {"file": str(spec), "ok": True, "nodes": len(checked.order), "params": t.params}
        if checked.warnings:
            result["warnings"] = [p.to_json(checked.spec.file) for p in checked.warnings]
        results.append(result)
        if not as_json:
            warn(checked, as_json)
            n = len(checked.warnings)
            counted = f", {n} warning{'s' if n != 1 else ''}" if n else ""
            click.echo(
                f"ok: {spec} ({len(checked.order)} nodes, {t.params:,} params, {t.trainable:,} trainable{counted})"
            )
    if as_json:
        click.echo(json.dumps({"ok": not failures, "files": results}, indent=2))
        if failures:
            sys.exit(EXIT_SPEC)
        return
    if failures:
        _fail(failures, False)


@cli.command()
@spec_arg
@json_option
@budget_option
@allow_option
@strict_option
def summary(
    spec: Path, as_json: bool, max_params: int, max_memory: int | None, allow_dirs: tuple[Path, ...], strict: bool
) -> None:
    """Print each node's kind, output shape and parameters (no TensorFlow)."""
    from ..static.check import check_spec
    from ..static.summary import format_summary, summary_rows

    checked = _guard(lambda: check_spec(spec, max_params, allow_dirs, strict=strict, max_memory=max_memory), as_json)
    warn(checked, as_json)
    if as_json:
        t = checked.totals
        payload = {
            "ok": True,
            "name": checked.name,
            "nodes": summary_rows(checked),
            "params": {"total": t.params, "trainable": t.trainable, "non_trainable": t.non_trainable},
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(format_summary(checked))


def _output_folder(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    if value == "":
        raise click.BadParameter("an empty path is not a folder; give the output folder's path")
    return Path(value) if value is not None else None


def _output_path(checked: Any, fmt: str, given: Path | None = None) -> Path:
    """The output folder: ``given``, else ``out/<model name>``.

    A name made from the spec's (the folder, ``<name>.keras``) that is too
    long for a file name is refused here, before the build, with the name
    and what to change, rather than by the file system's "File name too long".
    """
    from ..errors import OutputError
    from ..keras.save import archive_name, too_long

    out = given if given is not None else Path("out") / checked.name
    derived = not checked.doc.get("name")
    origin = "the spec's file name, as the spec has no `name`" if derived else "the spec's `name`"
    names = [] if given is not None else [(checked.name, out.parent)]
    if fmt in ("all", "keras"):
        names.append((archive_name(checked.name), out))
    for name, where in names:
        if too_long(where, name):
            what = "default output name" if name == checked.name else "archive name"
            raise OutputError.single(
                (),
                f"the {what} `{printable(name)}` (from {origin}) is "
                f"{len(os.fsencode(name))} bytes, longer than a file name may be",
                "give the spec a shorter `name`"
                + (" or rename the file" if derived else "")
                + (", or pass -o DIR" if name == checked.name else ", or compile with --format savedmodel"),
                "output",
            )
    return out


@cli.command("compile")
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
@json_option
@budget_option
@allow_option
@strict_option
def compile_cmd(
    spec: Path,
    output: Path | None,
    fmt: str,
    as_json: bool,
    max_params: int,
    max_memory: int | None,
    allow_dirs: tuple[Path, ...],
    strict: bool,
) -> None:
    """Compile a spec into a SavedModel and a trainable .keras archive."""
    from ..keras.save import check_destination, input_files
    from ..keras.tf import keras_warnings, quiet_environment
    from ..static.check import check_spec

    quiet_environment()
    checked = _guard(lambda: check_spec(spec, max_params, allow_dirs, strict=strict, max_memory=max_memory), as_json)
    warn(checked, as_json)
    out: Path = _guard(lambda: _output_path(checked, fmt, output), as_json)
    _guard(lambda: check_destination(out.absolute(), input_files(checked)), as_json)

    def run() -> Any:
        from ..keras.build import build_model
        from ..keras.save import save_artifacts

        return save_artifacts(build_model(checked), checked, out, fmt)

    with keras_warnings():
        art = _guard(run, as_json)
    for note in art.notes:
        click.echo(f"warning: {printable(note, MAX_MESSAGE)}", err=True)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "output": str(art.root),
                    "saved_model": str(art.saved_model) if art.saved_model else None,
                    "keras": str(art.keras) if art.keras else None,
                    "params": checked.totals.params,
                },
                indent=2,
            )
        )
        return
    ins = ", ".join(checked.doc["inputs"])
    outs = ", ".join(checked.doc["outputs"])
    click.echo(f"compiled {spec} -> {art.root} ({checked.totals.params:,} params)")
    if art.saved_model:
        click.echo(f"  SavedModel: {art.saved_model}  (serving_default: {ins} -> {outs})")
    if art.keras:
        click.echo(f"  Keras:      {art.keras}")


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--node", help="Only this weighted merge node.")
@json_option
def weights(model_dir: Path, node: str | None, as_json: bool) -> None:
    """Print the learned, normalised weights of each `weighted` merge, by input.

    MODEL_DIR is a `fusec compile` output folder (or its .keras archive). A
    `gated` merge has no fixed weights: its gate decides per example.
    """
    from ..keras.tf import import_keras, keras_warnings

    def run() -> Any:
        import_keras()
        from ..keras.fusion import learned_weights

        return learned_weights(model_dir, node)

    with keras_warnings():
        found = _guard(run, as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, "weights": found}, indent=2))
        return
    if not found:
        click.echo(f"{model_dir}: no weighted merges")
    for merge, per_input in sorted(found.items()):
        click.echo(f"{merge}:")
        width = max(len(k) for k in per_input)
        for inp, w in per_input.items():
            shown = f"{w:.4f}" if isinstance(w, float) else "[" + ", ".join(f"{v:.4f}" for v in w) + "]"
            click.echo(f"  {inp.ljust(width)}  {shown}")


@cli.command()
def schema() -> None:
    """Print the spec's JSON Schema (2020-12)."""
    from ..spec.schema import schema_json

    click.echo(schema_json(), nl=False)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug outside the commands' own guards: still no traceback
        if os.environ.get("FUSEC_DEBUG"):
            raise
        _internal(exc, "--json" in sys.argv[1:])
    sys.exit(0)


if __name__ == "__main__":
    main()
