"""``fusec summary``: each node's kind, output shape and parameters, without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import click

from .options import CheckOptions, check_options, spec_arg
from .report import echo_json, warn


@click.command()
@spec_arg
@check_options
def summary(spec: Path, opts: CheckOptions) -> None:
    """Print each node's kind, output shape and parameters (no TensorFlow)."""
    from ..static.summary import format_summary, summary_rows

    checked = opts.checked(spec)
    warn(checked, opts.as_json)
    if opts.as_json:
        t = checked.totals
        echo_json(
            {
                "ok": True,
                "name": checked.name,
                "nodes": summary_rows(checked),
                "params": {"total": t.params, "trainable": t.trainable, "non_trainable": t.non_trainable},
            }
        )
    else:
        click.echo(format_summary(checked))
