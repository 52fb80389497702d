"""The options commands share, declared once.

Every command that checks a spec takes the same six options (``--json``,
``--max-params``, ``--max-memory``, ``--allow-dir``, ``--strict``, ``--trust``);
``@check_options`` adds them and hands the command one ``CheckOptions``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import printable
from ..static.budget import DEFAULT_MAX_PARAMS
from .report import guard
from .style import complete_spec_paths


def _memory_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """--max-memory as bytes (``16G``, ``512M``); None: the default budget (docs/security.md)."""
    from ..static.budget import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _allowed_dirs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[Path, ...]:
    """--allow-dir values as paths; an empty one is refused (it would silently mean the current folder)."""
    if any(not value for value in values):
        raise click.BadParameter("an empty folder name would allow the current folder; write `.` if you mean it")
    for value in values:
        if not os.path.isdir(value):
            raise click.BadParameter(f"{printable(value)!r} is not a folder; give an existing folder")
    return tuple(Path(v) for v in values)


def _trusted(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """--trust values: top-level package names (docs/security.md, "Sub-models on trust")."""
    from ..static.archive.trusted import package_problem

    for value in values:
        problem = package_problem(value)
        if problem:
            raise click.BadParameter(printable(problem))
    return tuple(dict.fromkeys(values))


def spec_paths(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Spec path arguments as paths; an empty one is refused (as a path it would name the current folder)."""
    values = value if isinstance(value, tuple) else (value,)
    for one in values:
        if one is not None and not one:
            raise click.BadParameter("an empty path names no spec; give the path of a .json spec")
    paths = tuple(Path(v) if v is not None else None for v in values)
    return paths if isinstance(value, tuple) else paths[0]


json_option = click.option("--json", "as_json", is_flag=True, help="Print results and errors as JSON.")
spec_arg = click.argument(
    "spec", type=click.Path(dir_okay=True, exists=False), callback=spec_paths, shell_complete=complete_spec_paths
)
_CHECK_OPTIONS = (
    json_option,
    click.option(
        "--max-params",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_PARAMS,
        show_default=True,
        help="Refuse models with more parameters than this.",
    ),
    click.option(
        "--max-memory",
        metavar="SIZE",
        callback=_memory_size,
        help="Refuse models whose compile needs more memory than this (e.g. 16G); "
        "default 80% of this machine's memory.",
    ),
    click.option(
        "--allow-dir",
        "allow_dirs",
        multiple=True,
        type=click.Path(file_okay=False),
        callback=_allowed_dirs,
        help="A folder outside the spec's own that sub-model paths may point into (repeatable).",
    ),
    click.option("--strict", is_flag=True, help="Refuse specs with warnings too (exit 1), as CI gates do."),
    click.option(
        "--trust",
        "trust",
        multiple=True,
        metavar="PACKAGE",
        callback=_trusted,
        help='Let `model` nodes that say "trust": PACKAGE load classes of that package (its code runs '
        "when the model loads; docs/security.md). Never by default (repeatable).",
    ),
)


@dataclass(frozen=True)
class CheckOptions:
    """What a spec may ask of this machine, and how results are printed.

    Attributes:
        as_json: print results and errors as JSON.
        max_params: the parameter budget.
        max_memory: the memory budget in bytes (None: the default budget).
        allow_dirs: folders outside the spec's own that sub-model paths may point into.
        strict: refuse specs with warnings too.
        trust: packages whose classes ``model`` nodes marked ``trust`` may load.
    """

    as_json: bool = False
    max_params: int = DEFAULT_MAX_PARAMS
    max_memory: int | None = None
    allow_dirs: tuple[Path, ...] = ()
    strict: bool = False
    trust: tuple[str, ...] = ()

    def check(self, spec: Path, lenient: bool = False) -> Any:
        """``check_spec`` with these options; raises FusecError (``lenient``: see check_spec)."""
        from ..static.archive.trusted import trusting
        from ..static.check import check_spec

        with trusting(self.trust):
            return check_spec(
                spec, self.max_params, self.allow_dirs, strict=self.strict, max_memory=self.max_memory, lenient=lenient
            )

    def checked(self, spec: Path, lenient: bool = False) -> Any:
        """The checked spec, or the command ends with the errors reported (exit 1)."""
        return guard(lambda: self.check(spec, lenient), self.as_json)


def check_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the six check options; the command receives them as ``opts: CheckOptions``."""

    @functools.wraps(fn)
    def command(
        *args: Any,
        as_json: bool,
        max_params: int,
        max_memory: int | None,
        allow_dirs: tuple[Path, ...],
        strict: bool,
        trust: tuple[str, ...],
        **kwargs: Any,
    ) -> Any:
        opts = CheckOptions(as_json, max_params, max_memory, allow_dirs, strict, trust)
        return fn(*args, opts=opts, **kwargs)

    for option in reversed(_CHECK_OPTIONS):
        command = option(command)
    return command


def drawing_format(fmt: str | None, output: str | None, formats: Sequence[str], default: str | None = None) -> str:
    """A drawing's format: ``--format``, else the ``-o`` name's extension, else ``default``.

    Raises:
        click.UsageError: the extension names another known format than ``--format``, or the
            format cannot be told (an unknown extension, or none and no default).
    """
    ext = Path(output).suffix.lower().lstrip(".") if output and output != "-" else ""
    if fmt is not None:
        if ext in formats and ext != fmt:
            raise click.UsageError(f"-o {printable(str(output))} ends in .{ext} but --format is {fmt}; make them agree")
        return fmt
    if ext in formats:
        return ext
    if ext or default is None:
        names = ", ".join(f".{f}" for f in formats[:-1]) + f" or .{formats[-1]}"
        raise click.UsageError(
            f"cannot tell the format from -o {printable(str(output))}: use a {names} name, or --format"
        )
    return default
