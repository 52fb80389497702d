"""The ``fusec`` command line: one module per command, the shared options in ``options.py``.

Exit codes: 0 success, 1 a bad spec (or an output that cannot be written),
2 bad usage, 3 an internal error (a bug: please report it; FUSEC_DEBUG=1
shows the traceback), 130 interrupted. See ``report.py``.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from ..version import __version__
from .check import check
from .compile import compile_command
from .diff import diff_command
from .export import export_command
from .fit import fit_command
from .importer import import_command
from .init import init_command
from .lsp import lsp_command
from .render import render_command
from .report import internal
from .schema import schema
from .summary import summary
from .weights import weights


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="fusec")
def cli() -> None:
    """Check, compile and draw neural networks written as JSON graph specs."""


for _command in (
    check,
    summary,
    compile_command,
    fit_command,
    render_command,
    diff_command,
    weights,
    schema,
    export_command,
    import_command,
    init_command,
    lsp_command,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # a bug outside the commands' own guards: still no traceback
        if os.environ.get("FUSEC_DEBUG"):
            raise
        internal(exc, "--json" in sys.argv[1:])
    sys.exit(EXIT_OK)
