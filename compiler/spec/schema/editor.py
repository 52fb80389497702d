"""What an editor shows beside the schema's verdict: per-value docs, defaults, snippets.

JSON language services (vscode-json-languageservice, which VS Code runs and
which Neovim and Emacs reach through vscode-json-languageserver) read
annotations that never change a verdict (fastschema and jsonschema skip them):

- ``enumDescriptions``: one doc per value of an ``enum``, in its order. Hover
  on ``"Dense"`` shows Dense's own doc, and each completion item carries its
  value's doc. Layers, merges, activations, losses and metrics, from their
  registries (activations from ``ACTIVATION_DOCS``);
- ``default``: the value Keras uses when a config key is absent (a documented
  default the checker accepts): accepting a key's completion inserts it. A
  default of None is left out: inserting ``null`` helps no one, and without it
  the editor offers the key's values instead;
- ``examples``: for a key without a default (Dense's ``units``), a value the
  checker accepts, inserted as a placeholder (``"units": ${1:64}``);
- ``defaultSnippets``: a new node of each kind, a new input, a new output,
  and each loss and metric by name (their unions have no top-level ``enum``
  for a completion list to read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...vocab.layers import LAYERS
from ...vocab.losses import LOSS_RULES, METRIC_RULES, Objective
from ...vocab.merges import MERGES
from ...vocab.rule import ACTIVATIONS, Rule

#: One line per activation name (``vocab.rule.ACTIVATIONS``; a test keeps the two equal).
ACTIVATION_DOCS: dict[str, str] = {
    "linear": "Identity: the value unchanged (no activation).",
    "relu": "max(x, 0).",
    "relu6": "min(max(x, 0), 6): ReLU capped at 6 (mobile networks).",
    "leaky_relu": "x for x > 0, else 0.2 * x: ReLU with a small slope below zero.",
    "elu": "x for x > 0, else exp(x) - 1.",
    "selu": "Scaled ELU: self-normalising with lecun_normal initialisation.",
    "celu": "Continuously differentiable ELU: max(x, 0) + min(0, exp(x) - 1).",
    "gelu": "Gaussian error linear unit: x * Φ(x) (transformers).",
    "silu": "x * sigmoid(x) (also called swish).",
    "swish": "x * sigmoid(x) (also called silu).",
    "mish": "x * tanh(softplus(x)).",
    "sigmoid": "1 / (1 + exp(-x)), in (0, 1): one probability per unit (binary, multi-label).",
    "hard_sigmoid": "A piecewise-linear approximation of sigmoid, in [0, 1].",
    "hard_silu": "x * hard_sigmoid(x): a cheap silu.",
    "hard_swish": "x * hard_sigmoid(x): a cheap swish (the same as hard_silu).",
    "log_sigmoid": "log(sigmoid(x)), computed stably.",
    "tanh": "Hyperbolic tangent, in (-1, 1).",
    "hard_tanh": "max(-1, min(x, 1)): a piecewise-linear tanh.",
    "tanh_shrink": "x - tanh(x).",
    "soft_shrink": "x - 0.5 above 0.5, x + 0.5 below -0.5, else 0.",
    "hard_shrink": "x where |x| > 0.5, else 0.",
    "softmax": "exp(x) / sum(exp(x)) over the last axis: a probability distribution (one class per example).",
    "log_softmax": "log(softmax(x)) over the last axis, computed stably.",
    "sparsemax": "A softmax that can give exact zeros (a sparse probability distribution).",
    "softplus": "log(exp(x) + 1): a smooth ReLU, always positive.",
    "sparse_plus": "0 for x <= -1, x for x >= 1, else (x + 1)² / 4: a smooth ReLU with exact zeros.",
    "squareplus": "(x + sqrt(x² + 4)) / 2: a cheap softplus.",
    "softsign": "x / (|x| + 1), in (-1, 1).",
    "exponential": "exp(x).",
}

#: Placeholders for keys without a default where the rule's first example is not the value most people start from.
PLACEHOLDERS: dict[str, Any] = {"units": 64, "filters": 32}


def vocabularies() -> list[tuple[list[str], list[str]]]:
    """Each closed vocabulary as (names in the schema's ``enum`` order, one doc per name)."""

    def docs(rules: Mapping[str, Rule], names: Iterable[str]) -> tuple[list[str], list[str]]:
        names = list(names)
        return names, [rules[n].doc for n in names]

    return [
        docs(LAYERS, sorted(LAYERS)),
        docs(MERGES, MERGES),
        (list(ACTIVATIONS), [ACTIVATION_DOCS[a] for a in ACTIVATIONS]),
        docs(LOSS_RULES, LOSS_RULES),
        docs(METRIC_RULES, METRIC_RULES),
    ]


def describe_values(schema: Any) -> Any:
    """A copy of ``schema`` where each ``enum`` of a closed vocabulary has its ``enumDescriptions``.

    An enum matches a vocabulary when its names, in order, are the
    vocabulary's (a ``null`` at the end, for a key whose default is None,
    gets no description).
    """
    table = {tuple(names): docs for names, docs in vocabularies()}
    return _describe(schema, table)


def _describe(schema: Any, table: Mapping[tuple[str, ...], list[str]]) -> Any:
    if isinstance(schema, list):
        return [_describe(v, table) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _describe(v, table) for k, v in schema.items()}
    enum = schema.get("enum")
    if isinstance(enum, list):
        docs = table.get(tuple(v for v in enum if v is not None))
        if docs is not None:
            out["enumDescriptions"] = list(docs)
    return out


def placeholder(rule: Rule, key: str) -> Any:
    """A value for a key without a default: PLACEHOLDERS', else the rule's first example's (None if none has it)."""
    if key in PLACEHOLDERS:
        return PLACEHOLDERS[key]
    return next((config[key] for _, config in rule.examples if key in config), None)


def with_defaults(config: dict[str, Any], rule: Rule) -> dict[str, Any]:
    """A copy of a rule's config schema with each key's ``default`` (or, without one, ``examples``).

    Args:
        config: the schema ``vocab.rule.config_schema(rule)`` gives.
        rule: the layer, merge, loss or metric it describes.
    """
    props = dict(config["properties"])
    for p in rule.params:
        prop = dict(props[p.name])
        if not p.required and p.default is not None:
            prop["default"] = _json(p.default)
        elif (value := placeholder(rule, p.name)) is not None:
            prop["examples"] = [_json(value)]
        props[p.name] = prop
    return {**config, "properties": props}


def objective_defaults(schema: dict[str, Any], table: Mapping[str, Objective]) -> dict[str, Any]:
    """A copy of ``vocab.losses.objective_schema(kind)`` with defaults in each object form, and name snippets.

    The union's string branch is the enum of names; completion lists only read
    an ``enum`` at the top, so each name is offered as a snippet too.
    """
    string_branch, object_branch = schema["allOf"]
    obj = dict(object_branch["then"])
    branches = []
    for branch in obj["allOf"]:
        rule = table[branch["if"]["properties"]["name"]["const"]]
        branches.append({**branch, "then": with_defaults(branch["then"], rule)})
    obj["allOf"] = branches
    snippets = [{"description": r.doc, "body": r.name} for r in table.values()]
    kind = next(iter(table.values())).kind
    return {
        **schema,
        # Each name's doc now shows on its own: the listing of them all would hide it.
        "description": f'A {kind} by name, or {{"name": NAME, ...its arguments}}.',
        "allOf": [string_branch, {**object_branch, "then": obj}],
        "defaultSnippets": snippets,
    }


def _json(value: Any) -> Any:
    """``value`` as JSON writes it (tuples become lists)."""
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


#: A new node of each kind (``$defs/node``): the kind's key, what it needs, and its inputs.
NODE_SNIPPETS: list[dict[str, Any]] = [
    {
        "label": "layer node",
        "description": "A Keras layer applied to one input (its config keys complete once the layer is named).",
        "body": {"layer": "${1:Dense}", "config": {"units": "^${2:64}"}, "inputs": "${3:x}"},
    },
    {
        "label": "merge node",
        "description": "Fuses several inputs: concat, add, multiply, average, weighted, gated...",
        "body": {"merge": "${1:concat}", "inputs": ["${2:a}", "${3:b}"]},
    },
    {
        "label": "shared layer call",
        "description": "Calls the layer defined under `shared` with this id; every call shares its weights.",
        "body": {"shared": "${1:encoder}", "inputs": "${2:x}"},
    },
    {
        "label": "block instance",
        "description": "An instance of the sub-graph defined under `blocks` with this id.",
        "body": {"block": "${1:tower}", "inputs": "${2:x}"},
    },
    {
        "label": "model node",
        "description": "A pretrained sub-model: a fusec spec or a .keras archive beside this spec.",
        "body": {"model": "${1:encoder.json}", "inputs": "${2:x}"},
    },
]

INPUT_SNIPPETS: list[dict[str, Any]] = [
    {
        "label": "input",
        "description": "A model input: its shape without the batch axis.",
        "body": {"shape": ["^${1:16}"]},
    }
]

OUTPUT_SNIPPETS: list[dict[str, Any]] = [
    {
        "label": "output",
        "description": "A model output: the node it comes from and its training loss.",
        "body": {"from": "${1:y}", "loss": "${2:mse}"},
    }
]
