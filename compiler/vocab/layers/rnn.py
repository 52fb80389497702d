"""Recurrent layers: SimpleRNN, LSTM, GRU and Bidirectional."""

from __future__ import annotations

from typing import Any

from ...errors import RuleError
from ..rule import (
    Infer,
    LayerRule,
    Out,
    Param,
    Shape,
    config_schema,
    need_known,
    need_rank,
    p_activation,
    p_bool,
    p_constraint,
    p_enum,
    p_float,
    p_initializer,
    p_int,
    p_regularizer,
)


def _recurrent(what: str, gates: int) -> Infer:
    """Infer for a recurrent layer whose kernels stack ``gates`` blocks of ``units`` columns."""

    def infer(shape: Shape, c: Any) -> Out:
        need_rank(shape, 3, what)
        n_in = need_known(shape[2], f"{what}'s input features (last axis)", shape)
        units = c["units"]
        weights = gates * units * (n_in + units)
        bias = gates * units if c["use_bias"] else 0
        if what == "GRU" and c["reset_after"]:
            bias *= 2  # separate input and recurrent biases
        out = (shape[0], shape[1], units) if c["return_sequences"] else (shape[0], units)
        states = ((shape[0], units),) * (2 if what == "LSTM" else 1) if c.get("return_state") else ()
        return Out(out, weights + bias, extra=states)

    return infer


def _common() -> tuple[Param, ...]:
    """Keys shared by SimpleRNN, LSTM and GRU, before the layer-specific ones."""
    return (
        p_int("units", "Size of the hidden state (and of each output step)."),
        Param("activation", p_activation().schema, "Activation of the candidate state, by name.", "tanh"),
    )


def _gate_activation() -> Param:
    return Param("recurrent_activation", p_activation().schema, "Activation of the gates, by name.", "sigmoid")


_WEIGHTS = (
    p_bool("use_bias", "Whether the layer adds bias vectors.", True),
    p_initializer("kernel_initializer", "glorot_uniform"),
    p_initializer("recurrent_initializer", "orthogonal"),
    p_initializer("bias_initializer", "zeros"),
    p_regularizer("kernel_regularizer"),
    p_regularizer("recurrent_regularizer"),
    p_regularizer("bias_regularizer"),
    p_regularizer("activity_regularizer"),
    p_constraint("kernel_constraint"),
    p_constraint("recurrent_constraint"),
    p_constraint("bias_constraint"),
)

_SEQUENCE = (
    p_float("dropout", "Fraction of the inputs to drop while training, in [0, 1).", 0.0, 0, exclusive_max=1),
    p_float(
        "recurrent_dropout",
        "Fraction of the recurrent state to drop while training, in [0, 1).",
        0.0,
        0,
        exclusive_max=1,
    ),
    p_int("seed", "Seed of the dropout masks.", None, minimum=0, maximum=(1 << 31) - 1),
    p_bool("return_sequences", "Return the output of every step, not only the last one.", False),
    p_bool(
        "return_state",
        "Also return the final states (LSTM: h and c; GRU, SimpleRNN: h), addressed as `id.1`, `id.2`.",
        False,
    ),
    p_bool("go_backwards", "Process the sequence in reverse (and return the reversed outputs).", False),
)

_SUMMARY = ("units", "return_sequences")

SIMPLE_RNN = LayerRule(
    "SimpleRNN",
    "Fully connected recurrent layer over (batch, steps, features).",
    (*_common(), *_WEIGHTS, *_SEQUENCE),
    _recurrent("SimpleRNN", 1),
    (
        ((5, 3), {"units": 4}),
        ((None, 2), {"units": 3, "return_sequences": True, "use_bias": False}),
        ((7, 6), {"units": 1, "activation": "relu", "go_backwards": True, "dropout": 0.2}),
    ),
    _SUMMARY,
)

LSTM = LayerRule(
    "LSTM",
    "Long short-term memory layer over (batch, steps, features).",
    (
        *_common(),
        _gate_activation(),
        *_WEIGHTS,
        p_bool("unit_forget_bias", "Add 1 to the forget gate bias at initialisation.", True),
        *_SEQUENCE,
    ),
    _recurrent("LSTM", 4),
    (
        ((5, 3), {"units": 4}),
        ((None, 8), {"units": 16, "return_sequences": True}),
        ((6, 3), {"units": 5, "return_state": True}),
        ((6, 2), {"units": 3, "use_bias": False, "unit_forget_bias": False, "recurrent_dropout": 0.1}),
    ),
    _SUMMARY,
)

