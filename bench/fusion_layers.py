"""Fusion layers for the summary table: bench_fusion.py's cases, keeping every sample.

``bench_fusion.py`` prints medians; this runs the same cases with its own
building blocks (the seed formulations, the models, the compiled steps) and
keeps each measurement, so the table can show spreads and paired ratios.
Ratio: seed time / fusec time (above 1: fusec is faster). Target: at least
1.0 at every fan-in, and better at 16 to 64 inputs.

    python bench/fusion_layers.py [--device cpu|gpu] [--fan-in 2,4,16,64] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import sys

from harness import Row, print_rows, write_rows

TARGET = 1.0


def measure(
    device: str = "cpu",
    fan_ins: tuple[int, ...] = (2, 4, 16, 64),
    repeats: int = 20,
    inner: int = 20,
    warmup: int = 3,
    batch: int = 256,
    features: int = 128,
) -> list[Row]:
    """One row per merge, fan-in and pass (forward; forward and backward)."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # before TensorFlow is imported
    from fusec.keras.tf import import_keras

    keras = import_keras()
    import numpy as np
    import tensorflow as tf
    from bench_fusion import build_gated_model, make_step, seed_layers, time_fn

    from fusec.keras.fusion import WeightedMerge

    if device == "gpu" and not tf.config.list_physical_devices("GPU"):
        raise SystemExit("error: --device gpu but TensorFlow sees no GPU")
    where = "/GPU:0" if device == "gpu" else "/CPU:0"
    if device == "gpu":
        gpu = tf.config.list_physical_devices("GPU")[0]
        group = f"fusion (gpu: {tf.config.experimental.get_device_details(gpu).get('device_name', 'GPU')})"
    else:
        group = "fusion (cpu)"
    opts = argparse.Namespace(inner=inner)
    WeightedAverage, seed_gate = seed_layers(keras, tf)
    rng = np.random.default_rng(0)
    rows = []
    with tf.device(where):
        for n in fan_ins:
            xs = [tf.constant(rng.random((batch, features), dtype=np.float32)) for _ in range(n)]
            gate = tf.nn.softmax(tf.constant(rng.normal(size=(batch, n)).astype(np.float32)))
            seed_w, ours_w = WeightedAverage(n), WeightedMerge()
            seed_w(xs), ours_w(xs)
            ours_w.logits.assign(tf.reshape(seed_w.W, (n,)))
            seed_g = build_gated_model(keras, n, features, True, seed_gate)
            ours_g = build_gated_model(keras, n, features, False, seed_gate)
            gin = [*xs, gate]
            for merge, seed, ours, inputs in (("weighted", seed_w, ours_w, xs), ("gated", seed_g, ours_g, gin)):
                diff = float(tf.reduce_max(tf.abs(seed(inputs) - ours(inputs))))
                for backward in (False, True):
                    s_fn = make_step(tf, seed, inputs, backward)
                    f_fn = make_step(tf, ours, inputs, backward)
                    for _ in range(warmup):
                        time_fn(s_fn, opts), time_fn(f_fn, opts)
                    ts: list[float] = []
                    tf_: list[float] = []
                    for i in range(repeats):
                        for fn, out in ((s_fn, ts), (f_fn, tf_)) if i % 2 == 0 else ((f_fn, tf_), (s_fn, ts)):
                            out.append(time_fn(fn, opts) * 1e6)
                    mode = "fwd+bwd" if backward else "forward"
                    rows.append(
                        Row(
                            group,
                            f"{merge} fan-in {n} {mode}",
                            tf_,
                            ts,
                            "µs",
                            "b/f",
                            lo=TARGET,
                            note=f"max|diff| {diff:.1e}",
                        )
                    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--fan-in", default="2,4,16,64", help="comma-separated input counts")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--inner", type=int, default=20, help="calls per measurement")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--json", help="also write the rows to this JSON file (for run_all.py)")
    args = parser.parse_args(argv)
    fan_ins = tuple(int(x) for x in args.fan_in.split(","))
    rows = measure(args.device, fan_ins, args.repeats, args.inner, batch=args.batch, features=args.features)
    write_rows(rows, args.json)
    print(f"batch {args.batch}, features {args.features}; ratio = seed formulation / fusec (above 1: fusec faster)")
    print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
