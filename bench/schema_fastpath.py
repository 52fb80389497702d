"""Schema validation with fusec's compiled fast path against plain jsonschema.

The "before" validator is plain jsonschema (Draft 2020-12 with fusec's strict
integer type) on the same generated schema; "after" is fusec's own
``fusec.spec.schema.detailed_validator()``. Both validate the same generated specs
(bench/gen_specs.py) in this one process, interleaved, and must report the
same errors (the note says so). Ratio: before / after (the speed-up). Not
part of the default run (``run_all.py schema``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from gen_specs import FAMILIES, make_spec
from harness import Row, interleave

NAME = "schema"
TITLE = "schema validation, fusec's fast path vs plain jsonschema (not by default)"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--schema-nodes", type=int, help="nodes per generated spec (default 4000; --quick 500)")
    group.add_argument("--schema-repeats", type=int, help="interleaved rounds (default 5; --quick 2)")


def plain_validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    from fusec.spec.schema import generate_schema

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return validators.extend(Draft202012Validator, type_checker=checker)(generate_schema())


def timed(validator: Any, doc: Any) -> Callable[[], float]:
    def once() -> float:
        start = time.perf_counter()
        list(validator.iter_errors(doc))
        return time.perf_counter() - start

    return once


def run(args: argparse.Namespace) -> list[Row]:
    from fusec.spec.schema import detailed_validator as _validator

    nodes = args.schema_nodes or (500 if args.quick else 4000)
    repeats = args.schema_repeats or (2 if args.quick else 5)
    before, after = plain_validator(), _validator()
    rows = []
    for family in FAMILIES:
        doc = make_spec(family, nodes)
        ta, tb = interleave([timed(after, doc), timed(before, doc)], repeats, warmup=1)
        same = [e.message for e in before.iter_errors(doc)] == [e.message for e in after.iter_errors(doc)]
        note = "same errors" if same else "ERRORS DIFFER"
        rows.append(Row("schema validation", f"{family}, {nodes} nodes", ta, tb, "s", "b/f", note=note))
    return rows
