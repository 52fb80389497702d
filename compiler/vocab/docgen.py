"""Generate docs/vocabulary.md from the layer and merge registries.

Run ``python -m fusec.vocab.docgen > docs/vocabulary.md`` (``make docs``); a test
keeps the committed page equal to this output.
"""

from __future__ import annotations

import json
from typing import Any

from .layers import LAYERS, REFUSED
from .merges import MERGES
from .rule import DTYPE_RULES, Param


def _type(p: Param) -> str:
    schema = p.schema
    if "enum" in schema:
        values = schema["enum"]
        return "one of " + ", ".join(f"`{v}`" for v in values[:8]) + (" ..." if len(values) > 8 else "")
    if "oneOf" in schema:
        return " or ".join(str(b.get("type", "value")) for b in schema["oneOf"])
    kind = schema.get("type", "value")
    bounds = [
        f"{op} {schema[k]}" for k, op in (("minimum", "≥"), ("maximum", "≤"), ("exclusiveMaximum", "<")) if k in schema
    ]
    return f"{kind} {', '.join(bounds)}".strip() if kind != "object" else "object"


def _default(p: Param) -> str:
    if p.required:
        return "**required**"
    return f"`{json.dumps(p.default)}`"


def _table(params: tuple[Param, ...]) -> list[str]:
    if not params:
        return ["No config keys.", ""]
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    rows += [f"| `{p.name}` | {_type(p)} | {_default(p)} | {p.doc} |" for p in params]
    return [*rows, ""]


def vocabulary_markdown() -> str:
    """The vocabulary reference page, generated."""
    lines: list[Any] = [
        "# Vocabulary",
        "",
        "Generated from the registries by `make docs` (`python -m fusec.vocab.docgen`); do not edit by hand.",
        "Every layer's static shape and parameter rule is cross-checked against Keras by `tests/test_layers.py`.",
        "",
        "## Merges",
        "",
    ]
    for name, rule in MERGES.items():
        lo, hi = rule.arity
        arity = f"{lo}" if lo == hi else f"{lo} or more" if hi is None else f"{lo} to {hi}"
        if rule.slots:
            slots = ", ".join(
                f"`{slot}` ({'a list of ' + arity + ' ids' if kind == 'list' else 'one id'})"
                for slot, kind in rule.slots.items()
            )
            inputs = f"Named inputs: {slots}."
        else:
            inputs = f"Inputs: a list of {arity} ids."
        lines += [f"### `{name}`", "", f"{rule.doc} {inputs} Keras layer: `{rule.keras}`.", ""]
        lines += _table(rule.params)
    lines += ["## Layers", ""]
    for name, layer in sorted(LAYERS.items()):
        lines += [
            f"### `{name}`",
            "",
            layer.doc,
            "",
            f"Element types (`{layer.dtypes}`): {DTYPE_RULES[layer.dtypes]}.",
            "",
        ]
        lines += _table(layer.params)
    lines += ["## Refused", "", "| layer | why |", "|---|---|"]
    lines += [f"| `{name}` | {why} |" for name, why in REFUSED.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(vocabulary_markdown(), end="")
