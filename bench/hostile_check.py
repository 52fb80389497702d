"""Hostile check: `fusec check` on the slowest specs we can build under the limits.

Each pattern of tests/test_growth.py (the shapes of spec that were once
quadratic or exponential) is built at the largest size the limits allow
(20,000 entries per section, 250,000 JSON values, 8 MB), and `fusec check`
runs on it end to end as a fresh process, side by side with `fusec check` on
the bundled image_tag.json (the start-up every run pays), interleaved.
Rows: per pattern the median seconds and the ratio to the small spec; the
note gives the ratio to the 2-second target of issue 10 (target: ≤ 1.0).
Not part of the default run (``run_all.py hostile``, ``make bench-hostile``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from harness import ROOT, Child, Row, fusec, interleave, run_child

NAME = "hostile"
TITLE = "fusec check on the slowest specs under the limits vs image_tag.json (not by default)"
TARGET_S = 2.0
#: the size of each pattern at the limits (entries, values, bytes)
AT_LIMIT = {
    "nested_port_reexports": 1_500,
    "dangling_references": 19_999,
    "missing_shared_layers": 19_999,
    "references_inside_a_block": 19_999,
    "missing_blocks": 15_000,
    "valid_chain": 19_999,
    "mistyped_layers": 19_999,
    "block_bombs": 1_000,
    "fan_in": 19_998,
    "one_long_cycle": 19_999,
    "shape_errors": 19_999,
    "near_miss_long_ids": 9_999,
    "near_misses_in_many_blocks": 799,
}


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--hostile-repeats", type=int, help="rounds per pattern (default 5; --quick 1)")
    group.add_argument("--hostile-only", default="", help="comma-separated pattern names")


def check(path: Path) -> Child:
    """``fusec check PATH``: exit 0 or 1 (the spec's problems) are results, anything else fails."""
    child = run_child(fusec("check", str(path)), timeout=600)
    if child.returncode not in (0, 1):
        raise RuntimeError(f"{path.name}: exit {child.returncode}: {child.stderr[-500:]}")
    return child


def run(args: argparse.Namespace) -> list[Row]:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_growth import SPECS  # the patterns live with the tests that bound their growth

    repeats = args.hostile_repeats or (1 if args.quick else 5)
    only = set(args.hostile_only.split(",")) - {""}
    small = ROOT / "specs" / "image_tag.json"
    rows = []
    with tempfile.TemporaryDirectory(prefix="fusec-hostile-") as tmp:
        for name in (n for n in AT_LIMIT if not only or n in only):
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(SPECS[name][0](AT_LIMIT[name])), encoding="utf-8")
            base, big = interleave([lambda: check(small).seconds, lambda p=path: check(p).seconds], repeats)
            mid = sorted(big)[len(big) // 2]
            size = path.stat().st_size
            note = f"{AT_LIMIT[name]:,} at {size / 1e6:.1f} MB; vs {TARGET_S:g} s: {mid / TARGET_S:.2f}"
            rows.append(Row("hostile check", name, big, base, "s", "f/b", note=note))
            print(f"  {name:28} {mid:6.2f} s   ({note})", flush=True)
    return rows
