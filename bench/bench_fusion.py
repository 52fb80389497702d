"""Benchmark fusec's weighted and gated merge layers against the seed formulations.

Seed 001's ``WeightedAverage`` expands each input (a Python list
comprehension of expand_dims), concatenates them on a new last axis, and
reduces ``softmax(W) * inputs``. Seed 003 concatenates the experts, reshapes
them to (L, k), and contracts them with the reshaped gate through ``Dot``.
fusec's layers stack once and contract once. Both sides run inside
``tf.function`` on the same inputs and weights; the table shows the median
time per call and the ratio seed / fusec (above 1: fusec is faster).

Usage:
    python bench/bench_fusion.py [--device cpu|gpu] [--fan-in 2,4,16,64]
        [--features 128] [--batch 256] [--repeats 30] [--inner 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--fan-in", default="2,4,16,64", help="comma-separated input counts")
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30, help="timed measurements per case (median)")
    parser.add_argument("--inner", type=int, default=20, help="calls per measurement")
    parser.add_argument("--warmup", type=int, default=5)
    return parser.parse_args(argv)


def seed_layers(keras: Any, tf: Any) -> tuple[type, Callable[..., Any]]:
    """The seed answers' formulations, written for Keras 3 with the same ops."""

    class WeightedAverage(keras.layers.Layer):  # seed 001
        def __init__(self, n_output: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.W = self.add_weight(
                shape=(1, 1, n_output), initializer=keras.initializers.RandomUniform(0, 1), name="W"
            )
            self.concat = keras.layers.Concatenate(axis=-1)

        def call(self, inputs: list[Any]) -> Any:
            inputs = [tf.expand_dims(i, -1) for i in inputs]
            inputs = self.concat(inputs)
            weights = tf.nn.softmax(self.W, axis=-1)
            return tf.reduce_sum(weights * inputs, axis=-1)

    def seed_gate(experts: list[Any], gate: Any) -> Any:  # seed 003
        n, k = len(experts), experts[0].shape[-1]
        merge_softmax = keras.layers.Reshape((1, n))(gate)
        bag = keras.layers.Concatenate()(experts)
        bag = keras.layers.Reshape((n, k))(bag)
        out = keras.layers.Dot(axes=[1, 2])([bag, merge_softmax])
        return keras.layers.Reshape((k,))(out)

    return WeightedAverage, seed_gate


def build_gated_model(keras: Any, n: int, f: int, seed: bool, seed_gate: Callable[..., Any]) -> Any:
    from fusec.keras.fusion import GatedMerge

    experts = [keras.Input((f,)) for _ in range(n)]
    gate = keras.Input((n,))
    out = seed_gate(experts, gate) if seed else GatedMerge()(experts, gate)
    return keras.Model([*experts, gate], out)


def time_fn(fn: Callable[[], Any], args: argparse.Namespace) -> float:
    """One measurement: ``inner`` calls, then a sync; seconds per call."""
    start = time.perf_counter()
    for _ in range(args.inner):
        out = fn()
    _ = [t.numpy() for t in (out if isinstance(out, (list, tuple)) else [out])]  # wait for the device
    return (time.perf_counter() - start) / args.inner


def compare(fns: dict[str, Callable[[], Any]], args: argparse.Namespace) -> dict[str, float]:
    """Median seconds per call of each function, measured interleaved to cancel drift."""
    for fn in fns.values():
        for _ in range(args.warmup):
            time_fn(fn, args)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.repeats):
        for name, fn in fns.items():
            samples[name].append(time_fn(fn, args))
    return {k: statistics.median(v) for k, v in samples.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # before TensorFlow is imported
    from fusec.keras.tf import import_keras

    keras = import_keras()
    import numpy as np
    import tensorflow as tf

    from fusec.keras.fusion import WeightedMerge

    if args.device == "gpu" and not tf.config.list_physical_devices("GPU"):
        print("error: --device gpu but TensorFlow sees no GPU", file=sys.stderr)
        return 2
    device = "/GPU:0" if args.device == "gpu" else "/CPU:0"
    WeightedAverage, seed_gate = seed_layers(keras, tf)
    rng = np.random.default_rng(0)
    b, f = args.batch, args.features
    rows = []
    with tf.device(device):
        for n in (int(x) for x in args.fan_in.split(",")):
            xs = [tf.constant(rng.random((b, f), dtype=np.float32)) for _ in range(n)]
            gate = tf.nn.softmax(tf.constant(rng.normal(size=(b, n)).astype(np.float32)))

            seed_w, ours_w = WeightedAverage(n), WeightedMerge()
            seed_w(xs), ours_w(xs)
            ours_w.logits.assign(tf.reshape(seed_w.W, (n,)))
            seed_g = build_gated_model(keras, n, f, True, seed_gate)
            ours_g = build_gated_model(keras, n, f, False, seed_gate)
            gin = [*xs, gate]
            diff_w = float(tf.reduce_max(tf.abs(seed_w(xs) - ours_w(xs))))
            diff_g = float(tf.reduce_max(tf.abs(seed_g(gin) - ours_g(gin))))

            for merge, seed, ours, inputs, diff in (
                ("weighted", seed_w, ours_w, xs, diff_w),
                ("gated", seed_g, ours_g, gin, diff_g),
            ):
                for mode in ("forward", "fwd+bwd"):
                    fns = {
                        "seed": make_step(tf, seed, inputs, mode == "fwd+bwd"),
                        "fusec": make_step(tf, ours, inputs, mode == "fwd+bwd"),
                    }
                    med = compare(fns, args)
                    rows.append((merge, n, mode, med["seed"], med["fusec"], diff))
    print_table(rows, args, tf)
    return 0


def make_step(tf: Any, layer: Any, inputs: list[Any], backward: bool) -> Callable[[], Any]:
    """A compiled forward (or forward and backward) pass of ``layer`` on ``inputs``."""

    @tf.function
    def forward(xs: list[Any]) -> Any:
        return layer(xs)

    @tf.function
    def step(xs: list[Any]) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(xs)
            loss = tf.reduce_sum(layer(xs))
        return tape.gradient(loss, [*xs, *layer.trainable_variables])

    fn = step if backward else forward
    return lambda: fn(inputs)


def print_table(rows: list[tuple[str, int, str, float, float, float]], args: argparse.Namespace, tf: Any) -> None:
    print(
        f"device={args.device} tf={tf.__version__} batch={args.batch} features={args.features} "
        f"median of {args.repeats} x {args.inner} calls"
    )
    cols = ("merge", "fan-in", "pass", "seed µs", "fusec µs", "seed/fusec", "max|diff|")
    header = f"{cols[0]:<9} {cols[1]:>6} {cols[2]:<8} " + " ".join(f"{c:>10}" for c in cols[3:])
    print(header)
    print("-" * len(header))
    for merge, n, mode, seed, ours, diff in rows:
        times = f"{seed * 1e6:>10.1f} {ours * 1e6:>10.1f} {seed / ours:>10.2f} {diff:>10.1e}"
        print(f"{merge:<9} {n:>6} {mode:<8} {times}")


if __name__ == "__main__":
    sys.exit(main())
