"""``fusec diff``: what changed between two specs, for a pull-request reviewer (no TensorFlow).

Both specs are checked leniently (a spec with errors is still compared, as
far as it could be read), summarized per node (``summary.py``), matched node
to node with renames found along the graph (``match.py``) and compared
(``compare.py``); the result is reported as text or JSON (``report.py``) or
drawn as the union of both graphs (``draw.py``, ``page.py``).

    >>> d = diff_files("old.json", "new.json")  # doctest: +SKIP
    >>> d.counts, d.equal  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .compare import Change, Diff, Item, NodeDiff, compare
from .summary import NodeSummary, SpecSummary, summarize

__all__ = [
    "Change",
    "Diff",
    "Item",
    "NodeDiff",
    "NodeSummary",
    "SpecSummary",
    "compare",
    "diff_files",
    "summarize",
]


def diff_files(old: str | Path, new: str | Path, **check: Any) -> Diff:
    """Compare two spec files, each checked leniently with ``check`` (``check_spec``'s options).

    Raises:
        FusecError: a file cannot be read as a spec at all (missing, not JSON, wrong version).
    """
    from ..static.check import check_spec

    return compare(summarize(check_spec(old, lenient=True, **check)), summarize(check_spec(new, lenient=True, **check)))
