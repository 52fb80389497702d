"""Seed 003 by hand: the gated mixture of specs/gated_experts.json, built and exported.

The mixture is written as the seed answer writes it: the gate reshaped to
(1, L), the experts concatenated and reshaped to (L, k), contracted by Dot.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras

out = sys.argv[1]
fmt = sys.argv[2] if len(sys.argv) > 2 else "all"  # as fusec compile --format
keras.utils.set_random_seed(3)
L = keras.layers
N_EXPERTS, K = 3, 6
features = keras.Input((32,), name="features")
experts = []
for i in range(1, N_EXPERTS + 1):
    h = L.Dense(32, activation="relu", name=f"e{i}_hidden")(features)
    experts.append(L.Dense(K, activation="softmax", name=f"e{i}")(h))
g = L.Dense(16, activation="relu", name="gate_hidden")(features)
gate = L.Dense(N_EXPERTS, activation="softmax", name="gate")(g)
merge_softmax = L.Reshape((1, N_EXPERTS), name="gate_row")(gate)
bag = L.Concatenate(name="bag")(experts)
bag = L.Reshape((N_EXPERTS, K), name="bag_matrix")(bag)
mixed = L.Dot(axes=[1, 2], name="mix_dot")([bag, merge_softmax])
mix = L.Reshape((K,), name="mix")(mixed)
model = keras.Model({"features": features}, {"class": mix}, name="gated_experts")
model.compile(
    optimizer=keras.optimizers.Adam(0.001),
    loss={"class": "categorical_crossentropy"},
    metrics={"class": ["categorical_accuracy"]},
)
os.makedirs(out, exist_ok=True)
if fmt in ("all", "savedmodel"):
    model.export(os.path.join(out, "saved_model"), verbose=False)
if fmt in ("all", "keras"):
    model.save(os.path.join(out, "gated_experts.keras"))
