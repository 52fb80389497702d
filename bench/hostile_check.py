"""Hostile check: `fusec check` on the slowest specs we can build under the limits.

Each pattern of tests/test_growth.py (the shapes of spec that were once
quadratic or exponential) is built at the largest size the limits allow
(20,000 entries per section, 250,000 JSON values, 8 MB), and `fusec check`
runs on it end to end as a fresh process, side by side with `fusec check` on
the bundled image_tag.json (the start-up every run pays), in alternating
rounds. Printed per pattern: the median seconds, the ratio to the small spec,
and the ratio to the 2-second target of issue 10 (target: ≤ 1.0).

    python bench/hostile_check.py [--repeats 3] [--only dangling_references,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from harness import ROOT, Row, fusec, print_rows, run_child

sys.path.insert(0, str(ROOT / "tests"))
from test_growth import SPECS  # the patterns live with the tests that bound their growth

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
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated pattern names")
    args = ap.parse_args(argv)
    names = [n for n in AT_LIMIT if not args.only or n in args.only.split(",")]
    small = ROOT / "specs" / "image_tag.json"
    rows = []
    with tempfile.TemporaryDirectory(prefix="fusec-hostile-") as tmp:
        for name in names:
            build, _ = SPECS[name]
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(build(AT_LIMIT[name])), encoding="utf-8")
            size = path.stat().st_size
            big, base = [], []
            for _ in range(args.repeats):
                base.append(run_child(fusec("check", str(small)), timeout=600).seconds)
                child = run_child(fusec("check", str(path)), timeout=600)
                if child.returncode not in (0, 1):
                    print(f"{name}: exit {child.returncode}: {child.stderr[-500:]}", file=sys.stderr)
                    return 1
                big.append(child.seconds)
            mid = sorted(big)[len(big) // 2]
            note = f"{AT_LIMIT[name]:,} at {size / 1e6:.1f} MB; vs {TARGET_S:g} s: {mid / TARGET_S:.2f}"
            rows.append(Row("hostile check", name, big, base, "s", "f/b", note=note))
            print(f"  {name:28} {mid:6.2f} s   ({note})", flush=True)
    print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
