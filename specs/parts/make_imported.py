"""Rebuild specs/se_resnet_imported.json and its weights file with `fusec import --blocks`.

Builds a tiny squeeze-and-excitation ResNet in plain Keras (five residual
blocks in two stages; each block's gate is a (1, 1, C) tensor broadcast over
the (H, W, C) feature map by a `multiply`), trains it for one short epoch on
random data so the weights are not the initial ones, saves it as a `.keras`
archive in a temporary folder and imports it: the repeated blocks fold into
one block definition with parameters, instantiated with `repeat`. The outputs
are committed; run this only to regenerate them:

    .venv/bin/python specs/parts/make_imported.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent / "se_resnet_imported.json"


def se_block(x, filters: int, name: str, stride: int = 1):  # type: ignore[no-untyped-def]
    """conv-bn-relu-conv-bn, a squeeze-and-excitation gate, and the residual sum."""
    from keras import layers

    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(y)
    gate = layers.Conv2D(max(filters // 4, 1), 1, activation="relu", name=f"{name}_reduce")(gate)
    gate = layers.Conv2D(filters, 1, activation="sigmoid", name=f"{name}_expand")(gate)
    y = layers.Multiply(name=f"{name}_excite")([y, gate])
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def build():  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    image = keras.Input((16, 16, 3), name="image")
    x = layers.Rescaling(1 / 255, name="scale")(image)
    x = layers.Conv2D(8, 3, padding="same", name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for i in range(3):
        x = se_block(x, 8, f"stage1_block{i + 1}")
    x = se_block(x, 16, "stage2_block1", stride=2)
    for i in range(2):
        x = se_block(x, 16, f"stage2_block{i + 2}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    probs = layers.Dense(5, activation="softmax", name="probs")(x)
    return keras.Model(image, probs, name="se_resnet")


def main() -> None:
    import keras

    from fusec.importer import import_source
    from fusec.spec.fold import write_spec_text

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = build()
    model.compile("adam", "categorical_crossentropy")
    x = rng.uniform(0, 255, (64, 16, 16, 3)).astype("float32")
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, 64)]
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "se_resnet.keras"
        model.save(archive)
        report = import_source(str(archive), SPEC, blocks=True)
    # fusec import does not carry Keras's compile settings over: the loss the model was trained with is added here.
    doc = json.loads(SPEC.read_text(encoding="utf-8"))
    doc["$schema"] = "../compiler/spec/schema/fusec-1.schema.json"
    doc["doc"] += " Rebuilt by specs/parts/make_imported.py, which adds the loss and training settings."
    doc["outputs"]["probs"].update({"loss": "categorical_crossentropy", "metrics": ["categorical_accuracy"]})
    doc["training"] = {"optimizer": "adam", "learning_rate": 0.001}
    SPEC.write_text(write_spec_text(doc), encoding="utf-8")
    print(f"wrote {report.spec} and {report.weights} ({report.lines} lines; {report.flat_lines} unfolded)")


if __name__ == "__main__":
    main()
