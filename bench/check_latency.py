"""`fusec check` and `fusec summary` on every bundled spec, against `python -c "import tensorflow"`.

Importing TensorFlow is the floor any TensorFlow-based check pays (building
the Keras model to call ``summary()`` pays it and more). Every run is a fresh
process, end to end. One round runs the TensorFlow import once, then check
and summary on every spec (in alternating order from round to round), so
every spec's ratio is taken against imports measured in the same minutes.
Target: every ratio at most 0.15.

    python bench/check_latency.py [--rounds 7] [--specs 'specs/*.json']
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

from harness import PY, ROOT, Row, checked_child, fusec, print_rows, write_rows

TARGET = 0.15


def measure(rounds: int = 7, pattern: str = "specs/*.json") -> list[Row]:
    """One row per spec and command, plus the worst of each command."""
    specs = sorted(Path(p) for p in glob.glob(str(ROOT / pattern)))
    if not specs:
        raise SystemExit(f"no specs match {pattern}")
    tf_cmd = [PY, "-c", "import tensorflow"]
    jobs = [(cmd, spec) for spec in specs for cmd in ("check", "summary")]
    times: dict[tuple[str, Path], list[float]] = {job: [] for job in jobs}
    tf_times: list[float] = []
    checked_child(tf_cmd)  # warm the file cache for both sides
    for job in jobs:
        checked_child(fusec(job[0], str(job[1])))
    for r in range(rounds):
        tf_times.append(checked_child(tf_cmd).seconds)
        for job in jobs if r % 2 == 0 else reversed(jobs):
            times[job].append(checked_child(fusec(job[0], str(job[1]))).seconds)
    rows = []
    for cmd, spec in jobs:
        name = f"{cmd} {spec.name}"
        rows.append(Row("check latency", name, times[(cmd, spec)], tf_times, "s", "f/b", hi=TARGET))
    return rows


def worst(rows: list[Row]) -> list[Row]:
    """The row with the highest ratio for each command (what the target is judged on)."""
    out = []
    for cmd in ("check", "summary"):
        mine = [r for r in rows if r.name.startswith(f"{cmd} ")]
        if mine:
            w = max(mine, key=lambda r: r.ratio)
            out.append(
                Row(
                    w.group,
                    f"{cmd}, worst of {len(mine)} specs ({w.name.split()[1]})",
                    w.fusec,
                    w.base,
                    w.unit,
                    "f/b",
                    hi=TARGET,
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--specs", default="specs/*.json", help="glob, relative to the repository")
    parser.add_argument("--json", help="also write the rows to this JSON file (for run_all.py)")
    args = parser.parse_args(argv)
    rows = measure(args.rounds, args.specs)
    write_rows(rows, args.json)
    print(f"baseline: {PY} -c 'import tensorflow'; {args.rounds} interleaved rounds; ratio = fusec / import")
    print_rows([*rows, *worst(rows)])
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
