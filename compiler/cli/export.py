"""``fusec export``: a compiled or trained model into a numbered version of a serving folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from ..errors import printable
from .options import json_option
from .progress import quiet_option, showing
from .report import echo_json, guard

_FORMATS = ("savedmodel", "tflite", "onnx")  # fusec.train.export_formats.FORMATS, without importing it here


def _path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """A path argument; an empty one is refused (it would silently mean the current folder)."""
    if value == "":
        raise click.BadParameter("an empty path names nothing; give a path")
    return Path(value) if value is not None else None


def _name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--name: one plain folder name (the rule ``fusec.train.export`` applies to a default name too)."""
    if value is not None and (not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", value) or len(value) > 200):
        raise click.BadParameter(
            f"{printable(value)!r} is not a plain folder name: use letters, digits, `_`, `-` and `.` "
            "(not first), at most 200 characters"
        )
    return value


@click.command("export")
@click.argument("model", type=click.Path(), callback=_path)
@click.option(
    "--serving-dir",
    required=True,
    type=click.Path(),
    callback=_path,
    help="The serving folder: the version is written to DIR/NAME/<version>/ (made if missing).",
)
@click.option(
    "--version",
    type=click.IntRange(min=1, max=2**63 - 1),
    help="The version number (default: the next free one). An existing version is refused, never overwritten.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS),
    default="savedmodel",
    show_default=True,
    help="savedmodel (TF Serving), tflite (TensorFlow Lite) or onnx (Triton; needs `pip install 'fusec[onnx]'`).",
)
@click.option("--name", callback=_name, help="The model's folder name under DIR (default: the model's name).")
@json_option
@quiet_option
def export_command(
    model: Path, serving_dir: Path, version: int | None, fmt: str, name: str | None, as_json: bool, quiet: bool
) -> None:
    """Export MODEL as a numbered version of a serving folder: TF Serving, TensorFlow Lite or ONNX.

    MODEL is a `fusec compile` or `fusec fit` output folder, or a .keras
    archive. Writes DIR/NAME/<version>/saved_model.pb (savedmodel),
    model.tflite (tflite) or model.onnx (onnx); other versions and anything
    else under DIR are left as they are.
    """
    from ..keras.tf import keras_warnings, quiet_environment
    from ..train.export import export_model

    quiet_environment()

    def run() -> Any:
        # Shown once TensorFlow is imported: the checks before it print only their errors.
        with progress.stage(f"exporting {printable(str(model))} as {fmt}", announce=False):
            return export_model(model, serving_dir, version=version, fmt=fmt, name=name)

    with showing("export", quiet, as_json) as progress, keras_warnings():
        done = guard(run, as_json)
    if as_json:
        echo_json({"ok": True, "path": str(done.path), "version": done.version, "format": done.fmt, "name": done.name})
        return
    click.echo(f"exported {printable(str(model))} -> {printable(str(done.path))} ({fmt}, version {done.version})")
    click.echo(f"  serving_default: {', '.join(done.inputs)} -> {', '.join(done.outputs)}")
