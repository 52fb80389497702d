"""``fusec weights``: the learned weights of each ``weighted`` merge of a compiled model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import printable
from .options import json_option
from .report import echo_json, guard


@click.command()
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
        from ..keras.load import learned_weights

        return learned_weights(model_dir, node)

    with keras_warnings():
        found = guard(run, as_json)
    if as_json:
        echo_json({"ok": True, "weights": found})
        return
    if not found:
        click.echo(f"{printable(str(model_dir))}: no weighted merges")
    for merge, per_input in sorted(found.items()):
        click.echo(f"{merge}:")
        width = max(len(k) for k in per_input)
        for inp, w in per_input.items():
            shown = f"{w:.4f}" if isinstance(w, float) else "[" + ", ".join(f"{v:.4f}" for v in w) + "]"
            click.echo(f"  {inp.ljust(width)}  {shown}")
