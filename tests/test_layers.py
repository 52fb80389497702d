"""Every layer rule against Keras itself: output shape and parameter counts.

The examples live beside each rule (``LayerRule.examples``); this test replays
them through Keras, so a rule that drifts from Keras fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from fusec.build import keras_layer
from fusec.layers import LAYERS
from fusec.rules import Out

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

    cls = getattr(keras.layers, name)
    signature = inspect.signature(cls.__init__)
    for param in LAYERS[name].params:
        if param.required or param.name not in signature.parameters:
            continue
        keras_default = signature.parameters[param.name].default
        if keras_default is inspect.Parameter.empty:
            continue
        assert param.default == keras_default, f"{name}.{param.name}"
