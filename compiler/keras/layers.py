"""Keras objects from vocabulary rules: the one factory for layers, merges, losses and metrics.

Each rule (``fusec.vocab.rule.Rule``) names its Keras class and where it
lives (``keras``, ``keras_home``), how each config value converts
(``Param.convert``) and which keyword receives the input ids
(``keras_sources``); this module turns those facts into objects. A new layer
or merge therefore needs no code here: one entry in the vocabulary, plus a
class in ``fusion.py`` when Keras has none.

Keras is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..vocab.initializers import form_args
from ..vocab.layers import LAYERS
from ..vocab.losses import objective_args, objective_name, objective_table
from ..vocab.merges import MERGES, MergeRule
from ..vocab.rule import Rule


def _named(module: str, kind: str) -> Callable[[Any], Any]:
    """A converter of a named value (``vocab/initializers.py``): a name passes through, an object is built."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        import keras

        cls, args = form_args(kind, value)
        return getattr(getattr(keras, module), cls)(**args)

    return convert


def _regularizer(value: Any) -> Any:
    if value is None:
        return None
    if "name" in value:
        return _named("regularizers", "regularizer")(value)
    import keras

    return keras.regularizers.L1L2(l1=float(value.get("l1", 0.0)), l2=float(value.get("l2", 0.0)))


def _rnn_layer(value: Any) -> Any:
    return keras_layer(value["layer"], value.get("config", {}), None)


#: ``Param.convert`` -> how a JSON value becomes a Keras argument.
CONVERTERS: Mapping[str, Callable[[Any], Any]] = {
    "": lambda v: v,
    "regularizer": _regularizer,
    "initializer": _named("initializers", "initializer"),
    "constraint": _named("constraints", "constraint"),
    "rnn_layer": _rnn_layer,
}


def keras_class(rule: Rule) -> Any:
    """The Keras class a rule names: ``rule.keras`` in ``rule.keras_home``."""
    if rule.keras_home == "fusec.keras.fusion":
        from . import fusion  # imports Keras: only reached when building

        return getattr(fusion, rule.keras)
    if rule.keras_home == "fusec.keras.text":
        from . import text  # imports Keras: only reached when building

        return getattr(text, rule.keras)
    import keras

    return getattr(getattr(keras, rule.keras_home.removeprefix("keras.")), rule.keras)


def rule_kwargs(rule: Rule, config: Mapping[str, Any]) -> dict[str, Any]:
    """Keras keyword arguments from a validated config: each value through its parameter's converter.

    Only keys the rule declares get through (the schema has already refused
    the rest).
    """
    return {key: CONVERTERS[rule.param_index[key].convert](value) for key, value in config.items()}


def keras_object(rule: Rule, config: Mapping[str, Any], name: str | None = None, sources: Sequence[str] = ()) -> Any:
    """A new Keras object (layer, loss or metric) for one rule and its validated config.

    Args:
        rule: a vocabulary rule.
        config: the config (or a loss's arguments), already validated.
        name: the Keras name (a node id), or None to let Keras choose.
        sources: the input ids in order, passed as ``rule.keras_sources`` when the rule names one.

    Returns:
        An instance of ``keras_class(rule)``.
    """
    kwargs = rule_kwargs(rule, config)
    if rule.keras_sources:
        kwargs[rule.keras_sources] = list(sources)
    if name is not None:
        kwargs["name"] = name
    return keras_class(rule)(**kwargs)


def keras_layer(layer: str, config: Mapping[str, Any], name: str | None) -> Any:
    """Instantiate the Keras layer for a spec ``layer`` node.

    Args:
        layer: a key of ``fusec.vocab.layers.LAYERS`` (the closed vocabulary).
        config: the node's config, already validated.
        name: the Keras layer name (the node id), or None for inner layers.

    Returns:
        A new, unbuilt ``keras.layers.Layer``.
    """
    return keras_object(LAYERS[layer], config, name)


def keras_merge(mode: str, config: Mapping[str, Any], name: str, sources: Sequence[str] = ()) -> Any:
    """Instantiate the Keras layer for a spec ``merge`` node.

    Args:
        mode: a key of ``fusec.vocab.merges.MERGES``.
        config: the node's config, already validated.
        name: the Keras layer name (the node id).
        sources: the input ids, in order (``weighted`` records them so its
            learned weights can be reported per input).

    Returns:
        A new Keras layer: a ``keras.layers`` merge, or a ``fusec.keras.fusion`` one.
    """
    return keras_object(MERGES[mode], config, name, sources)


def merge_args(rule: MergeRule, bound: Any) -> list[Any]:
    """Positional call arguments of a merge layer from its bound inputs (``static.binding.merge_inputs``).

    The list of inputs, or one argument per slot in slot order: a ``list``
    slot's list, a ``one`` slot's tensor.
    """
    if rule.slots is None:
        return [bound]
    return [bound[s] if kind == "list" else bound[s][0] for s, kind in rule.slots.items()]


def keras_objective(kind: str, value: str | Mapping[str, Any]) -> Any:
    """What ``model.compile`` receives for one validated loss or metric value.

    A name, or an object with nothing but a name, passes through as the name:
    Keras resolves it as it always has (``"accuracy"`` becomes the accuracy
    that fits the loss). An object with arguments becomes an instance of the
    rule's Keras class with those keyword arguments.

    Raises:
        ValueError: ``kind`` is neither ``loss`` nor ``metric``.
    """
    args = objective_args(value)
    if not args:
        return objective_name(value)
    return keras_object(objective_table(kind)[objective_name(value)], args)
