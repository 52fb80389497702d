"""``fusec schema``: print the spec's JSON Schema."""

from __future__ import annotations

import click


@click.command()
def schema() -> None:
    """Print the spec's JSON Schema (2020-12)."""
    from ..spec.schema import schema_json

    click.echo(schema_json(), nl=False)
