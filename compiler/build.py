"""Build stage: a checked spec becomes a compiled Keras functional model.

This is the only stage (with save) that imports Keras and TensorFlow, and it
imports them inside functions so ``check``, ``summary`` and ``render`` never
pay for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .layers import LAYERS


def _regularizer(value: Any) -> Any:
    if value is None:
        return None
    import keras

    return keras.regularizers.L1L2(l1=float(value.get("l1", 0.0)), l2=float(value.get("l2", 0.0)))


def _rnn_layer(value: Any) -> Any:
    return keras_layer(value["layer"], value.get("config", {}), None)


_CONVERTERS = {"": lambda v: v, "regularizer": _regularizer, "rnn_layer": _rnn_layer}


def keras_kwargs(layer: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a spec config into Keras keyword arguments for ``layer``.

    Only keys the layer's rule declares get through (the schema has already
    refused the rest); each value goes through its parameter's converter.
    """
    rule = LAYERS[layer]
    out: dict[str, Any] = {}
    for key, value in config.items():
        param = rule.param_index[key]
        out[key] = _CONVERTERS[param.convert](value)
    return out


def keras_layer(layer: str, config: Mapping[str, Any], name: str | None) -> Any:
    """Instantiate the Keras layer for a spec ``layer`` node.

    Args:
        layer: a key of ``fusec.layers.LAYERS`` (the closed vocabulary).
        config: the node's config, already validated.
        name: the Keras layer name (the node id), or None for inner layers.

    Returns:
        A new, unbuilt ``keras.layers.Layer``.
    """
    import keras

    cls = getattr(keras.layers, LAYERS[layer].name)
    kwargs = keras_kwargs(layer, config)
    if name is not None:
        kwargs["name"] = name
    return cls(**kwargs)
