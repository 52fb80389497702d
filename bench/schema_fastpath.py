"""Schema validation before and after the ``if``/``allOf`` fast path in compiler/schema.py.

The "before" validator is plain jsonschema (Draft 2020-12 with fusec's strict
integer type) on the same generated schema; "after" is ``schema._validator()``.
Both validate the same documents in this one process, alternating, and
must report the same errors. Prints the median seconds of a full
``iter_errors`` pass and the speed-up (before / after).

    python bench/schema_fastpath.py [--nodes 4000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from harness import Row, print_rows

from gen_specs import FAMILIES, make_spec


def plain_validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    from fusec.spec.schema import generate_schema

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return validators.extend(Draft202012Validator, type_checker=checker)(generate_schema())


def measure(nodes: int = 4000, repeats: int = 5) -> list[Row]:
    import time

    from fusec.spec.schema import _validator

    before, after = plain_validator(), _validator()
    rows = []
    for family in FAMILIES:
        doc = make_spec(family, nodes)

        def timed(v: Any, doc: Any = doc) -> Callable[[], float]:
            def once() -> float:
                start = time.perf_counter()
                list(v.iter_errors(doc))
                return time.perf_counter() - start

            return once

        a, b = timed(after), timed(before)
        a(), b()
        ta: list[float] = []
        tb: list[float] = []
        for i in range(repeats):
            for fn, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
                out.append(fn())
        same = [e.message for e in before.iter_errors(doc)] == [e.message for e in after.iter_errors(doc)]
        note = "same errors" if same else "ERRORS DIFFER"
        rows.append(Row("schema validation", f"{family}, {nodes} nodes", ta, tb, "s", "b/f", note=note))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--nodes", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rows = measure(args.nodes, args.repeats)
    print("fusec = with the fast path, baseline = plain jsonschema; ratio = before / after (speed-up)")
    print_rows(rows)
    return 0 if all(r.note == "same errors" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
