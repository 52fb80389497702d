"""``fusec import``: a Keras model as a fusec spec and its weights file (an archive's import needs no TensorFlow).

Registered on the main group in ``cli/__init__.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import printable
from .options import json_option
from .progress import quiet_option, showing
from .report import echo_json, guard


def _shape(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    """``H,W,C`` as a tuple of positive sizes."""
    if value is None:
        return None
    try:
        dims = tuple(int(v) for v in value.split(","))
    except ValueError:
        dims = ()
    if not dims or len(dims) > 8 or any(not 1 <= d <= 1 << 24 for d in dims):
        raise click.BadParameter(f"{printable(value)!r} is not a shape: give sizes separated by commas, e.g. 224,224,3")
    return dims


def _spec_out(ctx: click.Context, param: click.Parameter, value: str) -> Path:
    if not value.endswith(".json"):
        raise click.BadParameter(f"{printable(value)!r}: name the spec file *.json")
    return Path(value)


@click.command("import")
@click.argument("source")
@click.option(
    "-o", "--output", "out", required=True, metavar="SPEC.json", callback=_spec_out, help="The spec to write."
)
@click.option("--blocks", is_flag=True, help="Fold repeated sub-graphs into blocks (a shorter spec).")
@click.option("--input-shape", callback=_shape, metavar="H,W,C", help="keras.applications: the input shape.")
@click.option("--classes", type=click.IntRange(min=1), default=None, help="keras.applications: the class count.")
@click.option("--name", default=None, help="The spec's model name (default: the Keras model's).")
@json_option
@quiet_option
def import_command(
    source: str,
    out: Path,
    blocks: bool,
    input_shape: tuple[int, ...] | None,
    classes: int | None,
    name: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Import a Keras model: a .keras archive, or keras.applications.NAME.

    Writes SPEC.json and, when the model has weights, <stem>.weights.npz beside it.
    """
    from ..importer import import_source
    from ..keras.tf import keras_warnings

    def run() -> Any:
        # Shown once TensorFlow is imported (keras.applications); an archive's import needs none.
        with progress.stage(f"converting {printable(source)}", announce=False):
            return import_source(source, out, blocks=blocks, input_shape=input_shape, classes=classes, name=name)

    with showing("import", quiet, as_json) as progress, keras_warnings():
        report: Any = guard(run, as_json)
    if as_json:
        echo_json(
            {
                "ok": True,
                "spec": str(report.spec),
                "weights": str(report.weights) if report.weights else None,
                "layers": report.layers,
                "params": {
                    "total": report.params,
                    "trainable": report.trainable,
                    "non_trainable": report.non_trainable,
                },
                "lines": report.lines,
            }
        )
        return
    click.echo(
        f"wrote {printable(str(report.spec))} ({report.layers} layers, {report.params:,} params, {report.lines} lines)"
    )
    if report.weights is not None:
        click.echo(f"wrote {printable(str(report.weights))} (weights of {report.params:,} params)")
