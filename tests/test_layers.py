"""Every layer rule against Keras itself: output shape and parameter counts.

The examples live beside each rule (``LayerRule.examples``); this test replays
them through Keras, so a rule that drifts from Keras fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from fusec.errors import RuleError
from fusec.keras.layers import keras_layer
from fusec.vocab.layers import LAYERS
from fusec.vocab.rule import Out

CASES = [
    pytest.param(name, shape, config, id=f"{name}-{i}")
    for name, rule in sorted(LAYERS.items())
    for i, (shape, config) in enumerate(rule.examples)
]


def keras_out(keras: Any, name: str, shape: Any, config: dict) -> Out:
    layer = keras_layer(name, config, None)
    rule = LAYERS[name]
    if rule.slots:
        given = {slot: keras.Input(shape=s) for slot, s in shape.items()}
        out = layer([given[s] for s in rule.slots if s in given]) if rule.call_style == "list" else layer(**given)
    else:
        dtype = "int32" if name == "Embedding" else "float32"
        out = layer(keras.Input(shape=shape, dtype=dtype))
    extra: tuple = ()
    if isinstance(out, (list, tuple)):
        extra = tuple(tuple(t.shape) for t in out[1:])
        out = out[0]
    trainable = sum(int(w.numpy().size) for w in layer.trainable_weights)
    non_trainable = sum(int(w.numpy().size) for w in layer.non_trainable_weights)
    assert trainable + non_trainable == layer.count_params()
    return Out(tuple(out.shape), trainable, non_trainable, extra)


@pytest.mark.parametrize(("name", "shape", "config"), CASES)
def test_rule_matches_keras(keras: Any, name: str, shape: tuple, config: dict) -> None:
    rule = LAYERS[name]
    batched = {k: (None, *v) for k, v in shape.items()} if rule.slots else (None, *shape)
    static = rule.infer(batched, rule.resolve(config))
    assert static == keras_out(keras, name, shape, config)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_rule_has_examples(name: str) -> None:
    assert len(LAYERS[name].examples) >= 3, "each rule needs at least three Keras cross-checks"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_defaults_match_keras(keras: Any, name: str) -> None:
    """Declared defaults equal the defaults of the Keras constructor."""
    import inspect

    from fusec.keras.layers import keras_class

    cls = keras_class(LAYERS[name])
    signature = inspect.signature(cls.__init__)
    for param in LAYERS[name].params:
        if param.required or param.name not in signature.parameters:
            continue
        keras_default = signature.parameters[param.name].default
        if keras_default is inspect.Parameter.empty:
            continue
        assert param.default == keras_default, f"{name}.{param.name}"


# --- what fusec refuses, replayed in Keras ---------------------------------------------
#
# Each static refusal below is checked twice: fusec's rule raises, and Keras, given the
# same layer, fails when it builds, traces or calls it (or, for a softmax over the batch
# axis, gives each example an answer that depends on the others in its batch).


def _keras_run(keras: Any, name: str, shape: Any, config: dict, dtype: str = "float32", train: bool = False) -> Any:
    """Build ``name`` on an input, trace its serving function and call it; return the symbolic and real outputs."""
    import numpy as np
    import tensorflow as tf

    keras.backend.clear_session()
    rule = LAYERS[name]
    if rule.slots:
        ins = {s: keras.Input(shape=sh, dtype=dtype) for s, sh in shape.items()}
        layer = keras_layer(name, config, None)
        out = layer([ins[s] for s in rule.slots if s in ins]) if rule.call_style == "list" else layer(**ins)
        inputs = list(ins.values())
    else:
        inputs = [keras.Input(shape=shape, dtype=dtype)]
        out = keras_layer(name, config, None)(inputs[0])
    out = out[0] if isinstance(out, (list, tuple)) else out
    model = keras.Model(inputs, out)
    feed = [np.ones((2, *[d or 3 for d in t.shape[1:]]), dtype=dtype) for t in inputs]
    serve = tf.function(
        lambda *a: model(list(a), training=False), input_signature=[tf.TensorSpec(t.shape, t.dtype) for t in inputs]
    )
    serve.get_concrete_function()
    real = model(feed, training=train)
    return out, real


REFUSED_CONFIGS = [
    ("Softmax", (3, 4), {"axis": 3}),
    ("Softmax", (3, 4), {"axis": -4}),
    ("LayerNormalization", (3, 4), {"axis": 0}),
    ("LayerNormalization", (3, 4), {"axis": 3}),
    ("BatchNormalization", (3, 4), {"axis": -3}),
    ("Normalization", (3, 4), {"axis": 0, "mean": 0.0, "variance": 1.0}),
    ("Normalization", (3,), {"mean": [1.0, 2.0, 3.0], "variance": 1.0}),
    ("Reshape", (12,), {"target_shape": [-1, 0]}),
    ("Reshape", (12,), {"target_shape": [0, 4]}),
    ("Reshape", (12,), {"target_shape": [-1, -1]}),
    ("Reshape", (12,), {"target_shape": [5, -1]}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "shape", "config"), REFUSED_CONFIGS, ids=lambda v: str(v))
def test_refused_configs_fail_in_keras(keras: Any, name: str, shape: tuple, config: dict) -> None:
    rule = LAYERS[name]
    with pytest.raises(RuleError):
        rule.infer((None, *shape), rule.resolve(config))
    with pytest.raises(Exception):  # noqa: B017 - Keras raises ValueError, IndexError, tf errors...
        _keras_run(keras, name, shape, config)


@pytest.mark.slow
def test_softmax_over_the_batch_axis_mixes_examples(keras: Any) -> None:
    """Keras builds a softmax over axis 0, and each example's answer then depends on the others: refused."""
    import numpy as np

    rule = LAYERS["Softmax"]
    with pytest.raises(RuleError, match="batch axis"):
        rule.infer((None, 3, 4), rule.resolve({"axis": 0}))
    layer = keras_layer("Softmax", {"axis": 0}, None)
    a = np.zeros((2, 3, 4), "float32")
    b = a.copy()
    b[1] += 5.0  # only the second example changes
    assert not np.allclose(np.asarray(layer(a))[0], np.asarray(layer(b))[0])


