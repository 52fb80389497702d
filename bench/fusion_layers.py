"""fusec's weighted and gated merge layers against the seed formulations.

Seed 001's ``WeightedAverage`` expands each input (a Python list
comprehension of expand_dims), concatenates them on a new last axis, and
reduces ``softmax(W) * inputs``. Seed 003 concatenates the experts, reshapes
them to (L, k), and contracts them with the reshaped gate through ``Dot``.
fusec's layers stack once and contract once. Both sides run inside
``tf.function`` on the same inputs and weights, interleaved; one row per
merge, fan-in and pass (forward; forward and backward), with the largest
difference between the two outputs as a note. Ratio: seed time / fusec time
(above 1: fusec is faster). Target: at least 1.0 at every fan-in, and better
at 16 to 64 inputs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from harness import Row, interleave, tensorflow_on

NAME = "fusion"
TITLE = "weighted / gated merges vs the seed formulations   >= 1.0"
TARGET = 1.0


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--fan-in", help="comma-separated input counts (default 2,4,16,64; --quick 2,16)")
    group.add_argument("--fusion-repeats", type=int, help="measurements per case (default 20; --quick 3)")
    group.add_argument("--fusion-inner", type=int, help="calls per measurement (default 20; --quick 5)")
    group.add_argument("--fusion-batch", type=int, default=256)
    group.add_argument("--fusion-features", type=int, default=128)


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


def timed(fn: Callable[[], Any], inner: int) -> Callable[[], float]:
    """One measurement: ``inner`` calls, then a sync; microseconds per call."""

    def once() -> float:
        start = time.perf_counter()
        for _ in range(inner):
            out = fn()
        _ = [t.numpy() for t in (out if isinstance(out, (list, tuple)) else [out])]  # wait for the device
        return (time.perf_counter() - start) / inner * 1e6

    return once


def pairs(keras: Any, tf: Any, n: int, batch: int, features: int) -> list[tuple[str, Any, Any, list[Any]]]:
    """(merge, seed model, fusec model, inputs) at fan-in ``n``, with the same weights."""
    import numpy as np

    from fusec.keras.fusion import WeightedMerge

    WeightedAverage, seed_gate = seed_layers(keras, tf)
    rng = np.random.default_rng(0)
    xs = [tf.constant(rng.random((batch, features), dtype=np.float32)) for _ in range(n)]
    gate = tf.nn.softmax(tf.constant(rng.normal(size=(batch, n)).astype(np.float32)))
    seed_w, ours_w = WeightedAverage(n), WeightedMerge()
    seed_w(xs), ours_w(xs)
    ours_w.logits.assign(tf.reshape(seed_w.W, (n,)))
    seed_g = build_gated_model(keras, n, features, True, seed_gate)
    ours_g = build_gated_model(keras, n, features, False, seed_gate)
    return [("weighted", seed_w, ours_w, xs), ("gated", seed_g, ours_g, [*xs, gate])]


def run(args: argparse.Namespace) -> list[Row]:
    """One row per merge, fan-in and pass, on ``args.device``."""
    keras, tf, where, device = tensorflow_on(args.device)
    fan_ins = [int(x) for x in (args.fan_in or ("2,16" if args.quick else "2,4,16,64")).split(",")]
    repeats = args.fusion_repeats or (3 if args.quick else 20)
    inner = args.fusion_inner or (5 if args.quick else 20)
    rows = []
    with tf.device(where):
        for n in fan_ins:
            for merge, seed, ours, inputs in pairs(keras, tf, n, args.fusion_batch, args.fusion_features):
                diff = float(tf.reduce_max(tf.abs(seed(inputs) - ours(inputs))))
                for backward in (False, True):
                    sides = [timed(make_step(tf, m, inputs, backward), inner) for m in (ours, seed)]
                    t_ours, t_seed = interleave(sides, repeats, warmup=3)
                    name = f"{merge} fan-in {n} {'fwd+bwd' if backward else 'forward'}"
                    note = f"max|diff| {diff:.1e}"
                    rows.append(Row(f"fusion ({device})", name, t_ours, t_seed, "µs", "b/f", lo=TARGET, note=note))
    return rows
