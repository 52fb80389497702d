"""``fusec check``: validate specs without TensorFlow, reported as text, JSON, SARIF or GitHub annotations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import FusecError, Problem, printable
from .formats import github_line, sarif_log
from .options import CheckOptions, check_options, spec_paths
from .report import echo_json, emit_errors, guard_static, warn
from .style import complete_spec_paths

FORMATS = ("text", "json", "sarif", "github")


def _result(spec: Path, checked: Any) -> dict[str, Any]:
    """One file's entry in the --json report."""
    result: dict[str, Any] = {
        "file": str(spec),
        "ok": True,
        "nodes": len(checked.order),
        "params": checked.totals.params,
    }
    if checked.warnings:
        result["warnings"] = [p.to_json(checked.spec.file) for p in checked.warnings]
    return result


def _ok_line(spec: Path, checked: Any) -> str:
    t = checked.totals
    n = len(checked.warnings)
    counted = f", {n} warning{'s' if n != 1 else ''}" if n else ""
    shown = printable(str(spec))
    return f"ok: {shown} ({len(checked.order)} nodes, {t.params:,} params, {t.trainable:,} trainable{counted})"


@click.command()
@click.argument(
    "specs", nargs=-1, required=True, type=click.Path(), callback=spec_paths, shell_complete=complete_spec_paths
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="How to report: text (file:line:col lines), json (as --json), sarif (SARIF 2.1.0 for "
    "code scanning), github (GitHub Actions annotations). Default: text.",
)
@check_options
def check(specs: tuple[Path, ...], fmt: str | None, opts: CheckOptions) -> None:
    """Validate specs: schema, references, cycles, shapes, parameters, losses.

    Never imports TensorFlow. Reports every problem with its line, column and
    JSON path, in one run; warnings (what compiles but would not train or
    serve as meant) are shown and counted, and refused with --strict.
    """
    if fmt is not None and opts.as_json and fmt != "json":
        raise click.UsageError(f"--json and --format {fmt} ask for two reports; give one")
    fmt = "json" if opts.as_json else (fmt or "text")
    failures: list[FusecError] = []
    results = []
    findings: list[tuple[str | None, Problem]] = []
    for spec in specs:
        try:
            checked = guard_static(lambda spec=spec: opts.check(spec), fmt == "json")  # type: ignore[misc]
        except FusecError as err:
            failures.append(err)
            results.append({"file": str(spec), "ok": False, "errors": err.to_json()})
            findings += [(err.file, p) for p in err.problems]
            continue
        results.append(_result(spec, checked))
        findings += [(checked.spec.file, p) for p in checked.warnings]
        if fmt == "text":
            warn(checked, False)
            click.echo(_ok_line(spec, checked))
        elif fmt == "github":
            click.echo(_ok_line(spec, checked))
    _report(fmt, failures, results, findings)


def _report(
    fmt: str, failures: list[FusecError], results: list[Any], findings: list[tuple[str | None, Problem]]
) -> None:
    """Print the whole run's report in ``fmt`` and exit 1 when a file failed."""
    if fmt == "json":
        echo_json({"ok": not failures, "files": results})
    elif fmt == "sarif":
        click.echo(json.dumps(sarif_log(findings), indent=2))
    elif fmt == "github":
        for file, problem in findings:
            click.echo(github_line(file, problem))
    elif failures:
        emit_errors(failures, False)
    if failures:
        raise SystemExit(failures[0].exit_code)
