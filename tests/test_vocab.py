"""Every name a spec may use is one Keras knows, and nothing in the tables runs code."""

from __future__ import annotations

from typing import Any

import pytest

from fusec.spec.schema import LOSSES, METRICS, OPTIMIZERS
from fusec.vocab.layers import LAYERS, REFUSED
from fusec.vocab.rule import ACTIVATIONS, INITIALIZERS


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation(keras: Any, name: str) -> None:
    assert callable(keras.activations.get(name))


@pytest.mark.parametrize("name", INITIALIZERS)
def test_initializer(keras: Any, name: str) -> None:
    init = keras.initializers.get(name)
    assert tuple(init((3, 3)).shape) == (3, 3)


@pytest.mark.parametrize("name", LOSSES)
def test_loss(keras: Any, name: str) -> None:
    assert keras.losses.get(name) is not None


@pytest.mark.parametrize("name", METRICS)
def test_metric(keras: Any, name: str) -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    sparse = name.startswith("sparse")
    model.compile(loss="sparse_categorical_crossentropy" if sparse else "categorical_crossentropy", metrics=[name])
    labels = keras.ops.ones((2,)) if sparse else keras.ops.ones((2, 2)) / 2
    model.evaluate(keras.ops.ones((2, 2)), labels, verbose=0)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer(keras: Any, name: str) -> None:
    opt = keras.optimizers.get({"class_name": name, "config": {"learning_rate": 0.01}})
    assert float(opt.learning_rate.numpy()) == pytest.approx(0.01)


def test_layer_names_are_keras_classes(keras: Any) -> None:
    from fusec.keras.layers import keras_class

    for name in LAYERS:
        assert isinstance(keras_class(LAYERS[name]), type), name


def test_refused_layers_are_not_in_the_vocabulary() -> None:
    assert not set(REFUSED) & set(LAYERS)


def _initializer_params() -> list[Any]:
    out = []
    for name, rule in sorted(LAYERS.items()):
        for param in rule.params:
            if param.name.endswith("_initializer"):
                for init in param.schema["oneOf"][0]["enum"]:
                    out.append(pytest.param(name, param.name, init, id=f"{name}-{param.name}-{init}"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("layer", "key", "init"), _initializer_params())
def test_every_initializer_builds_every_weight(keras: Any, layer: str, key: str, init: str) -> None:
    """Each initializer a layer's schema offers builds that weight (orthogonal needs a matrix: not for biases)."""
    from fusec.keras.layers import keras_layer

    rule = LAYERS[layer]
    shape, config = rule.examples[0]
    built = keras_layer(layer, {**config, key: init}, None)
    if rule.slots:
        built(**{s: keras.Input(shape=v) for s, v in shape.items()})  # MultiHeadAttention
    else:
        built(keras.Input(shape=shape, dtype="int32" if rule.dtypes == "ids" else "float32"))
    assert built.built
