"""`fusec check` and `fusec summary` on every bundled spec, against `python -c "import tensorflow"`.

Importing TensorFlow is the floor any TensorFlow-based check pays (building
the Keras model to call ``summary()`` pays it and more). Every run is a fresh
process, end to end. One round runs the TensorFlow import once, then check
and summary on every spec (in reverse order every other round), so every
spec's ratio is taken against imports measured in the same minutes. Rows:
every spec and command, then the worst spec of each command. Target: every
ratio at most 0.15.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

from harness import PY, ROOT, Row, checked_child, fusec, interleave

NAME = "check"
TITLE = 'fusec check / summary vs `python -c "import tensorflow"`   <= 0.15'
TARGET = 0.15


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--check-rounds", type=int, help="interleaved rounds (default 7; --quick 2)")
    group.add_argument(
        "--check-specs", help="glob relative to the repository (default specs/*.json; --quick specs/[gim]*.json)"
    )


def measure(rounds: int, pattern: str) -> list[Row]:
    """One row per spec and command."""
    specs = sorted(Path(p) for p in glob.glob(str(ROOT / pattern)))
    if not specs:
        raise SystemExit(f"no specs match {pattern}")
    jobs = [(cmd, spec) for spec in specs for cmd in ("check", "summary")]
    commands = [[PY, "-c", "import tensorflow"], *(fusec(cmd, str(spec)) for cmd, spec in jobs)]
    sides = [lambda c=c: checked_child(c).seconds for c in commands]
    tf_times, *times = interleave(sides, rounds, warmup=1)
    return [
        Row("check latency", f"{cmd} {spec.name}", t, tf_times, "s", "f/b", hi=TARGET)
        for (cmd, spec), t in zip(jobs, times, strict=True)
    ]


def worst(rows: list[Row]) -> list[Row]:
    """The row with the highest ratio for each command (what the target is judged on)."""
    out = []
    for cmd in ("check", "summary"):
        mine = [r for r in rows if r.name.startswith(f"{cmd} ")]
        if mine:
            w = max(mine, key=lambda r: r.ratio)
            name = f"{cmd}, worst of {len(mine)} specs ({w.name.split()[1]})"
            out.append(Row(w.group, name, w.fusec, w.base, w.unit, "f/b", hi=TARGET))
    return out


def run(args: argparse.Namespace) -> list[Row]:
    rounds = args.check_rounds or (2 if args.quick else 7)
    pattern = args.check_specs or ("specs/[gim]*.json" if args.quick else "specs/*.json")
    rows = measure(rounds, pattern)
    return [*rows, *worst(rows)]
