"""The vocabulary real models need: initializer/regularizer/constraint objects, Dropout.noise_shape,
grouped convolutions, per-channel Rescaling, Normalization with stored state, LayerScale,
StochasticDepth, ScalarOp, more activations; static rules, Keras parity and archive translation."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from fusec.errors import RuleError
from fusec.static.archive.settings import fusec_config, translate_object
from fusec.static.check import check_spec
from fusec.vocab.initializers import from_keras
from fusec.vocab.layers import LAYERS
from fusec.vocab.rule import config_schema
from helpers import write


def _valid(layer: str, config: dict[str, Any]) -> bool:
    return Draft202012Validator(config_schema(LAYERS[layer])).is_valid(config)


def _infer(layer: str, shape: tuple[Any, ...], config: dict[str, Any]) -> Any:
    rule = LAYERS[layer]
    return rule.infer((None, *shape), rule.resolve(config))


# --- the schema: closed keys per named form ----------------------------------------------------

ACCEPTED = [
    ("Dense", {"units": 2, "kernel_initializer": {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"}}),
    ("Dense", {"units": 2, "kernel_initializer": "orthogonal", "bias_initializer": {"name": "constant", "value": 1}}),
    ("Dense", {"units": 2, "kernel_regularizer": {"l2": 0.1}, "bias_regularizer": {"name": "l1", "l1": 0.2}}),
    ("Dense", {"units": 2, "kernel_constraint": {"name": "max_norm", "max_value": 3, "axis": [0]}}),
    ("Conv2D", {"filters": 2, "kernel_size": 1, "kernel_initializer": {"name": "he_normal", "seed": 4}}),
    ("BatchNormalization", {"gamma_constraint": "non_neg", "moving_variance_initializer": "ones"}),
    ("Embedding", {"input_dim": 3, "output_dim": 2, "embeddings_initializer": {"name": "uniform", "maxval": 1}}),
]
REFUSED = [
    ("Dense", {"units": 2, "kernel_initializer": {"name": "variance_scaling", "gain": 2.0}}),  # another form's key
    ("Dense", {"units": 2, "kernel_initializer": {"scale": 2.0}}),  # no name
    ("Dense", {"units": 2, "bias_initializer": "orthogonal"}),  # a vector
    ("Dense", {"units": 2, "bias_initializer": {"name": "orthogonal", "gain": 2.0}}),
    ("Conv2D", {"filters": 2, "kernel_size": 1, "kernel_initializer": "identity"}),  # 2-D only in Keras: not offered
    ("Dense", {"units": 2, "kernel_regularizer": {"name": "l2", "l1": 0.1}}),
    ("Dense", {"units": 2, "kernel_regularizer": {}}),
    ("Dense", {"units": 2, "kernel_constraint": {"name": "non_neg", "axis": 0}}),
    ("Dense", {"units": 2, "activation": "glu"}),  # changes the shape: not an activation by name
    ("Dropout", {"rate": 0.1, "noise_shape": [None, 0]}),
    ("ScalarOp", {"op": "modulo", "value": 2.0}),
    ("ReLU", {"threshold": -1.0}),  # Keras refuses a negative threshold
]


@pytest.mark.parametrize(("layer", "config"), ACCEPTED, ids=lambda v: str(v)[:40])
def test_schema_accepts(layer: str, config: dict[str, Any]) -> None:
    assert _valid(layer, config)


@pytest.mark.parametrize(("layer", "config"), REFUSED, ids=lambda v: str(v)[:40])
def test_schema_refuses(layer: str, config: dict[str, Any]) -> None:
    assert not _valid(layer, config)


# --- static rules ------------------------------------------------------------------------------

RULE_REFUSALS = [
    ("Conv2D", (5, 5, 6), {"filters": 4, "kernel_size": 1, "groups": 4}, "groups 4 does not divide its input"),
    ("Conv1D", (5, 6), {"filters": 4, "kernel_size": 1, "groups": 3}, "groups 3 does not divide its filters"),
    ("Dropout", (4, 4, 3), {"rate": 0.1, "noise_shape": [None, 1, 1]}, "one entry per axis"),
    ("Dropout", (4, 3), {"rate": 0.1, "noise_shape": [None, 2, 3]}, "axis 1 is 2"),
    ("Rescaling", (4, 3), {"scale": [1.0, 2.0]}, "one value or 3"),
    ("Rescaling", (None,), {"scale": [1.0, 2.0]}, "must be known"),
    ("Normalization", (3,), {"mean": 0.0}, "both given or both null"),
    ("LayerScale", (4, 3), {"projection_dim": 4}, "differs from the input's channels 3"),
]


@pytest.mark.parametrize(("layer", "shape", "config", "message"), RULE_REFUSALS, ids=lambda v: str(v)[:30])
def test_rules_refuse(layer: str, shape: tuple[Any, ...], config: dict[str, Any], message: str) -> None:
    assert _valid(layer, config)
    with pytest.raises(RuleError, match=message):
        _infer(layer, shape, config)


def test_parameter_counts() -> None:
    """Grouped kernels hold cin / groups per filter; a stored Normalization holds 2C + 1 (Keras's count)."""
    assert _infer("Conv2D", (5, 5, 4), {"filters": 8, "kernel_size": 3, "groups": 2}).trainable == 152
    assert _infer("Normalization", (4, 4, 3), {}).non_trainable == 7
    assert _infer("Normalization", (3,), {"mean": 1.0, "variance": 2.0}).params == 0
    assert _infer("LayerScale", (4, 5), {}).trainable == 5
    assert _infer("ScalarOp", (2,), {"op": "power", "value": 2.0}).params == 0


# --- translating Keras's serialized objects ------------------------------------------------------

TRANSLATIONS = [
    (
        "kernel_initializer",
        {"class_name": "VarianceScaling",
         "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal", "seed": None,
                    "input_axes": None, "output_axes": None}},
        {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"},
    ),
    ("kernel_initializer", {"class_name": "HeNormal", "config": {"seed": None}}, "he_normal"),
    ("bias_initializer", {"class_name": "Constant", "config": {"value": 0.5}}, {"name": "constant", "value": 0.5}),
    ("embeddings_initializer", {"class_name": "RandomUniform", "config": {"minval": -0.05, "maxval": 0.05}},
     "random_uniform"),
    ("kernel_regularizer", {"class_name": "L2", "config": {"l2": 1e-4}}, {"name": "l2", "l2": 1e-4}),
    ("kernel_regularizer", {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.0}}, {"name": "l1_l2"}),
    ("kernel_constraint", {"class_name": "MaxNorm", "config": {"max_value": 3, "axis": [0, 1, 2]}},
     {"name": "max_norm", "max_value": 3, "axis": [0, 1, 2]}),
    ("gamma_constraint", {"class_name": "NonNeg", "config": {}}, "non_neg"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "want"), TRANSLATIONS, ids=lambda v: str(v)[:30])
