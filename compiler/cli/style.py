"""Colour on a terminal only: who decides, and the few roles fusec paints.

Colour is used when the stream is a terminal, unless ``NO_COLOR`` is set to
anything non-empty (https://no-color.org) or ``TERM=dumb``; ``FORCE_COLOR``
or ``CLICOLOR_FORCE`` (non-empty, not ``0``) turns it on for a pipe too, as
a CI log viewer wants. ``NO_COLOR`` wins over both. The codes are the plain
SGR ones every terminal and log viewer knows (bold, red, magenta, cyan, green).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path
from typing import TextIO

import click
from click.shell_completion import CompletionItem

#: Each role's SGR parameters: the colours compilers use for the same words.
ROLES: dict[str, str] = {
    "error": "1;31",  # bold red
    "warning": "1;35",  # bold magenta
    "note": "1;36",  # bold cyan
    "ok": "1;32",  # bold green
    "path": "1",  # bold: the file:line:col an editor or terminal links
}


def _forced() -> bool:
    return any(os.environ.get(name, "") not in ("", "0") for name in ("FORCE_COLOR", "CLICOLOR_FORCE"))


def use_colour(stream: TextIO | None = None) -> bool:
    """Whether to colour what goes to ``stream`` (default: stderr, where fusec's diagnostics go).

    Args:
        stream: the stream the text will be written to.

    Returns:
        False with ``NO_COLOR`` set (non-empty); True with ``FORCE_COLOR`` or
        ``CLICOLOR_FORCE`` set (non-empty, not ``0``); False with
        ``TERM=dumb``; otherwise whether ``stream`` is a terminal.
    """
    if os.environ.get("NO_COLOR", ""):
        return False
    if _forced():
        return True
    if os.environ.get("TERM", "") == "dumb":
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def paint(text: str, role: str, stream: TextIO | None = None) -> str:
    """``text`` in the colour of ``role`` when ``use_colour(stream)``, else unchanged.

    Args:
        text: what to show (already made printable: ``errors.printable``).
        role: ``error``, ``warning``, ``note``, ``ok`` or ``path``; any other
            role leaves the text as it is.
        stream: where it will be written (default stderr).

    Returns:
        The text, wrapped in SGR codes or not.
    """
    code = ROLES.get(role)
    if code is None or not text or not use_colour(stream):
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


def severity(word: str, stream: TextIO | None = None) -> str:
    """``error:``, ``warning:`` or ``note:``, painted in its own colour when colour is on."""
    return paint(f"{word}:", word, stream)


def echo_err(line: str) -> None:
    """Print a (possibly painted) line on stderr, keeping its colour codes.

    ``click.echo`` strips colour codes whenever the stream is not a terminal,
    which would undo ``FORCE_COLOR``; ``paint`` already decided, so they are
    kept here.
    """
    click.echo(line, err=True, color=use_colour(sys.stderr))


def complete_spec_paths(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Shell completion of a SPEC argument: the ``*.json`` files and folders that start with ``incomplete``.

    Where no spec matches, the shell completes file names as usual.
    """
    folder, _, stem = incomplete.rpartition("/")
    base = Path(folder or ".") if not incomplete.startswith("/") or folder else Path("/")
    prefix = f"{folder}/" if folder or incomplete.startswith("/") else ""
    try:
        entries = sorted(base.iterdir())[:2000]
    except OSError:
        entries = []
    specs, folders = [], []
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem.startswith(".")):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir():
                folders.append(CompletionItem(f"{prefix}{entry.name}/"))
            elif entry.suffix == ".json":
                specs.append(CompletionItem(f"{prefix}{entry.name}"))
    return specs + folders if specs else [CompletionItem(incomplete, type="file")]


_SEVERITY = re.compile(r"(error|warning|note): ")
_LOCATED = re.compile(r"(.+?): (error|warning|note): ")


def paint_diagnostic(line: str, stream: TextIO | None = None) -> str:
    """A diagnostic line (``file:line:col: error: ...`` or ``warning: ...``) with its place and severity painted.

    Args:
        line: the line as ``Problem.line`` (or the older ``severity: message``) makes it.
        stream: where it will be written (default stderr); no colour there, no change.

    Returns:
        The line, painted when ``use_colour(stream)``.
    """
    if not use_colour(stream):
        return line
    found = _SEVERITY.match(line) or _LOCATED.match(line)
    if found is None:
        return line
    word = found.group(found.lastindex or 1)
    where = found.group(1) if found.re is _LOCATED else ""
    head = f"{paint(where, 'path', stream)}: " if where else ""
    return f"{head}{paint(word + ':', word, stream)} {line[found.end() :]}"
