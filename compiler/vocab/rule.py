"""The vocabulary's building blocks: config parameters, layer rules, shape math.

A layer rule says everything fusec knows about one Keras layer type: which
config keys it takes (and their JSON Schema, from which ``fusec-1.schema.json`` is
generated), how its output shape and parameter count follow from its input
shape (pure Python, so ``check`` never imports TensorFlow), and example
configs that the test suite replays through Keras itself so the static rule
and Keras can never drift apart.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from ..errors import RuleError
from .initializers import INITIALIZER_FORMS, constraint_schema, initializer_schema, regularizer_schema

Dim = int | None
Shape = tuple[Dim, ...]
Cfg = Mapping[str, Any]

MAX_DIM = 1 << 24  # a per-dimension sanity cap; the parameter budget does the rest
#: Values per example in any one tensor (inputs, node outputs): int32's range. A bigger tensor
#: cannot be allocated for one example on any machine fusec targets, and its sizes overflow
#: int64 once multiplied by a batch; shapes.py refuses it before TensorFlow ever sees it.
MAX_ELEMENTS = (1 << 31) - 1


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    """One config key of a layer.

    Attributes:
        name: the Keras keyword argument.
        schema: JSON Schema of the value.
        doc: one line for editors' hover help and docs/spec.md.
        default: the value Keras uses when the key is absent (REQUIRED if none).
        convert: how build.py turns the JSON value into a Keras argument
            ("" passes it through; "regularizer", "rnn_layer"...).
    """

    name: str
    schema: Mapping[str, Any]
    doc: str
    default: Any = REQUIRED
    convert: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Out:
    """What one call of a layer produces."""

    shape: Shape
    trainable: int = 0
    non_trainable: int = 0
    extra: tuple[Shape, ...] = ()  # further outputs (an RNN's states), addressed as `id.1`, `id.2`...

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


Infer = Callable[[Any, Cfg], Out]  # a Shape, or {slot: Shape} for layers with slots

#: What element types a layer takes, and what it gives. Keras casts floating-point inputs
#: to float32 in every layer; integer and bool inputs are another story: most layers build,
#: then fail when called (a uint8 image into Conv2D), or give at run time another type than
#: the one the model declares (an int32 Activation declared float32), so serving breaks.
#: tests/test_layers.py replays every non-``float`` layer with every integer type in Keras.
DTYPE_RULES: Mapping[str, str] = {
    "float": "floating-point values only (float16, bfloat16, float32, float64); gives float32",
    "number": "any numbers or booleans, computed in float32; gives float32",
    "keep": "any values, moved but not computed on; gives its input's integer or bool type, else float32",
    "ids": "integer ids (int32, int64, uint8); gives float32",
}
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
INTEGER_DTYPES = frozenset({"int32", "int64", "uint8"})


#: Where a rule's Keras class lives (``Rule.keras_home``): Keras's own modules, or fusec's
#: layers (``fusec.keras.fusion``) for what Keras has no layer for. ``fusec.keras.layers``
#: resolves the name; the vocabulary never imports Keras.
KERAS_HOMES = ("keras.layers", "keras.losses", "keras.metrics", "fusec.keras.fusion", "fusec.keras.text")


@dataclass(frozen=True)
class MergeLook:
    """How a diagram draws one merge mode (``render/style.py`` makes its ``Look`` from it).

    Attributes:
        shape: a Graphviz node shape, distinct per merge.
        fill: background colour.
        border: outline colour (also the colour of a named input's edges).
        glyph: the symbol shown before the mode's name.
        style: Graphviz style list (``filled`` always included).
        margin: Graphviz node margin, for shapes that need room ("" keeps Graphviz's).
    """

    shape: str
    fill: str
    border: str
    glyph: str
    style: str = "filled"
    margin: str = ""


@dataclass(frozen=True)
class Rule:
    """What every entry of the vocabulary (layer, merge, loss, metric) states, as data.

    Subclasses add what only their kind has (a layer's slots, a merge's
    arity); everything here is read the same way for all of them.

    Attributes:
        name: the spec's name for it (``layer``, ``merge`` or loss/metric name).
        doc: one line for the schema, editors' hover help and docs.
        params: the config keys (or arguments) it accepts.
        infer: the shape rule: output shape and parameter counts (``Out``)
            from the input shape(s) and the resolved config; raises
            RuleError. None where there is no tensor to shape (losses).
        examples: (input shape(s) without batch, config) pairs that the
            tests replay through Keras and the property tests draw from.
        summary_keys: the config keys worth showing in a summary or diagram.
        keras: the Keras class that implements it ("" : the same as ``name``).
        keras_home: the module that class lives in (one of ``KERAS_HOMES``).
        keras_sources: the keyword argument that receives the input ids, in
            order, when the Keras object is made ("" : none); the ``weighted``
            merge records them to report its learned weights per input.
        dtypes: which element types it takes (see ``DTYPE_RULES``).
        ordered_inputs: whether the result depends on the order of its
            inputs (diagrams number the edges).
        look: how a diagram draws it (merges); None for the generic look.
    """

    name: str
    doc: str
    params: tuple[Param, ...]
    infer: Infer | None = None
    examples: tuple[tuple[Any, dict[str, Any]], ...] = ()
    summary_keys: tuple[str, ...] = ()
    _: KW_ONLY
    keras: str = ""
    keras_home: str = "keras.layers"
    keras_sources: str = ""
    dtypes: str = "float"
    ordered_inputs: bool = False
    look: MergeLook | None = None
    param_index: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})
        if not self.keras:
            object.__setattr__(self, "keras", self.name)
        if self.dtypes not in DTYPE_RULES:
            raise ValueError(f"{self.name}: dtypes is one of {', '.join(DTYPE_RULES)}")
        if self.keras_home not in KERAS_HOMES:
            raise ValueError(f"{self.name}: keras_home is one of {', '.join(KERAS_HOMES)}")

    def resolve(self, config: Cfg) -> dict[str, Any]:
        """The config with every default filled in."""
        out = {p.name: p.default for p in self.params if not p.required}
        out.update(config)
        return out

    def schema_title(self) -> str:
        """The config schema's title (``Dense config``; an objective's ``huber loss``)."""
        return f"{self.name} config"

    def fixed_properties(self) -> dict[str, Any]:
        """Config-schema properties that come before the params (an objective's ``name``)."""
        return {}


@dataclass(frozen=True)
class LayerRule(Rule):
    """Everything fusec knows statically about one layer type (``name`` is its Keras class).

    Attributes:
        infer: as ``Rule.infer``, required; with ``slots`` it receives a
            dict of shapes by slot, and examples give a dict of shapes too.
        slots: named inputs, for layers called on several tensors
            (``query``, ``value``, ``key``).
        required_slots: the slots that must be given; a single id fills them
            all (self-attention).
        call_style: how build.py passes the slots: ``kwargs`` or ``list``
            (in ``slots`` order).
    """

    infer: Infer  # required for layers (a dataclass field keeps its place: 4th)
    slots: tuple[str, ...] = ()
    required_slots: tuple[str, ...] = ()
    call_style: str = "kwargs"


# --- parameter constructors -------------------------------------------------

ACTIVATIONS = (
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish",
    "mish", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid", "tanh", "hard_tanh",
    "tanh_shrink", "soft_shrink", "hard_shrink", "softmax", "log_softmax", "sparsemax", "softplus",
    "sparse_plus", "squareplus", "softsign", "exponential",
)  # fmt: skip

#: Initializers by plain name (each also takes arguments in its object form: ``vocab/initializers.py``).
INITIALIZERS = tuple(n for n in INITIALIZER_FORMS if n not in ("constant", "uniform"))


def p_int(name: str, doc: str, default: Any = REQUIRED, minimum: int = 1, maximum: int = MAX_DIM) -> Param:
    return Param(name, {"type": "integer", "minimum": minimum, "maximum": maximum}, doc, default)


def p_float(
    name: str,
    doc: str,
    default: Any = REQUIRED,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_max: float | None = None,
) -> Param:
    schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    if exclusive_max is not None:
        schema["exclusiveMaximum"] = exclusive_max
    return Param(name, schema, doc, default)


def p_bool(name: str, doc: str, default: bool) -> Param:
    return Param(name, {"type": "boolean"}, doc, default)


def p_enum(name: str, doc: str, choices: Sequence[str], default: Any = REQUIRED) -> Param:
    return Param(name, {"type": "string", "enum": list(choices)}, doc, default)


def p_activation(default: str | None = None, name: str = "activation") -> Param:
    return Param(
        name,
        {"type": "string", "enum": list(ACTIVATIONS)},
        "Activation applied to the output, by name.",
        default,
    )


#: Weights that are vectors (one value per unit or channel): Keras's orthogonal initializer needs a matrix.
VECTOR_WEIGHTS = ("bias", "beta", "gamma", "moving_mean", "moving_variance")


def p_initializer(name: str, default: str) -> Param:
    """An initializer by name, or ``{"name": ..., args}`` (a vector weight cannot be orthogonal)."""
    vector = name.removesuffix("_initializer") in VECTOR_WEIGHTS
    names = [i for i in INITIALIZER_FORMS if not (vector and i == "orthogonal")]
    return Param(
        name,
        initializer_schema(names),
        f"Initializer for the {name.removesuffix('_initializer').replace('_', ' ')} weights: a name, or "
        '{"name": ..., arguments} (training only).',
        default,
        "initializer",
    )


def p_regularizer(name: str) -> Param:
    what = name.removesuffix("_regularizer").replace("_", " ")
    doc = f'Weight penalty on the {what}: {{"l1": a, "l2": b}} or {{"name": "l2", "l2": b}} (training only).'
    return Param(name, regularizer_schema(), doc, None, "regularizer")


def p_constraint(name: str) -> Param:
    what = name.removesuffix("_constraint").replace("_", " ")
    doc = f'Constraint applied to the {what} after each update: a name or {{"name": "max_norm", ...}}.'
    return Param(name, constraint_schema(), doc, None, "constraint")


def p_ints(name: str, doc: str, n: int, default: Any = REQUIRED, minimum: int = 1) -> Param:
    """An int, or a list of ``n`` ints (kernel sizes, strides, dilations)."""
    one = {"type": "integer", "minimum": minimum, "maximum": MAX_DIM}
    schema = {"oneOf": [one, {"type": "array", "items": one, "minItems": n, "maxItems": n}]}
    return Param(name, schema, doc, default)


def dense_weights_params() -> tuple[Param, ...]:
    """Keys shared by layers with a kernel and a bias."""
    return (
        p_bool("use_bias", "Whether the layer adds a bias vector.", True),
        p_initializer("kernel_initializer", "glorot_uniform"),
        p_initializer("bias_initializer", "zeros"),
        p_regularizer("kernel_regularizer"),
        p_regularizer("bias_regularizer"),
        p_regularizer("activity_regularizer"),
        p_constraint("kernel_constraint"),
        p_constraint("bias_constraint"),
    )


# --- shape helpers ------------------------------------------------------------


def fmt_shape(shape: Sequence[Dim]) -> str:
    """``(None, 32)`` the way Keras prints shapes."""
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def need_rank(shape: Shape, rank: int | tuple[int, int], what: str) -> None:
    """Raise unless ``shape`` (batch included) has the given rank or range."""
    lo, hi = (rank, rank) if isinstance(rank, int) else rank
    if not lo <= len(shape) <= hi:
        want = f"rank {lo}" if lo == hi else f"rank {lo} to {hi}"
        raise RuleError(f"{what} needs inputs of {want} (batch included). Received: {fmt_shape(shape)}")


def need_axis(shape: Shape, axis: int, what: str, key: str = "axis") -> int:
    """The index of ``axis`` (negative counts from the end) in ``shape``, batch included.

    Raises when it is not an axis of the shape, or is the batch axis (0, or
    ``-rank``): Keras builds such a layer and then fails when it is called.
    """
    rank = len(shape)
    if not -rank <= axis < rank or axis % rank == 0:
        raise RuleError(
            f"{what}'s {key} {axis} is not a feature axis of {fmt_shape(shape)} (axis 0 is the batch axis)",
            key,
            f"use 1 to {rank - 1}, or -1 to -{rank - 1}" if rank > 1 else "",
        )
    return axis % rank


def need_known(dim: Dim, what: str, shape: Shape) -> int:
    if dim is None:
        raise RuleError(f"{what} must be known statically. Received: {fmt_shape(shape)}")
    return dim


def as_tuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    return (value,) * n if isinstance(value, int) else tuple(value)


def conv_length(n: Dim, kernel: int, stride: int, padding: str, dilation: int = 1) -> Dim:
    """Output length of a convolution or pooling window along one axis."""
    if n is None:
        return None
    span = (kernel - 1) * dilation + 1
    if padding in ("same", "causal"):
        return (n + stride - 1) // stride
    length = (n - span) // stride + 1
    return length


def deconv_length(n: Dim, kernel: int, stride: int, padding: str, dilation: int = 1) -> Dim:
    """Output length of a transposed convolution along one axis."""
    if n is None:
        return None
    span = kernel + (kernel - 1) * (dilation - 1)
    if padding == "same":
        return n * stride
    return n * stride + max(span - stride, 0)


def prod(dims: Sequence[int]) -> int:
    return math.prod(dims)


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema``, also accepting JSON ``null`` (for a key whose Keras default is None)."""
    out = dict(schema)
    if "oneOf" in out:
        out["oneOf"] = [*out["oneOf"], {"type": "null"}]
        return out
    types = out.get("type")
    if types is not None:
        types = list(types) if isinstance(types, list) else [types]
        out["type"] = types if "null" in types else [*types, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def describe_default(p: Param) -> str:
    """A parameter's one-line doc with its default, written as JSON (``Default: true.``).

    A doc that already explains its default in words (``Default: key_dim.``)
    keeps them, with the JSON value to write first (``Default: null (key_dim).``).
    """
    if p.required:
        return p.doc
    value = json.dumps(p.default)
    said = re.search(r"Default: (.+?)\.$", p.doc)
    if said:
        return p.doc if said.group(1) == value else f"{p.doc[: said.start(1)]}{value} ({said.group(1)})."
    return f"{p.doc} Default: {value}."


def config_schema(rule: Rule) -> dict[str, Any]:
    """JSON Schema of a rule's ``config`` object (closed: unknown keys fail): the one builder.

    Layers, merges and the object form of losses and metrics all take it.
    Each key's description ends with its default as JSON; a key whose Keras
    default is None also accepts ``null``, so every documented default is a
    value the checker takes.
    """
    props = rule.fixed_properties()
    for p in rule.params:
        prop = nullable(p.schema) if p.default is None else dict(p.schema)
        prop.setdefault("title", p.name)
        prop.setdefault("description", describe_default(p))
        props[p.name] = prop
    schema: dict[str, Any] = {
        "type": "object",
        "title": rule.schema_title(),
        "description": rule.doc,
        "properties": props,
        "additionalProperties": False,
    }
    required = [p.name for p in rule.params if p.required]
    if required:
        schema["required"] = required
    return schema