def test_keras_objects_translate(key: str, value: dict[str, Any], want: Any) -> None:
    kind = key.rsplit("_", 1)[1]
    assert translate_object(key, {"module": f"keras.{kind}s", **value}, "layer `d`", "m.keras", "model") == want


def test_untranslatable_objects_are_refused_once() -> None:
    """One problem per value, naming the key, the class and what fusec cannot take."""
    value = {"class_name": "VarianceScaling", "config": {"scale": 2.0, "input_axes": [0]}}
    assert from_keras("initializer", "VarianceScaling", value["config"])[1] == ["input_axes"]
    cfg = {"name": "d", "units": 2, "kernel_initializer": {"module": "keras.initializers", **value}}
    with pytest.raises(RuleError) as err:
        fusec_config("Dense", LAYERS["Dense"].param_index, cfg, "layer `d`", "m.keras", "model", "layer", "Dense")
    message = str(err.value)
    assert message.count("input_axes") == 1 and "VarianceScaling" in message
    odd = {"module": "keras.initializers", "class_name": "STFT", "config": {}}
    with pytest.raises(RuleError, match="STFT, an initializer outside"):
        translate_object("kernel_initializer", odd, "layer `d`", "m.keras", "model")
    with pytest.raises(RuleError, match="not a Keras regularizer"):
        translate_object("kernel_regularizer", {"l2": 0.1}, "layer `d`", "m.keras", "model")


def test_undeclared_penalties_are_refused() -> None:
    """A regularizer or constraint on a key fusec's layer does not take would be lost in training: refused."""
    cfg = {"name": "p", "rate": 0.1, "odd_constraint": {"module": "keras.constraints", "class_name": "NonNeg"}}
    with pytest.raises(RuleError, match="does not take for this layer"):
        fusec_config("Dropout", LAYERS["Dropout"].param_index, cfg, "layer `p`", "m.keras", "model", "layer", "Dropout")


