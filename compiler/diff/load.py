"""Both specs checked, one after the other, each to its compact summary.

``fusec diff`` checks two specs leniently (a spec with errors is compared as
far as it could be read). A ``FusecError`` that stops a check (a file that
cannot be read, JSON that does not parse) comes back as the outcome of that
side, so the CLI reports both sides' errors together.

*Why in series:* a forked worker checking the old spec while this process
checks the new one was measured (bench/diff_speed.py): on two busy cores it
saved nothing (ratio 0.93 to 1.00), and handing its result back meant
serializing objects between processes. After the start-up work of
``import fusec`` was deferred, one check of an 800-node spec costs about
0.07 s, so the pair costs less than the interpreter's start.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import FusecError
from .summary import SpecSummary, summarize

Outcome = SpecSummary | FusecError
Check = Callable[[Path], Any]  # path -> Checked (lenient)


def _outcome(check: Check, path: Path, lines: bool = False) -> Outcome:
    try:
        return summarize(check(path), lines)
    except FusecError as err:
        return err


def load_pair(old: Path, new: Path, check: Check, lines: bool = False) -> tuple[Outcome, Outcome]:
    """Check both specs (leniently, as ``check`` does) and summarize each.

    Args:
        old: the spec before.
        new: the spec after.
        check: ``path -> Checked``; raises FusecError for a spec that cannot be read.
        lines: find the line of each node of NEW (for the HTML page).

    Returns:
        Per spec, its summary or the error that stopped its check.
    """
    return _outcome(check, old), _outcome(check, new, lines)
