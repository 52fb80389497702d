"""`fusec compile` against a hand-written Keras script building and exporting the same model.

Both sides run as a user runs them, fresh processes (so both pay the
TensorFlow import): ``fusec compile SPEC -o OUT [--format F]`` against
``python bench/handwritten/seedNNN.py OUT [F]``, which builds the same model
with Keras and writes the same artifacts (SavedModel and .keras archive for
``all``, the SavedModel alone for ``savedmodel``). One round runs every spec's
pair, in order then in reverse, so each pair alternates A B / B A. Rows: each
spec's ratio fusec / hand-written, and per format the ratio of the per-round
totals over all specs. Target: at most 1.10.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness import PY, ROOT, SCENARIOS, Row, checked_child, fusec, interleave

NAME = "compile"
TITLE = "fusec compile vs hand-written Keras build + export (seeds 000, 002, 003)   <= 1.10"
TARGET = 1.10
FORMATS = ("all", "savedmodel")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--compile-repeats", type=int, help="interleaved rounds (default 5; --quick 2)")
    group.add_argument("--compile-formats", default=",".join(FORMATS), help="comma-separated --format values")


def _sides(spec: Path, script: Path, fmt: str, tmp: Path) -> tuple[Callable[[], float], Callable[[], float]]:
    """The two timed commands for one spec and format (each writes a fresh folder)."""
    flag = [] if fmt == "all" else ["--format", fmt]
    ours_cmd = fusec("compile", str(spec), "-o", str(tmp / "fusec"), *flag)
    hand_cmd = [PY, str(script), str(tmp / "hand"), fmt]

    def ours() -> float:
        return checked_child(ours_cmd).seconds

    def hand() -> float:
        shutil.rmtree(tmp / "hand", ignore_errors=True)
        return checked_child(hand_cmd).seconds

    return ours, hand


def measure(fmt: str, repeats: int, warmup: int, tmp: Path) -> list[Row]:
    """Rows for one ``--format``: one per spec, then the per-round totals over all specs."""
    group = f"compile overhead (--format {fmt})"
    labels, sides = [], []
    for label, spec, script in SCENARIOS:
        if (ROOT / spec).exists() and (ROOT / script).exists():
            labels.append(label)
            sides += _sides(ROOT / spec, ROOT / script, fmt, tmp)
    samples = interleave(sides, repeats, warmup)
    rows = [
        Row(group, label, samples[2 * i], samples[2 * i + 1], "s", "f/b", hi=TARGET) for i, label in enumerate(labels)
    ]
    if len(rows) > 1:
        ours = [sum(r.fusec[k] for r in rows) for k in range(repeats)]
        hand = [sum(r.base[k] for r in rows) for k in range(repeats)]
        rows.append(Row(group, f"all {len(rows)} specs (total per round)", ours, hand, "s", "f/b", hi=TARGET))
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    """Every format's rows, after a warm-up round (--quick: one TensorFlow import) to fill the file cache."""
    repeats = args.compile_repeats or (2 if args.quick else 5)
    if args.quick:
        checked_child([PY, "-c", "import tensorflow"])
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fusec-bench-") as tmp:
        for fmt in args.compile_formats.split(","):
            rows += measure(fmt, repeats, 0 if args.quick else 1, Path(tmp))
            for row in rows[-1:]:
                print(f"  --format {fmt}: overall ratio {row.ratio:.3f}", flush=True)
    return rows