# Layers that take floats only: Keras builds each on these inputs, then fails to call or train it.
REFUSED_DTYPES = [
    ("Conv2D", "uint8", {}, False),
    ("Conv1D", "int32", {}, False),
    ("Softmax", "int32", {}, False),
    ("Attention", "int64", {}, False),
    ("AveragePooling2D", "int32", {}, False),
    ("Activation", "int32", {"activation": "sigmoid"}, False),
    ("ReLU", "bool", {}, False),
    ("Dropout", "int32", {}, True),
    ("SpatialDropout1D", "uint8", {}, True),
    ("SimpleRNN", "int64", {"dropout": 0.2}, True),
    ("UpSampling2D", "bool", {"interpolation": "bilinear"}, False),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "dtype", "extra", "train"), REFUSED_DTYPES, ids=lambda v: str(v))
def test_float_only_layers_fail_on_other_types(keras: Any, name: str, dtype: str, extra: dict, train: bool) -> None:
    rule = LAYERS[name]
    assert rule.dtypes == "float"
    shape, config = rule.examples[0]
    with pytest.raises(Exception):  # noqa: B017
        _keras_run(keras, name, shape, {**config, **extra}, dtype, train)


NON_FLOAT = ("int32", "int64", "uint8", "bool")
TYPED_CASES = [
    pytest.param(name, i, dtype, id=f"{name}-{i}-{dtype}")
    for name, rule in sorted(LAYERS.items())
    if rule.dtypes != "float"
    for i in range(len(rule.examples))
    for dtype in NON_FLOAT
    if not (rule.dtypes == "ids" and dtype == "bool")
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "index", "dtype"), TYPED_CASES)
def test_layers_that_take_integers_run_on_them(keras: Any, name: str, index: int, dtype: str) -> None:
    """Every example of a ``number``, ``keep`` or ``ids`` layer serves and trains on integer and bool inputs,
    and gives the element type fusec says, both as declared in the model and at run time."""
    rule = LAYERS[name]
    shape, config = rule.examples[index]
    want = dtype if rule.dtypes == "keep" else "float32"
    for train in (False, True):
        declared, real = _keras_run(keras, name, shape, config, dtype, train)
        assert (str(declared.dtype), real.dtype.name) == (want, want)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_takes_every_float(keras: Any, name: str, dtype: str) -> None:
    """Keras casts any floating-point input to float32 in every layer (Embedding aside: ids)."""
    rule = LAYERS[name]
    shape, config = rule.examples[0]
    if rule.dtypes == "ids":
        return
    declared, real = _keras_run(keras, name, shape, config, dtype)
    assert (str(declared.dtype), real.dtype.name) == ("float32", "float32")