# --- Keras: a spec using each new thing equals the same Keras model ------------------------------

NODES: dict[str, Any] = {
    "pre": {"layer": "Rescaling", "config": {"scale": [0.5, 1.0, 2.0], "offset": [0.0, -1.0, 1.0]}, "inputs": "x"},
    "norm": {"layer": "Normalization", "config": {}, "inputs": "pre"},
    "conv": {
        "layer": "Conv2D",
        "config": {
            "filters": 6, "kernel_size": 3, "padding": "same", "groups": 3, "activation": "hard_swish",
            "kernel_initializer": {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"},
            "kernel_regularizer": {"name": "l2", "l2": 1e-4}, "kernel_constraint": {"name": "max_norm", "max_value": 2},
        },
        "inputs": "norm",
    },
    "scale": {"layer": "LayerScale", "config": {"init_values": 0.5}, "inputs": "conv"},
    "drop": {"layer": "Dropout", "config": {"rate": 0.2, "noise_shape": [None, 1, 1, 1]}, "inputs": "scale"},
    "depth": {"layer": "StochasticDepth", "config": {"rate": 0.3}, "inputs": "drop"},
    "plus": {"layer": "ScalarOp", "config": {"op": "add", "value": 3.0}, "inputs": "depth"},
    "sixth": {"layer": "ScalarOp", "config": {"op": "multiply", "value": 1 / 6}, "inputs": "plus"},
    "inv": {"layer": "ScalarOp", "config": {"op": "subtract", "value": 1.0, "reverse": True}, "inputs": "sixth"},
    "relu": {"layer": "ReLU", "config": {"max_value": 6.0, "threshold": 0.1}, "inputs": "inv"},
    "pool": {"layer": "GlobalAveragePooling2D", "inputs": "relu"},
    "y": {"layer": "Dense", "config": {"units": 2, "activation": "log_sigmoid"}, "inputs": "pool"},
}  # fmt: skip


def _spec(tmp_path: Path) -> Path:
    doc = {
        "fusec": 1,
        "name": "vocab_more",
        "seed": 3,
        "inputs": {"x": {"shape": [5, 5, 3]}},
        "nodes": NODES,
        "outputs": {"y": {"from": "y", "loss": "mse"}},
    }
    return write(tmp_path, doc)


def _keras_twin(keras: Any) -> Any:
    """The same model written in Keras directly (ConvNeXt's own LayerScale, raw ops for ScalarOp)."""
    from keras.src.applications.convnext import LayerScale

    x = keras.Input((5, 5, 3))
    h = keras.layers.Rescaling([0.5, 1.0, 2.0], [0.0, -1.0, 1.0])(x)
    h = keras.layers.Normalization()(h)
    h = keras.layers.Conv2D(6, 3, padding="same", groups=3, activation="hard_swish")(h)
    h = LayerScale(0.5, 6)(h)
    h = keras.layers.Dropout(0.2, noise_shape=(None, 1, 1, 1))(h)
    h = ((h + 3.0) * (1 / 6)) * -1.0 + 1.0
    h = keras.layers.ReLU(max_value=6.0, threshold=0.1)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(2, activation="log_sigmoid")(h))


@pytest.mark.slow
def test_spec_equals_keras_with_copied_weights(keras: Any, tmp_path: Path) -> None:
    from fusec.keras.build import build_model

    checked = check_spec(_spec(tmp_path))
    model = build_model(checked, compile=False)
    twin = _keras_twin(keras)
    assert model.count_params() == twin.count_params() == checked.totals.params
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()]
    weights[2] = np.abs(weights[2]) + 0.5  # Normalization's variance
    model.set_weights(weights)
    twin.set_weights(weights)
    x = rng.normal(size=(4, 5, 5, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model([x], training=False)["y"]), np.asarray(twin(x, training=False)))
    conv = model.get_layer("conv")
    assert conv.kernel_constraint.max_value == 2 and conv.kernel_regularizer.l2 == pytest.approx(1e-4)
    assert conv.kernel_initializer.scale == 2.0 and conv.kernel_initializer.mode == "fan_out"


@pytest.mark.slow
def test_stochastic_depth_drops_whole_examples(keras: Any) -> None:
    from fusec.keras.fusion import StochasticDepth

    layer = StochasticDepth(0.5, seed=1)
    x = np.ones((64, 3, 4), "float32")
    out = np.asarray(layer(x, training=True))
    per_example = out.reshape(64, -1)
    assert set(np.unique(per_example)) <= {0.0, 2.0}
    assert all(len(set(row)) == 1 for row in per_example)  # all or nothing per example
    assert 0 < (per_example[:, 0] == 0).sum() < 64
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


