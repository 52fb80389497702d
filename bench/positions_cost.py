"""What line and column positions cost `fusec check` on an 800-node spec.

Each row is a ratio measured side by side in this one process (interleaved
rounds, medians): ``check_spec`` as shipped, every problem and warning
located, against the same check with locating switched off. The target
(issue 14) is at most +10 %.

- a valid spec: positions are built on first use, so it pays nothing;
- one error: only the problem's path and its ancestors are recorded (a
  targeted walk enters only those, skipping every other value with json's C scanner);
- one error per node (800 problems, compact and indented text);
- for reference, without a target: the full scan of every key and value
  (what the language server keeps per document) against the check.

Not part of the default run (``run_all.py positions``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gen_specs import make_spec
from harness import Row, interleave

NAME = "positions"
TITLE = "check with line:col positions vs without, 800 nodes (only when named)   <= 1.10"
TARGET = 1.10


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--positions-nodes", type=int, help="nodes per spec (default 800)")
    group.add_argument("--positions-rounds", type=int, help="interleaved rounds (default 15; --quick 3)")


def broken(doc: dict[str, Any]) -> dict[str, Any]:
    """Every node's first input renamed to an id that does not exist: one reference problem per node."""
    doc = json.loads(json.dumps(doc))
    for node in doc["nodes"].values():
        inputs = node.get("inputs")
        if isinstance(inputs, str):
            node["inputs"] = inputs + "_missing"
        elif isinstance(inputs, list) and inputs:
            inputs[0] = inputs[0] + "_missing"
    return doc


def timed(fn: Callable[[], Any]) -> Callable[[], float]:
    def once() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return once


def broken_once(doc: dict[str, Any]) -> dict[str, Any]:
    """One node (the middle one) names a missing input."""
    doc = json.loads(json.dumps(doc))
    ids = list(doc["nodes"])
    node = doc["nodes"][ids[len(ids) // 2]]
    node["inputs"] = "missing"
    return doc


# long: the rows in order, each with its own spec.
def run(args: argparse.Namespace) -> list[Row]:
    from fusec.errors import FusecError
    from fusec.spec.load import Spec
    from fusec.spec.positions import Positions
    from fusec.static.check import check_spec

    nodes = args.positions_nodes or 800
    rounds = args.positions_rounds or (3 if args.quick else 15)
    folder = Path(tempfile.mkdtemp(prefix="fusec-positions-"))
    spec = make_spec("chain", nodes)

    def checking(path: Path, locate: bool) -> Callable[[], None]:
        def once() -> None:
            original = Spec.locate
            if not locate:
                Spec.locate = lambda self, err: err  # type: ignore[method-assign]
            try:
                check_spec(path)
            except FusecError as err:
                assert not locate or all(p.span for p in err.problems)
            finally:
                Spec.locate = original  # type: ignore[method-assign]

        return once

    cases = [
        ("valid", spec, None),
        ("one error", broken_once(spec), None),
        ("one error per node", broken(spec), None),
        ("one error per node, indent=2", broken(spec), 2),
    ]
    rows = []
    for label, doc, indent in cases:
        path = folder / f"{label.replace(' ', '_').replace(',', '').replace('=', '')}.json"
        path.write_text(json.dumps(doc, indent=indent))
        off, on = interleave([timed(checking(path, False)), timed(checking(path, True))], rounds, warmup=1)
        rows.append(Row("positions", f"{label}, {nodes} nodes: located / not", on, off, "s", "f/b", hi=TARGET))
    valid = folder / "valid.json"
    text = valid.read_text()
    plain, scan = interleave([timed(lambda: check_spec(valid)), timed(lambda: Positions.of(text))], rounds, warmup=1)
    note = f"{len(Positions.of(text)):,} values; what the language server keeps per document"
    rows.append(Row("positions", f"full scan / check, {nodes} nodes (no target)", scan, plain, "s", "f/b", note=note))
    return rows
