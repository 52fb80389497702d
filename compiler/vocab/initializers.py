"""Initializers, regularizers and constraints with arguments: closed tables of data, no code.

A layer's ``*_initializer`` key takes a name (``"he_normal"``) or an object
naming one form of this module's tables with its arguments
(``{"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"}``); each form
has closed keys, selected by ``name``. ``*_regularizer`` takes
``{"l1": a, "l2": b}`` or a named form (``{"name": "l2", "l2": 1e-4}``);
``*_constraint`` a name or a named form. Each form names the Keras class
that ``fusec.keras.layers`` builds from it, and ``static.archive.settings``
translates Keras's serialized objects back into these forms. None of it
changes a shape or a parameter count; it matters for training only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_NUMBER: dict[str, Any] = {"type": "number"}
_POSITIVE: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0}
_NON_NEGATIVE: dict[str, Any] = {"type": "number", "minimum": 0}
_SEED: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": (1 << 31) - 1}
_AXIS_ONE: dict[str, Any] = {"type": "integer", "minimum": -8, "maximum": 8}
_AXES: dict[str, Any] = {
    "oneOf": [_AXIS_ONE, {"type": "array", "items": _AXIS_ONE, "minItems": 1, "maxItems": 8, "uniqueItems": True}]
}


@dataclass(frozen=True)
class Form:
    """One named object form: the Keras class it builds and its arguments (schema, Keras default)."""

    keras: str
    args: Mapping[str, tuple[Mapping[str, Any], Any]]


_SEEDED = {"seed": (_SEED, None)}

#: Initializers by the spec's name (Keras's own snake-case names).
INITIALIZER_FORMS: Mapping[str, Form] = {
    "glorot_uniform": Form("GlorotUniform", _SEEDED),
    "glorot_normal": Form("GlorotNormal", _SEEDED),
    "he_uniform": Form("HeUniform", _SEEDED),
    "he_normal": Form("HeNormal", _SEEDED),
    "lecun_uniform": Form("LecunUniform", _SEEDED),
    "lecun_normal": Form("LecunNormal", _SEEDED),
    "random_normal": Form("RandomNormal", {"mean": (_NUMBER, 0.0), "stddev": (_POSITIVE, 0.05), **_SEEDED}),
    "random_uniform": Form("RandomUniform", {"minval": (_NUMBER, -0.05), "maxval": (_NUMBER, 0.05), **_SEEDED}),
    # Keras's alias of random_uniform (Embedding's default); Keras's objects translate to random_uniform
    "uniform": Form("RandomUniform", {"minval": (_NUMBER, -0.05), "maxval": (_NUMBER, 0.05), **_SEEDED}),
    "truncated_normal": Form("TruncatedNormal", {"mean": (_NUMBER, 0.0), "stddev": (_POSITIVE, 0.05), **_SEEDED}),
    "variance_scaling": Form(
        "VarianceScaling",
        {
            "scale": (_POSITIVE, 1.0),
            "mode": ({"type": "string", "enum": ["fan_in", "fan_out", "fan_avg"]}, "fan_in"),
            "distribution": (
                {"type": "string", "enum": ["truncated_normal", "untruncated_normal", "uniform"]},
                "truncated_normal",
            ),
            **_SEEDED,
        },
    ),
    "orthogonal": Form("Orthogonal", {"gain": (_NUMBER, 1.0), **_SEEDED}),
    "constant": Form("Constant", {"value": (_NUMBER, 0.0)}),
    "zeros": Form("Zeros", {}),
    "ones": Form("Ones", {}),
}

#: Regularizers by name (the plain ``{"l1": a, "l2": b}`` object is Keras's L1L2).
REGULARIZER_FORMS: Mapping[str, Form] = {
    "l1": Form("L1", {"l1": (_NON_NEGATIVE, 0.01)}),
    "l2": Form("L2", {"l2": (_NON_NEGATIVE, 0.01)}),
    "l1_l2": Form("L1L2", {"l1": (_NON_NEGATIVE, 0.0), "l2": (_NON_NEGATIVE, 0.0)}),
    "orthogonal_regularizer": Form(
        "OrthogonalRegularizer",
        {"factor": (_NON_NEGATIVE, 0.01), "mode": ({"type": "string", "enum": ["rows", "columns"]}, "rows")},
    ),
}

#: Weight constraints by name.
CONSTRAINT_FORMS: Mapping[str, Form] = {
    "max_norm": Form("MaxNorm", {"max_value": (_POSITIVE, 2), "axis": (_AXES, 0)}),
    "min_max_norm": Form(
        "MinMaxNorm",
        {
            "min_value": (_NON_NEGATIVE, 0.0),
            "max_value": (_NON_NEGATIVE, 1.0),
            "rate": ({"type": "number", "minimum": 0, "maximum": 1}, 1.0),
            "axis": (_AXES, 0),
        },
    ),
    "non_neg": Form("NonNeg", {}),
    "unit_norm": Form("UnitNorm", {"axis": (_AXES, 0)}),
}

#: The table of each kind, by the key suffix that takes it (``kernel_initializer``: ``initializer``).
FORMS: Mapping[str, Mapping[str, Form]] = {
    "initializer": INITIALIZER_FORMS,
    "regularizer": REGULARIZER_FORMS,
    "constraint": CONSTRAINT_FORMS,
}


def _named(names: list[str], forms: Mapping[str, Form]) -> dict[str, Any]:
    """The object form: ``name`` picks one form, whose keys are closed (forms with the same keys share a branch)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(json.dumps(forms[name].args, sort_keys=True), []).append(name)
    branches = []
    for group in groups.values():
        pick = {"const": group[0]} if len(group) == 1 else {"enum": group}
        props: dict[str, Any] = {"name": {}}  # judged by the condition above
        props.update({arg: dict(schema) for arg, (schema, _default) in forms[group[0]].args.items()})
        branches.append(
            {
                "if": {"properties": {"name": pick}, "required": ["name"]},
                "then": {"properties": props, "additionalProperties": False},
            }
        )
    names_ok = {"properties": {"name": {"type": "string", "enum": names}}}
    return {"type": "object", "required": ["name"], "allOf": [names_ok, *branches]}


