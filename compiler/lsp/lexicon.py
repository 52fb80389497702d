"""What the vocabulary says about each name, worded for completion and hover.

Everything here is read from the rules (``vocab/``): a layer's doc and its
config keys with their docs and true defaults, a merge's doc and inputs, a
loss's or metric's doc. Nothing is written twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..vocab.layers import LAYERS
from ..vocab.losses import LOSS_RULES, METRIC_RULES
from ..vocab.merges import MERGES
from ..vocab.rule import ACTIVATIONS, Param, Rule, describe_default

#: The names a value may take, by the key that holds it.
NAMES: Mapping[str, Mapping[str, Rule]] = {
    "layer": LAYERS,
    "merge": MERGES,
    "loss": LOSS_RULES,
    "metrics": METRIC_RULES,
}


def rule_of(field: str, name: str) -> Rule | None:
    """The rule named ``name`` under ``field`` (``layer``, ``merge``, ``loss``, ``metrics``)."""
    return NAMES.get(field, {}).get(name)


def _shown(value: Any) -> str:
    return json.dumps(value)


def params_table(rule: Rule) -> str:
    """A rule's config keys as a Markdown list: key, default (or required), doc."""
    if not rule.params:
        return "No config keys."
    rows = []
    for p in rule.params:
        default = "**required**" if p.required else f"default `{_shown(p.default)}`"
        rows.append(f"- `{p.name}` ({default}): {p.doc}")
    return "\n".join(rows)


def rule_markdown(field: str, rule: Rule) -> str:
    """The hover and completion documentation of a layer, merge, loss or metric."""
    kind = {"layer": "layer", "merge": "merge", "loss": "loss", "metrics": "metric"}.get(field, field)
    head = f"**{rule.name}** ({kind}, Keras `{rule.keras}`)\n\n{rule.doc}"
    slots = getattr(rule, "slots", None)
    if isinstance(slots, Mapping) and slots:
        head += "\n\nNamed inputs: " + ", ".join(f"`{s}` ({k})" for s, k in slots.items())
    return f"{head}\n\n{params_table(rule)}"


def param_markdown(rule: Rule, param: Param) -> str:
    """A config key's doc, with its default (or that it is required)."""
    need = "required" if param.required else f"default `{_shown(param.default)}`"
    return f"**{param.name}** of `{rule.name}` ({need})\n\n{describe_default(param)}"


def example_value(rule: Rule, param: Param) -> Any:
    """The value a new config key starts at: its default, else the first example's, else one of its type."""
    if not param.required:
        return param.default
    for _, config in rule.examples:
        if param.name in config:
            return config[param.name]
    schema = param.schema
    if "enum" in schema:
        return schema["enum"][0]
    return {"integer": 1, "number": 0.0, "boolean": False, "string": "", "array": []}.get(str(schema.get("type")))


def choices(param: Param) -> list[Any]:
    """The closed set of values a config key takes (an enum, booleans), or ``[]``."""
    schema = param.schema
    if "enum" in schema:
        return list(schema["enum"])
    if schema.get("type") == "boolean":
        return [True, False]
    return []


def activation_names() -> tuple[str, ...]:
    return ACTIVATIONS
