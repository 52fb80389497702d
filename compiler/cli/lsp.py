"""``fusec lsp``: the language server over stdio, for editors (docs/lsp.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ..static.budget import DEFAULT_MAX_PARAMS


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over stdin and stdout (the default and only transport).")
@click.option(
    "--max-params",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PARAMS,
    show_default=True,
    help="Refuse models with more parameters than this.",
)
@click.option(
    "--allow-dir",
    "allow_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder outside the spec's own that sub-model paths may point into (repeatable).",
)
@click.option(
    "--trust",
    multiple=True,
    metavar="PACKAGE",
    help='Let `model` nodes that say "trust": PACKAGE load classes of that package (repeatable).',
)
def lsp_command(stdio: bool, max_params: int, allow_dirs: tuple[Path, ...], trust: tuple[str, ...]) -> None:
    """Run the language server over stdio: fusec's full check as you type, completion, hover,
    go-to-definition, rename, outline and quick fixes. Editors start it; see docs/lsp.md.
    """
    from ..lsp.diagnostics import Settings
    from ..lsp.server import serve

    folders = tuple(p.resolve() for p in allow_dirs)
    serve(Settings(max_params=max_params, allow_dirs=folders, trust=tuple(trust)))
