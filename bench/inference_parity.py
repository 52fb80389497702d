"""Inference parity: the SavedModel `fusec compile` writes against the hand-written script's.

For the seed 000, 002 and 003 scenarios, compiles the spec with fusec and
runs the hand-written Keras script (bench/handwritten/), each into a temporary
folder, then loads both SavedModels into this one process and times their
``serving_default`` signatures on the same inputs: batch-1 latency
(milliseconds per call, median over measurements of ``--inference-calls``
calls each) and batch-256 throughput (examples per second). The two models'
measurements alternate (A B B A ...), so drift hits both. Target: fusec /
hand-written within 0.97 to 1.03 for both. A control row times the
hand-written model against a second copy of itself: how far from 1 noise
alone moves a ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import PY, ROOT, SCENARIOS, Row, checked_child, fusec, interleave, tensorflow_on

NAME = "inference"
TITLE = "compiled vs hand-written SavedModel, batch 1 and 256   0.97 to 1.03"
LO, HI = 0.97, 1.03
#: (batch, unit, what): batch 1 in ms per call, batch 256 in examples per second
CASES = ((1, "ms", "batch 1 latency"), (256, "ex/s", "batch 256 throughput"))


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--inference-repeats", type=int, help="measurements per model (default 40; --quick 4)")
    group.add_argument("--inference-calls", type=int, help="batch-1 calls per measurement (default 50; --quick 10)")
    group.add_argument("--inference-big-calls", type=int, help="batch-256 calls per measurement (default 4; --quick 2)")
    group.add_argument("--no-control", action="store_true", help="skip the hand-written-vs-itself rows")


def compile_pair(spec: str, script: str, folder: Path) -> tuple[Path, Path]:
    """Compile ``spec`` with fusec and run the hand-written ``script``; the two SavedModel folders."""
    ours, hand = folder / "fusec", folder / "hand"
    checked_child(fusec("compile", str(ROOT / spec), "-o", str(ours), "--format", "savedmodel"))
    checked_child([PY, str(ROOT / script), str(hand), "savedmodel"])
    return ours / "saved_model", hand / "saved_model"


def feed(tf: Any, fn: Any, batch: int, seed: int = 0) -> dict[str, Any]:
    """Random inputs for every argument of a signature (integers in [0, 10))."""
    gen = tf.random.Generator.from_seed(seed)
    out = {}
    for name, spec in sorted(fn.structured_input_signature[1].items()):
        shape = [batch, *[d or 1 for d in spec.shape[1:]]]
        if spec.dtype.is_integer:
            out[name] = gen.uniform(shape, 0, 10, dtype=tf.int64 if spec.dtype == tf.int64 else tf.int32)
            out[name] = tf.cast(out[name], spec.dtype)
        else:
            out[name] = tf.cast(gen.uniform(shape), spec.dtype)
    return out


def timer(fn: Any, inputs: dict[str, Any], calls: int) -> Callable[[], float]:
    """A measurement: ``calls`` calls, then the results read back; seconds per call."""

    def once() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            result = fn(**inputs)
        for value in result.values():
            value.numpy()
        return (time.perf_counter() - start) / calls

    return once


def compare(tf: Any, group: str, title: str, ours: Any, hand: Any, args: argparse.Namespace) -> list[Row]:
    """Batch-1 latency and batch-256 throughput of two signatures, interleaved."""
    rows = []
    for batch, unit, what in CASES:
        inputs = feed(tf, ours, batch)
        if batch == 1:
            calls = args.inference_calls or (10 if args.quick else 50)
        else:
            calls = args.inference_big_calls or (2 if args.quick else 4)
        repeats = args.inference_repeats or (4 if args.quick else 40)
        ta, tb = interleave([timer(ours, inputs, calls), timer(hand, inputs, calls)], repeats, warmup=3)
        fa, fb = ([t * 1e3 for t in ts] if unit == "ms" else [batch / t for t in ts] for ts in (ta, tb))
        band = {} if "control" in title else {"lo": LO, "hi": HI}
        row = Row(group, f"{title}: {what}", fa, fb, unit, "f/b", **band)
        row.higher_is_better = unit == "ex/s"
        rows.append(row)
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    """Rows for every scenario (and, first, the noise-floor control), on ``args.device``."""
    _, tf, where, device = tensorflow_on(args.device)
    group = f"inference ({device})"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fusec-bench-") as tmp:
        for label, spec, script in SCENARIOS:
            if not (ROOT / spec).exists() or not (ROOT / script).exists():
                continue
            ours_dir, hand_dir = compile_pair(spec, script, Path(tmp) / label.split()[1])
            ours = tf.saved_model.load(str(ours_dir)).signatures["serving_default"]
            hand = tf.saved_model.load(str(hand_dir)).signatures["serving_default"]
            pairs = [(label, ours, hand)]
            if not (args.no_control or args.quick or rows):
                # The hand-written model against a second copy of itself: the
                # noise floor, what a ratio of 1 looks like on this machine.
                twin = tf.saved_model.load(str(hand_dir)).signatures["serving_default"]
                pairs.append((f"{label} control, hand-written vs itself", twin, hand))
            with tf.device(where):
                for title, a, b in pairs:
                    rows += compare(tf, group, title, a, b, args)
    return rows
