"""Losses and metrics as data: closed tables of Keras classes and their arguments.

An output's ``loss`` and each of its ``metrics`` is either a name
(``"sparse_categorical_crossentropy"``, resolved by Keras exactly as before)
or an object with a name and that class's arguments::

    {"name": "sparse_categorical_crossentropy", "from_logits": true}

Each entry here says everything fusec knows about one loss or metric: the
spec name, the Keras class it builds, a one-line doc and its keyword
arguments as :class:`~fusec.rules.Param` objects whose defaults are the
Keras constructor's (a test compares them with ``inspect.signature``). From
these tables ``schema.py`` generates the JSON Schema of a loss or metric
value, ``build.py`` instantiates the Keras objects, and
:func:`output_problems` finds the combinations of loss, output width and
final activation that make a model train wrong.

Nothing here imports Keras except :func:`keras_objective`, at build time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Problem
from .layers import LAYERS
from .rule import MAX_DIM, Param, describe_default, fmt_shape, nullable, p_bool, p_enum, p_float, p_int


@dataclass(frozen=True)
class Objective:
    """One loss or metric a spec may name.

    Attributes:
        name: the spec's name for it (snake_case, as Keras's string names).
        keras: the class in ``keras.losses`` or ``keras.metrics`` that the
            object form builds.
        doc: one line for the schema, editors' hover help and docs/spec.md.
        params: the keys the object form accepts besides ``name`` (Keras
            keyword arguments, data only; never ``name`` or ``dtype``).
    """

    name: str
    keras: str
    doc: str
    params: tuple[Param, ...] = ()
    param_index: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})


# --- parameters ---------------------------------------------------------------

#: The reductions Keras 3 accepts that still give one scalar to minimise
#: (``"none"`` and null return per-example losses, which ``fit`` cannot use as meant).
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight")
_INT32 = (1 << 31) - 1


def _reduction() -> Param:
    return p_enum(
        "reduction",
        "How per-example losses become one number: sum_over_batch_size (mean over the batch), sum, "
        "mean (over every element) or mean_with_sample_weight (divided by the total sample weight).",
        REDUCTIONS,
        "sum_over_batch_size",
    )


def _from_logits(what: str = "loss") -> Param:
    return p_bool(
        "from_logits",
        f"True when the output is raw logits (no softmax or sigmoid): the {what} applies it itself.",
        False,
    )


def _label_smoothing(default: float) -> Param:
    return p_float(
        "label_smoothing",
        "Moves the labels this far towards a uniform distribution (0: none).",
        default,
        minimum=0,
        maximum=1,
    )


def _axis() -> Param:
    return p_int("axis", "The axis holding the classes (or features).", -1, minimum=-8, maximum=8)


def _ignore_class() -> Param:
    return Param(
        "ignore_class",
        {"type": "integer", "minimum": -_INT32 - 1, "maximum": _INT32},
        "A label id that is skipped (padding, say); null keeps every label.",
        None,
    )


def _class_id() -> Param:
    return Param(
        "class_id",
        {"type": "integer", "minimum": 0, "maximum": MAX_DIM},
        "Measure one class only (its index along the last axis); null: all.",
        None,
    )


def _top_k() -> Param:
    return Param(
        "top_k",
        {"type": "integer", "minimum": 1, "maximum": MAX_DIM},
        "Count a prediction positive only when it is among the k highest scores; null: no cut.",
        None,
    )


def _thresholds_one_or_many() -> Param:
    prob = {"type": "number", "minimum": 0, "maximum": 1}
    return Param(
        "thresholds",
        {**prob, "type": ["number", "array"], "items": prob, "minItems": 1, "maxItems": 1000},
        "Decision threshold in [0, 1], or a list of them (one result each); null: 0.5.",
        None,
    )


def _alpha(default: float) -> Param:
    return p_float("alpha", "Weight of the positive class (focal loss's balancing factor).", default, 0, 1)


def _gamma(default: float) -> Param:
    return p_float("gamma", "Focusing exponent: how much easy examples are down-weighted (0: plain CE).", default, 0)


def _k() -> Param:
    return p_int("k", "How many of the highest-scoring classes count as a hit.", 5)


def _loss(name: str, keras: str, doc: str, *params: Param) -> Objective:
    return Objective(name, keras, doc, (*params, _reduction()))


_CE = (_from_logits(), _label_smoothing(0.0), _axis())

LOSS_RULES: dict[str, Objective] = {
    r.name: r
    for r in (
        _loss("mean_squared_error", "MeanSquaredError", "Mean of squared differences (regression)."),
        _loss("mse", "MeanSquaredError", "Alias of mean_squared_error."),
        _loss("mean_absolute_error", "MeanAbsoluteError", "Mean of absolute differences (regression)."),
        _loss("mae", "MeanAbsoluteError", "Alias of mean_absolute_error."),
        _loss(
            "mean_absolute_percentage_error",
            "MeanAbsolutePercentageError",
            "Mean absolute difference as a percentage of the label.",
        ),
        _loss(
            "mean_squared_logarithmic_error",
            "MeanSquaredLogarithmicError",
            "Mean squared difference of log(1 + x): relative errors.",
        ),
        _loss(
            "huber",
            "Huber",
            "Squared error near 0, absolute error beyond delta (robust regression).",
            p_float("delta", "Where the loss turns from quadratic to linear.", 1.0, minimum=0),
        ),
        _loss("log_cosh", "LogCosh", "log(cosh(error)): like Huber, smooth everywhere."),
        _loss(
            "binary_crossentropy",
            "BinaryCrossentropy",
            "Cross-entropy of independent yes/no labels (a sigmoid output per label).",
            *_CE,
        ),
        _loss(
            "binary_focal_crossentropy",
            "BinaryFocalCrossentropy",
            "Binary cross-entropy that down-weights easy examples (imbalanced labels).",
            p_bool(
                "apply_class_balancing",
                "Weight positives by alpha and negatives by 1 - alpha.",
                False,
            ),
            _alpha(0.25),
            _gamma(2.0),
            *_CE,
        ),
        _loss(
            "categorical_crossentropy",
            "CategoricalCrossentropy",
            "Cross-entropy of one-hot labels (a softmax output, one unit per class).",
            *_CE,
        ),
        _loss(
            "categorical_focal_crossentropy",
            "CategoricalFocalCrossentropy",
            "Categorical cross-entropy that down-weights easy examples (imbalanced classes).",
            _alpha(0.25),
            _gamma(2.0),
            *_CE,
        ),
        _loss(
            "sparse_categorical_crossentropy",
            "SparseCategoricalCrossentropy",
            "Cross-entropy of integer class ids (a softmax output, one unit per class).",
            _from_logits(),
            _ignore_class(),
            _axis(),
        ),
        _loss("kl_divergence", "KLDivergence", "Kullback-Leibler divergence of label and predicted distributions."),
        _loss("poisson", "Poisson", "Poisson negative log-likelihood (counts)."),
        _loss(
            "cosine_similarity",
            "CosineSimilarity",
            "Negative cosine similarity of label and prediction vectors.",
            _axis(),
        ),
        _loss("hinge", "Hinge", "Hinge loss of labels in {-1, 1} (or {0, 1})."),
        _loss("squared_hinge", "SquaredHinge", "Squared hinge loss of labels in {-1, 1} (or {0, 1})."),
        _loss("categorical_hinge", "CategoricalHinge", "Hinge loss of one-hot labels."),
    )
}

METRIC_RULES: dict[str, Objective] = {
    r.name: r
    for r in (
        Objective(
            "accuracy",
            "Accuracy",
            "How often the prediction is right; Keras picks the binary, categorical or sparse kind that fits the loss.",
        ),
        Objective(
            "binary_accuracy",
            "BinaryAccuracy",
            "How often a yes/no prediction is right.",
            (p_float("threshold", "Scores above it count as yes (0 for logits).", 0.5),),
        ),
        Objective("categorical_accuracy", "CategoricalAccuracy", "How often the top class matches a one-hot label."),
        Objective(
            "sparse_categorical_accuracy",
            "SparseCategoricalAccuracy",
            "How often the top class matches an integer label.",
        ),
        Objective(
            "top_k_categorical_accuracy",
            "TopKCategoricalAccuracy",
            "How often a one-hot label is among the k top classes.",
            (_k(),),
        ),
        Objective(
            "sparse_top_k_categorical_accuracy",
            "SparseTopKCategoricalAccuracy",
            "How often an integer label is among the k top classes.",
            (
                _k(),
                p_bool(
                    "from_sorted_ids",
                    "True when the output already holds class ids sorted by score, not scores.",
                    False,
                ),
            ),
        ),
        Objective(
            "binary_crossentropy",
            "BinaryCrossentropy",
            "Binary cross-entropy, reported.",
            (_from_logits("metric"), _label_smoothing(0)),
        ),
        Objective(
            "categorical_crossentropy",
            "CategoricalCrossentropy",
            "Categorical cross-entropy, reported.",
            (_from_logits("metric"), _label_smoothing(0), _axis()),
        ),
        Objective(
            "sparse_categorical_crossentropy",
            "SparseCategoricalCrossentropy",
            "Sparse categorical cross-entropy, reported.",
            (_from_logits("metric"), _ignore_class(), _axis()),
        ),
        Objective("mean_squared_error", "MeanSquaredError", "Mean squared error."),
        Objective("mse", "MeanSquaredError", "Alias of mean_squared_error."),
        Objective("mean_absolute_error", "MeanAbsoluteError", "Mean absolute error."),
        Objective("mae", "MeanAbsoluteError", "Alias of mean_absolute_error."),
        Objective("root_mean_squared_error", "RootMeanSquaredError", "Root of the mean squared error."),
        Objective(
            "mean_absolute_percentage_error",
            "MeanAbsolutePercentageError",
            "Mean absolute error as a percentage of the label.",
        ),
        Objective("cosine_similarity", "CosineSimilarity", "Cosine similarity of label and prediction.", (_axis(),)),
        Objective(
            "auc",
            "AUC",
            "Area under the ROC or precision-recall curve.",
            (
                p_int("num_thresholds", "How many thresholds discretise the curve.", 200, minimum=2, maximum=10_000),
                p_enum("curve", "ROC, or PR for the precision-recall curve.", ("ROC", "PR"), "ROC"),
                p_enum(
                    "summation_method",
                    "How the area is summed: interpolation, minoring (lower bound) or majoring (upper bound).",
                    ("interpolation", "minoring", "majoring"),
                    "interpolation",
                ),
                Param(
                    "thresholds",
                    {
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 1},
                        "minItems": 1,
                        "maxItems": 10_000,
                    },
                    "The thresholds to use, in [0, 1] (replaces num_thresholds); null: evenly spaced.",
                    None,
                ),
                p_bool("multi_label", "True: one curve per label, averaged (multi-label outputs).", False),
                Param(
                    "num_labels",
                    {"type": "integer", "minimum": 1, "maximum": 4096},
                    "The number of labels, with multi_label; null: taken from the first batch.",
                    None,
                ),
                Param(
                    "label_weights",
                    {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 1, "maxItems": 4096},
                    "Non-negative weight per label; null: equal weights.",
                    None,
                ),
                _from_logits("metric"),
            ),
        ),
        Objective(
            "precision",
            "Precision",
            "Fraction of positive predictions that are right.",
            (_thresholds_one_or_many(), _top_k(), _class_id()),
        ),
        Objective(
            "recall",
            "Recall",
            "Fraction of positive labels that are found.",
            (_thresholds_one_or_many(), _top_k(), _class_id()),
        ),
    )
}

KINDS: dict[str, dict[str, Objective]] = {"loss": LOSS_RULES, "metric": METRIC_RULES}
LOSSES: tuple[str, ...] = tuple(LOSS_RULES)
METRICS: tuple[str, ...] = tuple(METRIC_RULES)


def _table(kind: str) -> dict[str, Objective]:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"kind must be one of {sorted(KINDS)}. Received: {kind!r}") from None


# --- schema -------------------------------------------------------------------


def _branch(kind: str, rule: Objective) -> dict[str, Any]:
    """``if {name: N} then {N's closed keys}``: one branch of the object form."""
    props: dict[str, Any] = {"name": {"const": rule.name, "title": "name", "description": rule.doc}}
    for p in rule.params:
        prop = nullable(p.schema) if p.default is None else dict(p.schema)
        props[p.name] = {"title": p.name, "description": describe_default(p), **prop}
    return {
        "if": {"properties": {"name": {"const": rule.name}}, "required": ["name"]},
        "then": {
            "type": "object",
            "title": f"{rule.name} {kind}",
            "description": rule.doc,
            "properties": props,
            "additionalProperties": False,
        },
    }


def objective_schema(kind: str) -> dict[str, Any]:
    """JSON Schema of one loss value (``kind="loss"``) or one metric value (``"metric"``).

    A union discriminated by JSON type: a string is one of the names; an
    object has a ``name`` and only that loss's or metric's keys, selected with
    one ``if {name: N} then {...}`` branch per name (as layer configs are), so
    a wrong key is reported against the keys of the loss actually named.
    """
    table = _table(kind)
    names = list(table)
    listing = "; ".join(f"{r.name}: {r.doc}" for r in table.values())
    obj = {
        "properties": {
            "name": {
                "title": "name",
                "description": f"The {kind}, by name.",
                "type": "string",
                "enum": names,
            }
        },
        "required": ["name"],
        "allOf": [_branch(kind, r) for r in table.values()],
    }
    return {
        "title": kind,
        "description": f'A {kind} by name, or {{"name": NAME, ...its arguments}}. {listing}',
        "type": ["string", "object"],
        "allOf": [
            {"if": {"type": "string"}, "then": {"enum": names}},
            {"if": {"type": "object"}, "then": obj},
        ],
    }


# --- build and text -------------------------------------------------------------


def objective_name(value: str | Mapping[str, Any]) -> str:
    """The name of a loss or metric value, in either form."""
    return value if isinstance(value, str) else str(value.get("name", ""))


def objective_args(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a value gives (nothing for a bare name)."""
    return {} if isinstance(value, str) else {k: v for k, v in value.items() if k != "name"}


def keras_objective(kind: str, value: str | Mapping[str, Any]) -> Any:
    """What ``model.compile`` receives for one validated loss or metric value.

    A name, or an object with nothing but a name, passes through as the name:
    Keras resolves it as it always has (``"accuracy"`` becomes the accuracy
    that fits the loss). An object with arguments becomes an instance of the
    rule's Keras class with those keyword arguments.
    """
    args = objective_args(value)
    if not args:
        return objective_name(value)
    import keras

    rule = _table(kind)[objective_name(value)]
    module = keras.losses if kind == "loss" else keras.metrics
    return getattr(module, rule.keras)(**args)


def objective_text(value: Any) -> str:
    """A short text for summaries and diagrams: ``sparse_categorical_crossentropy(from_logits=true)``."""
    if not isinstance(value, Mapping):
        return str(value)
    args = ", ".join(f"{k}={json.dumps(v)}" for k, v in objective_args(value).items())
    return f"{objective_name(value)}({args})" if args else objective_name(value)


def objectives_markdown(kind: str) -> str:
    """The table of losses or metrics in docs/spec.md: name, Keras class, keys with defaults, doc.

    ``reduction``, which every loss takes, is left out of the keys column
    (docs/spec.md says so once).
    """
    table = _table(kind)
    lines = [f"| {kind} | Keras class | keys (default) | meaning |", "|---|---|---|---|"]
    for r in table.values():
        keys = ", ".join(f"`{p.name}` ({json.dumps(p.default)})" for p in r.params if p.name != "reduction")
        lines.append(f"| `{r.name}` | `{r.keras}` | {keys or '—'} | {r.doc} |")
    return "\n".join(lines) + "\n"


# --- static checks --------------------------------------------------------------

_PROBABILITY = {"softmax": "softmax", "sigmoid": "sigmoid", "hard_sigmoid": "sigmoid"}
_BINARY = ("binary_crossentropy", "binary_focal_crossentropy")
_CATEGORICAL = ("categorical_crossentropy", "categorical_focal_crossentropy")
_SPARSE = ("sparse_categorical_crossentropy",)
CROSS_ENTROPIES = (*_BINARY, *_CATEGORICAL, *_SPARSE)
# Layers without an ``activation`` key whose output is never probabilities.
_UNBOUNDED = ("BatchNormalization", "LayerNormalization", "Normalization", "MultiHeadAttention", "Embedding")


def final_activation(layer: str | None, config: Mapping[str, Any] | None) -> str | None:
    """The activation a layer's output ends in, when it is known statically.

    Args:
        layer: the layer type (a key of ``LAYERS``), or None for a merge,
            a sub-model or an input.
        config: the layer's config as written (defaults are filled in here).

    Returns:
        An activation name (``"linear"`` for none); ``"softmax"`` for a
        ``Softmax`` layer and the named activation for an ``Activation``
        layer; None when the output could be anything (a merge, a
        sub-model, a Dropout or Reshape that may follow a softmax...).
    """
    if layer is None or layer not in LAYERS:
        return None
    config = config or {}
    if layer == "Softmax":
        return "softmax"
    if layer == "ReLU":
        return "relu"
    if layer in _UNBOUNDED:
        return "linear"
    param = LAYERS[layer].param_index.get("activation")
    if param is None:
        return None
    value = config.get("activation", None if param.required else param.default)
    if value is None and param.required:
        return None
    return str(value) if value is not None else "linear"


def _width(shape: Sequence[int | None], axis: int) -> tuple[int | None, bool]:
    """(size of ``axis``, whether it names a non-batch axis of ``shape``)."""
    rank = len(shape)
    index = axis + rank if axis < 0 else axis
    if not 1 <= index < rank:
        return None, False
    return shape[index], True


def output_problems(
    name: str,
    output: Mapping[str, Any],
    shape: Sequence[int | None],
    layer: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """Static checks of an output's loss against what produces it: what would train wrong.

    Errors (the loss cannot train this output): a sparse or categorical
    cross-entropy on an output of width 1; a binary cross-entropy on a softmax
    over several units; a cross-entropy on a softmax over one unit; an
    ``axis`` that is not an axis of the output. Warnings (probably wrong,
    ``--strict`` refuses them): another loss on a softmax over one unit; a
    cross-entropy whose output ends in neither softmax nor sigmoid and has no
    ``"from_logits": true``; ``"from_logits": true`` on a softmax or sigmoid
    output. Where an output has an error, its warnings are left out.

    Args:
        name: the output's name (a key of the spec's ``outputs``).
        output: its spec object (``from``, ``loss``...).
        shape: the static shape of the tensor it reads, batch axis first.
        layer: the type of the layer that produces it (a ``layer`` node's
            ``layer``, a shared call's shared layer's), None when unknown (a
            merge, a block's or sub-model's output, an input).
        config: that layer's config as written.

    Returns:
        Problems with code ``loss``; paths ``("outputs", name, "loss")`` or,
        for one key of an object loss, ``("outputs", name, "loss", key)``.
    """
    value = output.get("loss")
    if value is None or not isinstance(value, (str, Mapping)):
        return []
    loss = objective_name(value)
    args = objective_args(value)
    source = str(output.get("from", name))
    node, _, port = source.partition(".")
    # Output N > 0 of a recurrent layer is a state, not its activation's output.
    act = None if port.isdigit() and port != "0" else final_activation(layer, config)
    at: tuple[str | int, ...] = ("outputs", name, "loss")
    shown = f"shape {fmt_shape(shape)} from `{source}`"
    errors: list[Problem] = []
    warnings: list[Problem] = []

    axis = args.get("axis", -1)
    width: int | None = None
    if loss in LOSS_RULES and "axis" in LOSS_RULES[loss].param_index and isinstance(axis, int):
        width, ok = _width(shape, axis)
        if not ok:
            errors.append(
                Problem(
                    (*at, "axis"),
                    f"the loss's `axis` must name an axis of the output other than the batch axis. "
                    f"Received: axis {axis} on {shown}",
                    "use -1 (the last axis)" + (f" or 1 to {len(shape) - 1}" if len(shape) > 2 else ""),
                    "loss",
                )
            )
    elif shape:
        width = shape[-1]

    # A Softmax layer may normalise another axis than the last.
    softmax_axis = (config or {}).get("axis", -1) if layer == "Softmax" else -1
    softmax_width = _width(shape, softmax_axis)[0] if isinstance(softmax_axis, int) else None
    if act == "softmax" and softmax_width == 1:
        # An error under a cross-entropy (the classic Dense(1, softmax) classifier); under
        # another loss the output may be meant as a constant, so a warning.
        severe = loss in CROSS_ENTROPIES
        (errors if severe else warnings).append(
            Problem(
                at,
                f"a softmax over one unit is always 1, so `{node}` cannot learn. Received: {shown}, activation softmax",
                "use a sigmoid for one yes/no unit, or one unit per class with softmax",
                "loss",
                "error" if severe else "warning",
            )
        )
    elif loss in _SPARSE + _CATEGORICAL and width == 1:
        errors.append(
            Problem(
                at,
                f"{loss} needs one output unit per class (on one unit it is constant). Received: {shown}",
                f"give `{node}` one unit per class and a softmax, "
                "or use binary_crossentropy with one sigmoid unit for two classes",
                "loss",
            )
        )
    elif loss in _BINARY and act == "softmax" and width is not None and width > 1:
        errors.append(
            Problem(
                at,
                f"{loss} scores each unit as its own yes/no probability, but a softmax makes the units compete. "
                f"Received: {shown}, activation softmax",
                "for one class per example use categorical_crossentropy (one-hot labels) or "
                "sparse_categorical_crossentropy (class ids); for several labels per example, a sigmoid activation",
                "loss",
            )
        )
    if errors:
        return errors

    if loss in CROSS_ENTROPIES and act is not None:
        logits = args.get("from_logits") is True
        want = "sigmoid" if loss in _BINARY else "softmax"
        if not logits and act not in _PROBABILITY:
            warnings.append(
                Problem(
                    at,
                    f"{loss} reads the output as probabilities (from a {want}) unless `from_logits` is true. "
                    f"Received: `{node}` ends in activation {act}, {shown}",
                    f'write the loss as {{"name": "{loss}", "from_logits": true}}, '
                    f"or end `{node}` in a {want} activation",
                    "loss",
                    "warning",
                )
            )
        elif logits and act in _PROBABILITY:
            warnings.append(
                Problem(
                    (*at, "from_logits"),
                    f"`from_logits: true` makes the loss apply a {_PROBABILITY[act]} itself, so an output that "
                    f"already ends in one has its probabilities treated as logits. Received: `{node}` ends in "
                    f"activation {act}",
                    f"drop `from_logits`, or drop the {act} activation so `{node}` outputs logits",
                    "loss",
                    "warning",
                )
            )
    return warnings
