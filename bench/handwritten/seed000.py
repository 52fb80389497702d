"""Seed 000 by hand: the image + tag network of specs/image_tag.json, built and exported."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras

out = sys.argv[1]
fmt = sys.argv[2] if len(sys.argv) > 2 else "all"  # as fusec compile --format
keras.utils.set_random_seed(7)
L = keras.layers
image = keras.Input((32, 32, 3), name="image")
tag = keras.Input((1,), dtype="int32", name="tag")
x = L.Rescaling(1 / 255, name="scale")(image)
x = L.Conv2D(16, 3, activation="relu", name="conv1")(x)
x = L.MaxPooling2D(name="pool1")(x)
x = L.Conv2D(32, 3, activation="relu", name="conv2")(x)
x = L.MaxPooling2D(name="pool2")(x)
x = L.Flatten(name="img_flat")(x)
x = L.Dense(64, activation="relu", name="img_vec")(x)
t = L.Embedding(1000, 16, name="tag_emb")(tag)
t = L.Flatten(name="tag_flat")(t)
t = L.Dense(16, activation="relu", name="tag_vec")(t)
h = L.Dense(32, activation="relu", name="hidden")(L.Concatenate(name="fuse")([x, t]))
y = L.Dense(1, activation="sigmoid", name="is_cat")(h)
model = keras.Model({"image": image, "tag": tag}, {"is_cat": y}, name="image_tag")
model.compile(
    optimizer=keras.optimizers.Adam(0.001), loss={"is_cat": "binary_crossentropy"}, metrics={"is_cat": ["accuracy"]}
)
os.makedirs(out, exist_ok=True)
if fmt in ("all", "savedmodel"):
    model.export(os.path.join(out, "saved_model"), verbose=False)
if fmt in ("all", "keras"):
    model.save(os.path.join(out, "image_tag.keras"))
