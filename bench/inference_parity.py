"""Inference parity: the SavedModel `fusec compile` writes against the hand-written script's.

For the seed 000, 002 and 003 scenarios, compiles the spec with fusec and
runs the hand-written Keras script (bench/handwritten/), each into a temporary
folder, then loads both SavedModels into this one process and times their
``serving_default`` signatures on the same inputs: batch-1 latency
(milliseconds per call, median over measurements of ``--calls`` calls each)
and batch-256 throughput (examples per second). The two models' measurements
alternate (A B B A ...), so drift hits both. Target: fusec / hand-written
within 0.97 to 1.03 for both. A control row times the hand-written model
against a second copy of itself: how far from 1 noise alone moves a ratio.

    python bench/inference_parity.py [--device cpu|gpu] [--repeats 40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compile_overhead import SCENARIOS
from harness import PY, ROOT, Row, checked_child, fusec, print_rows, write_rows

LO, HI = 0.97, 1.03


def compile_pair(spec: str, script: str, folder: Path) -> tuple[Path, Path]:
    """Compile ``spec`` with fusec and run the hand-written ``script``; the two SavedModel folders."""
    ours, hand = folder / "fusec", folder / "hand"
    checked_child(fusec("compile", str(ROOT / spec), "-o", str(ours), "--format", "savedmodel"))
    checked_child([PY, str(ROOT / script), str(hand)])
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


def alternate(a: Callable[[], float], b: Callable[[], float], repeats: int) -> tuple[list[float], list[float]]:
    ta: list[float] = []
    tb: list[float] = []
    for i in range(repeats):
        for side in (a, b) if i % 2 == 0 else (b, a):
            (ta if side is a else tb).append(side())
    return ta, tb


def measure(
    device: str = "cpu", repeats: int = 40, calls: int = 50, big_calls: int = 4, control: bool = True
) -> list[Row]:
    """Rows for batch-1 latency and batch-256 throughput of each scenario (and a noise-floor control)."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # before TensorFlow is imported
    from fusec.keras.tf import import_keras

    import_keras()  # TensorFlow, without its start-up banner
    import tensorflow as tf

    if device == "gpu" and not tf.config.list_physical_devices("GPU"):
        raise SystemExit("error: --device gpu but TensorFlow sees no GPU")
    where = "/GPU:0" if device == "gpu" else "/CPU:0"
    name = (
        tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0]).get("device_name", "GPU")
        if device == "gpu"
        else "CPU"
    )
    group = f"inference ({device}{'' if device == 'cpu' else ': ' + name})"
    tmp = Path(tempfile.mkdtemp(prefix="fusec-bench-"))
    rows = []
    try:
        for label, spec, script in SCENARIOS:
            if not (ROOT / spec).exists() or not (ROOT / script).exists():
                continue
            ours_dir, hand_dir = compile_pair(spec, script, tmp / label.split()[1])
            ours = tf.saved_model.load(str(ours_dir)).signatures["serving_default"]
            hand = tf.saved_model.load(str(hand_dir)).signatures["serving_default"]
            pairs = [(label, ours, hand)]
            if control and not rows:
                # The hand-written model against a second copy of itself: the
                # noise floor, what a ratio of 1 looks like on this machine.
                twin = tf.saved_model.load(str(hand_dir)).signatures["serving_default"]
                pairs.append((f"{label} control, hand-written vs itself", twin, hand))
            with tf.device(where):
                for title, fa_fn, fb_fn in pairs:
                    for batch, n_calls, unit in ((1, calls, "ms"), (256, big_calls, "ex/s")):
                        inputs = feed(tf, ours, batch)
                        a, b = timer(fa_fn, inputs, n_calls), timer(fb_fn, inputs, n_calls)
                        for _ in range(3):  # warm up: tracing, allocation, caches
                            a(), b()
                        ta, tb = alternate(a, b, repeats)
                        if unit == "ms":
                            fa, fb = [t * 1e3 for t in ta], [t * 1e3 for t in tb]
                            what = "batch 1 latency"
                        else:
                            fa, fb = [batch / t for t in ta], [batch / t for t in tb]
                            what = "batch 256 throughput"
                        band = {} if "control" in title else {"lo": LO, "hi": HI}
                        row = Row(group, f"{title}: {what}", fa, fb, unit, "f/b", **band)
                        row.higher_is_better = unit == "ex/s"
                        rows.append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--repeats", type=int, default=40, help="measurements per model (median)")
    parser.add_argument("--calls", type=int, default=50, help="batch-1 calls per measurement")
    parser.add_argument("--big-calls", type=int, default=4, help="batch-256 calls per measurement")
    parser.add_argument("--no-control", action="store_true", help="skip the hand-written-vs-itself rows")
    parser.add_argument("--json", help="also write the rows to this JSON file (for run_all.py)")
    args = parser.parse_args(argv)
    rows = measure(args.device, args.repeats, args.calls, args.big_calls, not args.no_control)
    write_rows(rows, args.json)
    print(f"{args.repeats} alternating measurements per model; ratio = fusec / hand-written (time or ex/s)")
    print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
