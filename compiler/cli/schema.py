"""``fusec schema``: print the spec's JSON Schema, or (``--path``) where the package keeps it."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--path",
    "show_path",
    is_flag=True,
    help="Print the absolute path of the schema file shipped inside the package (for editor settings).",
)
def schema(show_path: bool) -> None:
    """Print the spec's JSON Schema (2020-12), or with --path the file that holds it."""
    from ..spec.schema import SCHEMA_PATH, schema_json

    if not show_path:
        click.echo(schema_json(), nl=False)
        return
    if not SCHEMA_PATH.is_file():
        raise click.ClickException(
            f"{SCHEMA_PATH}: the schema file is missing from this installation "
            "(reinstall fusec, or write it with `fusec schema > FILE`)"
        )
    click.echo(str(SCHEMA_PATH))
