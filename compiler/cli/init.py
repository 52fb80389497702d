"""``fusec init``: a starting spec from a template (docs/init.md).

``fusec init TEMPLATE -o SPEC.json`` writes one of the templates of
``fusec.templates``; ``--list`` prints them. Without a TEMPLATE it lists
them and exits with a usage error (2): no scenario is a default a user
would not have to change. The model name is ``--name``, else the output
file's stem mapped by the names rule (what ``check`` would derive), else,
for ``-o -``, the template's own. An existing file is replaced only with
``--force``; the file is written through a temporary file and one rename,
so it is never half-written, and a file another process creates meanwhile
is never replaced without ``--force``. Registered in ``cli/__init__.py``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from ..errors import OutputError, printable
from ..spec.schema.names import derive_name, id_problem
from ..templates import TEMPLATES, render_template
from .report import guard


def _name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--name, checked against the names rule."""
    if value is not None and id_problem(value):
        raise click.BadParameter(
            f"{printable(value)!r} is not a model name: {id_problem(value)} "
            "(an ASCII letter, then letters, digits and _, at most 64 characters)"
        )
    return value


def _output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """-o: ``-`` or a path ending in ``.json``."""
    if value is None or value == "-":
        return value
    if Path(value).suffix != ".json" or value.endswith(("/", os.sep)):
        raise click.BadParameter(f"{printable(value)!r}: name the spec file *.json, or give - for standard output")
    return value


def _listing() -> str:
    width = max(map(len, TEMPLATES))
    return "\n".join(f"{name:<{width}}  {line}" for name, line in TEMPLATES.items())


def _exists(path: Path) -> OutputError:
    shown = printable(str(path))
    return OutputError.single(
        (), f"output `{shown}` already exists", "pass --force to replace it, or choose another -o", "output"
    )


def write_spec(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` atomically; an existing file only with ``force``.

    Raises:
        OutputError: the file exists (without ``force``); the path is a folder,
            a link or a device; its folder is missing or not writable; the
            name is too long. Nothing is written.
    """
    from ..render.output import check_target, write_atomic

    if check_target(path) is not None and not force:
        raise _exists(path)
    write_atomic(path, text.encode())  # a new file never replaces one made meanwhile (RENAME_NOREPLACE)


@click.command(
    "init",
    help=f"Write a starting spec from a template: {', '.join(TEMPLATES)} (--list says what each is; docs/init.md).",
)
@click.argument("template", required=False, type=click.Choice(list(TEMPLATES)), metavar="[TEMPLATE]")
@click.option(
    "-o", "--output", "out", metavar="SPEC.json", callback=_output, help="The spec to write; - prints it to stdout."
)
@click.option("--name", metavar="NAME", callback=_name, help="The model's name (default: from the output file's name).")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--list", "listing", is_flag=True, help="List the templates, one per line, and exit.")
def init_command(template: str | None, out: str | None, name: str | None, force: bool, listing: bool) -> None:
    """Write a starting spec from a template (the help text is the command's ``help``)."""
    if listing:
        click.echo(_listing())
        return
    if template is None:
        raise click.UsageError(f"name a template, e.g. fusec init early-fusion -o spec.json:\n{_listing()}")
    if out is None:
        raise click.UsageError("give the spec to write with -o SPEC.json (or -o - to print it)")
    if name is None and out != "-":
        name = derive_name(Path(out).stem)
    text = render_template(template, name)
    if out == "-":
        click.echo(text, nl=False)
        return
    path = Path(out)
    guard(lambda: write_spec(path, text, force), False)
    shown = printable(out)
    click.echo(f"wrote {shown} (template {template}, model `{name}`); next: fusec check {shlex.quote(shown)}")