@pytest.mark.slow
def test_unadapted_normalization_and_activations_run(keras: Any) -> None:
    from fusec.keras.layers import keras_layer
    from fusec.vocab.rule import ACTIVATIONS

    out = keras_layer("Normalization", {}, None)(np.full((2, 3), 4.0, "float32"))
    np.testing.assert_array_equal(np.asarray(out), np.full((2, 3), 4.0))  # mean 0, variance 1 until filled
    x = np.linspace(-3, 3, 12, dtype="float32").reshape(2, 6)
    for name in ACTIVATIONS:
        got = np.asarray(keras_layer("Activation", {"activation": name}, None)(x))
        assert got.shape == x.shape, name


def _layer_configs(path: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    return {d["config"]["name"]: (d["class_name"], d["config"]) for d in config["config"]["layers"]}


@pytest.mark.slow
def test_archive_settings_translate(keras: Any, tmp_path: Path) -> None:
    """A tiny .keras using every new key: each layer's config reads back as the fusec config, and the archive's
    static shapes and counts equal Keras's."""
    from fusec.static.archive import inspect_keras

    x = keras.Input((6, 6, 4))
    h = keras.layers.Rescaling([1.0, 2.0, 3.0, 4.0], name="pre")(x)
    h = keras.layers.Normalization(name="norm")(h)
    init = keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")
    h = keras.layers.Conv2D(
        4, 3, groups=2, kernel_initializer=init, kernel_regularizer=keras.regularizers.L2(1e-4),
        kernel_constraint=keras.constraints.MaxNorm(3, axis=[0, 1, 2]), activation="hard_swish", name="conv",
    )(h)  # fmt: skip
    h = keras.layers.Dropout(0.1, noise_shape=(None, 1, 1, 1), name="drop")(h)
    h = keras.layers.BatchNormalization(gamma_constraint="non_neg", name="bn")(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    out = keras.layers.Dense(3, bias_initializer=keras.initializers.Constant(0.5), name="out")(h)
    path = tmp_path / "m.keras"
    keras.Model(x, out).save(path)
    want = {
        "pre": {"scale": [1.0, 2.0, 3.0, 4.0]},
        "norm": {"mean": None, "variance": None},
        "conv": {
            "groups": 2,
            "kernel_initializer": {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"},
            "kernel_regularizer": {"name": "l2", "l2": 1e-4},
            "kernel_constraint": {"name": "max_norm", "max_value": 3, "axis": [0, 1, 2]},
            "activation": "hard_silu",
        },
        "drop": {"noise_shape": [None, 1, 1, 1]},
        "bn": {"gamma_constraint": "non_neg"},
        "out": {"bias_initializer": {"name": "constant", "value": 0.5}},
    }
    for name, (cls, cfg) in _layer_configs(path).items():
        if name in want:
            got = fusec_config(cls, LAYERS[cls].param_index, cfg, f"layer `{name}`", "m.keras", "model", "layer", cls)
            assert {k: got.get(k) for k in want[name]} == want[name], name
    sub = inspect_keras(path)
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert sub.trainable + sub.non_trainable == model.count_params()
    assert sub.non_trainable == sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


@pytest.mark.slow
def test_fusec_layers_round_trip_through_an_archive(keras: Any, tmp_path: Path) -> None:
    """A compiled spec with LayerScale, StochasticDepth and ScalarOp reloads in Keras and reads back in fusec."""
    from fusec.keras import fusion  # noqa: F401  (registers fusec's layers with Keras)
    from fusec.keras.build import build_model
    from fusec.static.archive import inspect_keras
    from fusec.static.archive.classes import allowed_classes

    if "LayerScale" not in allowed_classes().get("fusec.keras.fusion", frozenset()):
        pytest.skip("static/archive/classes.py does not list fusec's own layers yet (lead: _FUSEC_LAYERS)")
    model = build_model(check_spec(_spec(tmp_path)), compile=False)
    path = tmp_path / "m.keras"
    model.save(path)
    back = keras.saving.load_model(path, compile=False, safe_mode=True)
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(back([x])["y"]), np.asarray(model([x])["y"]))
    assert inspect_keras(path).trainable == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
