"""Losses and metrics as rules: the ``Objective`` rule, the arguments they share, value helpers.

An output's ``loss`` and each of its ``metrics`` is either a name
(``"sparse_categorical_crossentropy"``, resolved by Keras exactly as before)
or an object with a name and that class's arguments::

    {"name": "sparse_categorical_crossentropy", "from_logits": true}

Each entry of the tables (``loss_table.py``, ``metrics.py``) is an
``Objective``: a ``Rule`` whose params are the Keras constructor's keyword
arguments, with the constructor's defaults (a test compares them with
``inspect.signature``). Nothing here imports Keras.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .rule import MAX_DIM, Param, Rule, p_bool, p_enum, p_float, p_int

#: Where each kind's Keras classes live.
HOMES = {"loss": "keras.losses", "metric": "keras.metrics"}


@dataclass(frozen=True)
class Objective(Rule):
    """One loss or metric a spec may name (see ``Rule``).

    ``name`` is the spec's name for it (snake_case, as Keras's string
    names); ``keras`` the class in ``keras.losses`` or ``keras.metrics`` that
    the object form builds; ``params`` the keys the object form accepts
    besides ``name`` (never ``name`` or ``dtype``). ``kind`` is ``loss`` or
    ``metric``.
    """

    kind: str = "loss"

    def schema_title(self) -> str:
        return f"{self.name} {self.kind}"

    def fixed_properties(self) -> dict[str, Any]:
        return {"name": {"const": self.name, "title": "name", "description": self.doc}}


def loss(name: str, keras: str, doc: str, *params: Param) -> Objective:
    """A loss rule; every loss also takes ``reduction``."""
    return Objective(name, doc, (*params, reduction()), keras=keras, keras_home=HOMES["loss"], kind="loss")


def metric(name: str, keras: str, doc: str, params: tuple[Param, ...] = ()) -> Objective:
    """A metric rule."""
    return Objective(name, doc, params, keras=keras, keras_home=HOMES["metric"], kind="metric")


# --- the arguments several losses and metrics share ---------------------------

#: The reductions Keras 3 accepts that still give one scalar to minimise
#: (``"none"`` and null return per-example losses, which ``fit`` cannot use as meant).
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight")
_INT32 = (1 << 31) - 1


def reduction() -> Param:
    return p_enum(
        "reduction",
        "How per-example losses become one number: sum_over_batch_size (mean over the batch), sum, "
        "mean (over every element) or mean_with_sample_weight (divided by the total sample weight).",
        REDUCTIONS,
        "sum_over_batch_size",
    )


def from_logits(what: str = "loss") -> Param:
    return p_bool(
        "from_logits",
        f"True when the output is raw logits (no softmax or sigmoid): the {what} applies it itself.",
        False,
    )


def label_smoothing(default: float) -> Param:
    return p_float(
        "label_smoothing",
        "Moves the labels this far towards a uniform distribution (0: none).",
        default,
        minimum=0,
        maximum=1,
    )


def class_axis() -> Param:
    return p_int("axis", "The axis holding the classes (or features).", -1, minimum=-8, maximum=8)


def ignore_class() -> Param:
    return Param(
        "ignore_class",
        {"type": "integer", "minimum": -_INT32 - 1, "maximum": _INT32},
        "A label id that is skipped (padding, say); null keeps every label.",
        None,
    )


def class_id() -> Param:
    return Param(
        "class_id",
        {"type": "integer", "minimum": 0, "maximum": MAX_DIM},
        "Measure one class only (its index along the last axis); null: all.",
        None,
    )


def top_k() -> Param:
    return Param(
        "top_k",
        {"type": "integer", "minimum": 1, "maximum": MAX_DIM},
        "Count a prediction positive only when it is among the k highest scores; null: no cut.",
        None,
    )


def thresholds() -> Param:
    prob = {"type": "number", "minimum": 0, "maximum": 1}
    return Param(
        "thresholds",
        {**prob, "type": ["number", "array"], "items": prob, "minItems": 1, "maxItems": 1000},
        "Decision threshold in [0, 1], or a list of them (one result each); null: 0.5.",
        None,
    )


def alpha(default: float) -> Param:
    return p_float("alpha", "Weight of the positive class (focal loss's balancing factor).", default, 0, 1)


def gamma(default: float) -> Param:
    return p_float("gamma", "Focusing exponent: how much easy examples are down-weighted (0: plain CE).", default, 0)


def top_k_hits() -> Param:
    return p_int("k", "How many of the highest-scoring classes count as a hit.", 5)


# --- values --------------------------------------------------------------------


def objective_name(value: str | Mapping[str, Any]) -> str:
    """The name of a loss or metric value, in either form."""
    return value if isinstance(value, str) else str(value.get("name", ""))


def objective_args(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a value gives (nothing for a bare name)."""
    return {} if isinstance(value, str) else {k: v for k, v in value.items() if k != "name"}


def objective_text(value: Any) -> str:
    """A short text for summaries and diagrams: ``sparse_categorical_crossentropy(from_logits=true)``."""
    if not isinstance(value, Mapping):
        return str(value)
    args = ", ".join(f"{k}={json.dumps(v)}" for k, v in objective_args(value).items())
    return f"{objective_name(value)}({args})" if args else objective_name(value)
