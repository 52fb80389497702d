"""Losses and metrics as data: the public face of the tables, their schema and docs.

An output's ``loss`` and each of its ``metrics`` is either a name
(``"sparse_categorical_crossentropy"``, resolved by Keras exactly as before)
or an object with a name and that class's arguments::

    {"name": "sparse_categorical_crossentropy", "from_logits": true}

The rules live in ``loss_table.py`` and ``metrics.py`` (``Objective``, in
``objective.py``); which loss fits which output is checked in ``fit.py``.
From these tables ``spec/schema`` generates the JSON Schema of a loss or
metric value, ``fusec.keras.layers`` instantiates the Keras objects, and
``output_problems`` finds the combinations of loss, output width and final
activation that make a model train wrong. This module gathers them under
the names the rest of fusec imports.

Nothing here imports Keras: ``fusec.keras.layers.keras_objective`` builds the Keras objects.
"""

from __future__ import annotations

import json
from typing import Any

from .fit import final_activation as final_activation
from .fit import output_problems as output_problems
from .loss_table import CROSS_ENTROPIES as CROSS_ENTROPIES
from .loss_table import LOSS_RULES as LOSS_RULES
from .loss_table import LOSSES as LOSSES
from .metrics import METRIC_RULES as METRIC_RULES
from .metrics import METRICS as METRICS
from .objective import REDUCTIONS as REDUCTIONS
from .objective import Objective as Objective
from .objective import objective_args as objective_args
from .objective import objective_name as objective_name
from .objective import objective_text as objective_text
from .rule import config_schema

KINDS: dict[str, dict[str, Objective]] = {"loss": LOSS_RULES, "metric": METRIC_RULES}


def objective_table(kind: str) -> dict[str, Objective]:
    """The rules of one kind (``loss`` or ``metric``), by name.

    Raises:
        ValueError: for any other kind.
    """
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"kind must be one of {sorted(KINDS)}. Received: {kind!r}") from None


def objective_schema(kind: str) -> dict[str, Any]:
    """JSON Schema of one loss value (``kind="loss"``) or one metric value (``"metric"``).

    A union discriminated by JSON type: a string is one of the names; an
    object has a ``name`` and only that loss's or metric's keys, selected with
    one ``if {name: N} then {N's config schema}`` branch per name (as layer
    configs are), so a wrong key is reported against the keys of the loss
    actually named.
    """
    table = objective_table(kind)
    names = list(table)
    listing = "; ".join(f"{r.name}: {r.doc}" for r in table.values())
    branches = [
        {"if": {"properties": {"name": {"const": r.name}}, "required": ["name"]}, "then": config_schema(r)}
        for r in table.values()
    ]
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
        "allOf": branches,
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


def objectives_markdown(kind: str) -> str:
    """The table of losses or metrics in docs/spec.md: name, Keras class, keys with defaults, doc.

    ``reduction``, which every loss takes, is left out of the keys column
    (docs/spec.md says so once).
    """
    table = objective_table(kind)
    lines = [f"| {kind} | Keras class | keys (default) | meaning |", "|---|---|---|---|"]
    for r in table.values():
        keys = ", ".join(f"`{p.name}` ({json.dumps(p.default)})" for p in r.params if p.name != "reduction")
        lines.append(f"| `{r.name}` | `{r.keras}` | {keys or '—'} | {r.doc} |")
    return "\n".join(lines) + "\n"