GRU = LayerRule(
    "GRU",
    "Gated recurrent unit layer over (batch, steps, features).",
    (
        *_common(),
        _gate_activation(),
        *_WEIGHTS,
        p_bool("reset_after", "Apply the reset gate after the recurrent matmul (two bias vectors).", True),
        *_SEQUENCE,
    ),
    _recurrent("GRU", 3),
    (
        ((5, 3), {"units": 4}),
        ((None, 8), {"units": 6, "return_sequences": True, "reset_after": False}),
        ((6, 2), {"units": 3, "use_bias": False}),
        (
            (4, 5),
            {"units": 2, "reset_after": False, "go_backwards": True, "recurrent_activation": "hard_sigmoid"},
        ),
    ),
    _SUMMARY,
)

_INNER = {rule.name: rule for rule in (SIMPLE_RNN, LSTM, GRU)}


def _inner_config_schema(rule: LayerRule) -> dict[str, Any]:
    """The RNN's config schema, with go_backwards pinned to false (Keras refuses it when wrapped)."""
    schema = config_schema(rule)
    schema["properties"] = {
        **schema["properties"],
        "go_backwards": {
            "const": False,
            "title": "go_backwards",
            "description": "Must be false inside Bidirectional, which runs the backward pass itself.",
        },
    }
    return schema


def _inner_schema() -> dict[str, Any]:
    """Schema of Bidirectional's ``layer``: an RNN name and its config, validated strictly."""
    names = list(_INNER)
    return {
        "type": "object",
        "properties": {
            "layer": {"enum": names, "title": "layer", "description": "The recurrent layer to wrap."},
            "config": {
                "type": "object",
                "title": "config",
                "description": "Config of the wrapped layer (as for the layer on its own).",
            },
        },
        "required": ["layer"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {
                    "properties": {"layer": {"const": name, "title": "layer", "description": f"Wraps a {name}."}},
                    "required": ["layer"],
                },
                "then": {
                    "properties": {"config": _inner_config_schema(rule)},
                    "required": ["config"] if any(p.required for p in rule.params) else [],
                },
            }
            for name, rule in _INNER.items()
        ],
    }


def _bidirectional(shape: Shape, c: Any) -> Out:
    spec = c["layer"]
    name = spec.get("layer")
    if name not in _INNER:
        raise RuleError(f"Bidirectional wraps one of {', '.join(_INNER)}. Received: {name!r}", "layer")
    rule = _INNER[name]
    config = rule.resolve(spec.get("config", {}))
    missing = [p.name for p in rule.params if p.name not in config]
    if missing:
        raise RuleError(f"Bidirectional's inner {name} needs {', '.join(missing)} in its config", "layer")
    if config["go_backwards"]:
        raise RuleError(
            f"Bidirectional needs its inner {name} to run forwards. Received: go_backwards=true",
            "layer",
            "drop go_backwards: Bidirectional already runs a backward copy",
        )
    if config.get("return_state"):
        raise RuleError(
            f"Bidirectional's inner {name} cannot return its states in fusec",
            "layer",
            "drop return_state, or use two RNN layers (one with go_backwards) and merge them",
        )
    try:
        inner = rule.infer(shape, config)
    except RuleError as err:
        # a config fault points at the wrapped layer; a shape fault at the input
        raise RuleError(f"Bidirectional's inner {err.message}", err.key and "layer", err.hint) from err
    out = inner.shape
    if c["merge_mode"] == "concat" and out[-1] is not None:
        out = (*out[:-1], 2 * out[-1])
    return Out(out, 2 * inner.trainable, 2 * inner.non_trainable)


BIDIRECTIONAL = LayerRule(
    "Bidirectional",
    "Runs a recurrent layer forwards and backwards and merges the two outputs.",
    (
        Param(
            "layer",
            _inner_schema(),
            'The wrapped layer: {"layer": "LSTM" | "GRU" | "SimpleRNN", "config": {...}}.',
            convert="rnn_layer",
        ),
        p_enum(
            "merge_mode",
            "How the forward and backward outputs combine (concat doubles the width).",
            ("concat", "sum", "mul", "ave"),
            "concat",
        ),
    ),
    _bidirectional,
    (
        ((5, 3), {"layer": {"layer": "LSTM", "config": {"units": 4}}}),
        (
            (None, 8),
            {
                "layer": {"layer": "GRU", "config": {"units": 6, "return_sequences": True}},
                "merge_mode": "sum",
            },
        ),
        (
            (6, 2),
            {"layer": {"layer": "SimpleRNN", "config": {"units": 3, "use_bias": False}}, "merge_mode": "ave"},
        ),
        (
            (None, 4),
            {
                "layer": {
                    "layer": "GRU",
                    "config": {"units": 2, "reset_after": False, "return_sequences": True},
                },
                "merge_mode": "concat",
            },
        ),
        (
            (7, 5),
            {"layer": {"layer": "LSTM", "config": {"units": 3, "dropout": 0.1}}, "merge_mode": "mul"},
        ),
    ),
    ("layer", "merge_mode"),
)

LAYERS = (SIMPLE_RNN, LSTM, GRU, BIDIRECTIONAL)
