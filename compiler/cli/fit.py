"""``fusec fit``: train a spec on data (one process, the GPUs of one machine, or a TF_CONFIG cluster)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import MAX_MESSAGE, printable
from .options import CheckOptions, check_options, spec_arg
from .progress import quiet_option, showing
from .report import echo_json, guard, warn

#: The largest count an option takes (``fusec.train.fit.MAX_COUNT``): a bound, not a recommendation.
_MAX_COUNT = 2**31 - 1


def _count() -> click.IntRange:
    return click.IntRange(min=1, max=_MAX_COUNT)


def _path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    if value == "":
        raise click.BadParameter("an empty path names no folder")
    return Path(value) if value is not None else None


def _data(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value == "":
        raise click.BadParameter("an empty path names no data (give a file, a glob or a folder)")
    return value


def _fraction(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and math.isnan(value):
        raise click.BadParameter("nan is not a fraction; give a number between 0 and 1, such as 0.2")
    return value


def _report(fitted: Any, as_json: bool) -> None:
    from ..train.fit import describe

    for note in fitted.notes:
        click.echo(f"note: {printable(note, MAX_MESSAGE)}", err=True)
    if as_json:
        echo_json(describe(fitted))
        return
    if not fitted.cluster.is_chief:
        click.echo(f"worker {fitted.cluster.rank} of {fitted.cluster.workers} finished; the chief writes the outputs")
        return
    art = fitted.artifacts
    kept = fitted.final
    shown = ", ".join(f"{k} {v:.4g}" for k, v in kept.items() if k != "epoch" and v is not None)
    epoch = f", weights of epoch {kept['epoch']}" if kept and kept.get("epoch") != fitted.epochs else ""
    click.echo(
        f"trained {fitted.epochs} epoch(s) on {fitted.strategy}{epoch} -> {art.root}" + (f" ({shown})" if shown else "")
    )
    click.echo(f"  SavedModel: {art.saved_model}")
    click.echo(f"  Keras:      {art.keras}")
    click.echo(f"  History:    {art.root / 'history.json'}, {art.root / 'history.png'}")
    if fitted.exported is not None:
        click.echo(f"  Serving:    {fitted.exported.path}")


@click.command("fit")
@spec_arg
@click.option(
    "--data",
    "data",
    required=True,
    callback=_data,
    help="Training data: .npz, .csv, .parquet, or TFRecord files (a glob).",
)
@click.option("--validation", callback=_data, help="Validation data, in any of the same formats.")
@click.option(
    "--validation-split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    callback=_fraction,
    help="Hold out this fraction of --data (its last examples) for validation.",
)
@click.option("--epochs", type=_count(), help="Passes over the data (default: the spec's, else 10).")
@click.option("--batch-size", type=_count(), help="Examples per step over all devices (default 32).")
@click.option("-o", "--output", type=click.Path(), callback=_path, help="Output folder (default: out/<model name>).")
@click.option(
    "--early-stopping",
    type=_count(),
    metavar="PATIENCE",
    help="Stop after PATIENCE epochs without a lower val_loss; keep the best epoch's weights.",
)
@click.option("--tensorboard", type=click.Path(), callback=_path, help="Write TensorBoard logs to this folder.")
@click.option(
    "--serving-dir", type=click.Path(), callback=_path, help="Also export DIR/<name>/<version>/ for TF Serving."
)
@click.option(
    "--backup-every",
    type=_count(),
    metavar="STEPS",
    help="Back up every STEPS steps as well as at each epoch's end (a killed run resumes from there).",
)
@click.option(
    "--backup-dir", type=click.Path(), callback=_path, help="Where the backup lives (default: OUT.fit-backup)."
)
@click.option("--restart", is_flag=True, help="Discard a backup of an earlier run instead of resuming it.")
@quiet_option
@check_options
def fit_command(spec: Path, opts: CheckOptions, quiet: bool, **given: Any) -> None:
    """Train a spec on data; write compile's outputs plus history.json and history.png.

    Rerunning the same command after a crash resumes from the last backup.
    With TF_CONFIG set, each process of the cluster runs this same command.
    """
    from ..keras.tf import keras_warnings, quiet_environment
    from ..train.fit import FitOptions, fit_checked

    quiet_environment()
    checked = opts.checked(spec)
    warn(checked, opts.as_json)
    with showing("fit", quiet, opts.as_json):  # the stages before training: Keras shows the epochs
        options = FitOptions(
            stream=sys.stderr if opts.as_json else sys.stdout,
            backup=given.pop("backup_dir"),
            **given,
        )
        with keras_warnings(checked):
            fitted = guard(lambda: fit_checked(checked, options), opts.as_json)
    _report(fitted, opts.as_json)