def initializer_schema(names: list[str]) -> dict[str, Any]:
    """A name of ``names``, or an object naming one with its arguments (``constant`` needs its value: objects only).

    Keras 3.15's ``initializers.get("constant")`` fails, so the plain name is not offered.
    """
    plain = [n for n in names if n != "constant"]
    return {"oneOf": [{"type": "string", "enum": plain}, _named(names, INITIALIZER_FORMS)]}


def regularizer_schema() -> dict[str, Any]:
    """``{"l1": a, "l2": b}`` (Keras's L1L2), or an object naming a regularizer with its arguments."""
    plain = {
        "properties": {
            "l1": {"type": "number", "minimum": 0, "title": "l1", "description": "L1 factor."},
            "l2": {"type": "number", "minimum": 0, "title": "l2", "description": "L2 factor."},
        },
        "additionalProperties": False,
        "minProperties": 1,
    }
    named = {k: v for k, v in _named(list(REGULARIZER_FORMS), REGULARIZER_FORMS).items() if k != "type"}
    return {"type": "object", "allOf": [{"if": {"required": ["name"]}, "then": named, "else": plain}]}


def constraint_schema() -> dict[str, Any]:
    """A constraint's name, or an object naming one with its arguments."""
    names = list(CONSTRAINT_FORMS)
    return {"oneOf": [{"type": "string", "enum": names}, _named(names, CONSTRAINT_FORMS)]}


def form_args(kind: str, value: Any) -> tuple[str, dict[str, Any]]:
    """The Keras class and keyword arguments of a validated named value (a name, or an object with ``name``).

    Args:
        kind: ``initializer``, ``regularizer`` or ``constraint``.
        value: a name, or an object whose ``name`` is one of the kind's forms.
    """
    if isinstance(value, str):
        return FORMS[kind][value].keras, {}
    name = value["name"]
    return FORMS[kind][name].keras, {k: v for k, v in value.items() if k != "name"}


def from_keras(kind: str, class_name: str, config: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """A Keras object's class and config as the fusec value it amounts to, and the keys fusec cannot take.

    Arguments equal to Keras's default are left out; a form without arguments
    left is written as its name where the kind has names (initializers,
    constraints). ``input_axes``/``output_axes`` (Keras's einsum fan axes)
    are accepted only as null.

    Returns:
        (value, refused keys); value is None when ``class_name`` is no form of the kind.
    """
    forms = FORMS[kind]
    name = next((n for n, f in forms.items() if f.keras == class_name), None)
    if name is None:
        return None, []
    args: dict[str, Any] = {}
    refused: list[str] = []
    for key, value in config.items():
        if key in forms[name].args:
            if value != forms[name].args[key][1]:
                args[key] = list(value) if isinstance(value, tuple) else value
        elif not (key in ("input_axes", "output_axes") and value is None):
            refused.append(key)
    if not args and kind != "regularizer" and name != "constant":  # regularizers, constant: objects only
        return name, refused
    return {"name": name, **args}, refused
