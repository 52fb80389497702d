"""``fusec check``: validate specs without TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import FusecError, printable
from .options import CheckOptions, check_options, spec_paths
from .report import echo_json, fail, guard_static, warn


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
@click.argument("specs", nargs=-1, required=True, type=click.Path(), callback=spec_paths)
@check_options
def check(specs: tuple[Path, ...], opts: CheckOptions) -> None:
    """Validate specs: schema, references, cycles, shapes, parameters, losses.

    Never imports TensorFlow. Reports every problem with its JSON path, in
    one run; warnings (what compiles but would not train or serve as meant)
    are shown and counted, and refused with --strict.
    """
    failures: list[FusecError] = []
    results = []
    for spec in specs:
        try:
            checked = guard_static(lambda spec=spec: opts.check(spec), opts.as_json)  # type: ignore[misc]
        except FusecError as err:
            failures.append(err)
            results.append({"file": str(spec), "ok": False, "errors": err.to_json()})
            continue
        results.append(_result(spec, checked))
        if not opts.as_json:
            warn(checked, False)
            click.echo(_ok_line(spec, checked))
    if opts.as_json:
        echo_json({"ok": not failures, "files": results})
        if failures:
            raise SystemExit(failures[0].exit_code)
        return
    if failures:
        fail(failures, False)
