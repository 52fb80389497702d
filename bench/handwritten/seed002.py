"""Seed 002 by hand: the multi-task network of specs/multitask_shared.json, built and exported."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras

out = sys.argv[1]
fmt = sys.argv[2] if len(sys.argv) > 2 else "all"  # as fusec compile --format
keras.utils.set_random_seed(11)
L = keras.layers
x = keras.Input((20,), name="x")
trunk = L.Dense(32, name="trunk")(x)
subs = [L.Dense(16, name=f"sub{i}")(trunk) for i in (1, 2, 3)]
head = L.Dense(1, name="out")
model = keras.Model({"x": x}, {f"task{i}": head(s) for i, s in enumerate(subs, 1)}, name="multitask_shared")
model.compile(
    optimizer=keras.optimizers.Adam(0.001),
    loss={"task1": "mse", "task2": "mse", "task3": "mae"},
    loss_weights={"task1": 1.0, "task2": 0.5, "task3": 0.25},
    metrics={"task1": ["mae"], "task2": ["mae"]},
)
os.makedirs(out, exist_ok=True)
if fmt in ("all", "savedmodel"):
    model.export(os.path.join(out, "saved_model"), verbose=False)
if fmt in ("all", "keras"):
    model.save(os.path.join(out, "multitask_shared.keras"))
