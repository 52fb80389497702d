"""The spec's contract, as JSON Schema 2020-12, generated from the vocabulary.

The layer and merge registries write the vocabulary once; this module turns
it into the schema. ``fusec-1.schema.json`` beside this module is this
generator's output, shipped in the package for editors and other tools
(``fusec schema --path`` prints where; a test keeps the two equal, and
``make schema`` rewrites it). Each layer's config is written once, under
``$defs``, and referred to by nodes and shared layers alike; parameter
schemas that many configs repeat are shared the same way (see ``defs``).
``editor`` adds what editors show and never a verdict: each value's doc,
each key's default, snippets for new nodes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ...vocab.layers import LAYERS
from ...vocab.losses import LOSS_RULES, METRIC_RULES, objective_schema
from ...vocab.merges import MERGES
from ...vocab.rule import config_schema
from .defs import hoist_repeated
from .editor import (
    INPUT_SNIPPETS,
    NODE_SNIPPETS,
    OUTPUT_SNIPPETS,
    describe_values,
    objective_defaults,
    with_defaults,
)
from .names import EXTERNAL_PATTERN, ID_PATTERN, INPUT_ID_PATTERN, REF_PATTERN
from .params import BLOCK_NODE_NOTE, block_params_schema, instance_params_schema, param_defs, repeat_schema
from .training import OPTIMIZERS as OPTIMIZERS
from .training import training_schema

SCHEMA_ID = "https://fusec.dev/schemas/fusec-1.schema.json"


#: The keys each kind of node may have (the kind's own key first).
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "layer": ("layer", "config", "trainable", "inputs", "doc"),
    "merge": ("merge", "config", "inputs", "doc"),
    "shared": ("shared", "inputs", "doc"),
    "block": ("block", "params", "repeat", "inputs", "doc"),
    "model": ("model", "weights", "output", "trust", "shapes", "trainable", "inputs", "doc"),
}

DTYPES = ("float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool")


def _doc(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    return {"title": title, "description": description, **schema}


def _by_type(**branches: dict[str, Any]) -> dict[str, Any]:
    """A union discriminated by JSON type, written so errors stay precise.

    ``oneOf`` reports "not valid under any of the given schemas"; a type list
    with one ``if type then branch`` per type reports the branch's own error.
    """
    return {
        "type": list(branches),
        "allOf": [{"if": {"type": t}, "then": b} for t, b in branches.items()],
    }


def _ref(what: str) -> dict[str, Any]:
    return _doc({"type": "string", "pattern": REF_PATTERN}, "reference", f"The id of {what}.")


def _inputs_schema() -> dict[str, Any]:
    ref = _ref("an input or node whose output feeds this node")
    refs = {"type": "array", "items": ref, "minItems": 1, "maxItems": 4096}
    named = {
        "type": "object",
        "propertyNames": {"pattern": EXTERNAL_PATTERN},
        "additionalProperties": _by_type(string=ref, array=refs),
        "minProperties": 1,
    }
    return _doc(
        _by_type(string=ref, array=refs, object=named),
        "inputs",
        "What the node consumes: one id, a list of ids (merges), or an object of named inputs "
        '(gated: {"experts": [...], "gate": "g"}).',
    )


def _slots_schema(name: str, slots: Mapping[str, str], docs: Mapping[str, str]) -> dict[str, Any]:
    """The ``inputs`` object of a merge with named slots (counts are checked by the graph stage)."""
    props = {}
    for slot, kind in slots.items():
        ref = _ref("an input or node")
        item = ref if kind == "one" else {"type": "array", "items": ref, "minItems": 1, "maxItems": 4096}
        props[slot] = _doc(item, slot, docs.get(slot, ""))
    return {
        "type": "object",
        "title": f"{name} inputs",
        "description": f"Named inputs of a {name} merge.",
        "properties": props,
        "required": list(slots),
        "additionalProperties": False,
    }


def _param_aware(config: dict[str, Any], in_block: bool) -> dict[str, Any]:
    """A config schema; a config holding a ``$param`` (in a block's node) is checked after substitution."""
    return {"if": {"$ref": "#/$defs/with_param"}, "else": config} if in_block else config


def _layer_configs(in_block: bool = False) -> list[dict[str, Any]]:
    """One ``if layer then config`` branch per layer; the config itself is the layer's entry in ``$defs``."""
    return [
        {
            "if": {"properties": {"layer": {"const": name}}, "required": ["layer"]},
            "then": {"properties": {"config": _param_aware({"$ref": f"#/$defs/{name}"}, in_block)}}
            | ({"required": ["config"]} if any(p.required for p in rule.params) else {}),  # Dense needs its units
        }
        for name, rule in LAYERS.items()
    ]


def _merge_configs(in_block: bool = False) -> list[dict[str, Any]]:
    """One ``if merge then config (and named inputs)`` branch per merge mode."""
    out = []
    for name, rule in MERGES.items():
        config = with_defaults(config_schema(rule), rule)
        then: dict[str, Any] = {"properties": {"config": _param_aware(config, in_block)}}
        if rule.slots is not None:
            then["properties"]["inputs"] = _slots_schema(name, rule.slots, rule.slot_docs)
        if any(p.required for p in rule.params):
            then["required"] = ["config"]
        out.append({"if": {"properties": {"merge": {"const": name}}, "required": ["merge"]}, "then": then})
    return out


def _defs() -> dict[str, Any]:
    """The schema's ``$defs``: the node, each layer's config, and the parameter schemas configs share."""
    defs: dict[str, Any] = {"node": _node_schema(), **param_defs()}
    defs.update((name, with_defaults(config_schema(rule), rule)) for name, rule in LAYERS.items())
    hoist_repeated(defs, LAYERS)
    return defs


def _layer_props() -> dict[str, Any]:
    return {
        "layer": _doc({"type": "string", "enum": sorted(LAYERS)}, "layer", "The Keras layer type (closed vocabulary)."),
        "config": _doc({"type": "object"}, "config", "The layer's keyword arguments (data only)."),
        "trainable": _doc({"type": "boolean"}, "trainable", "False freezes the layer's weights."),
        "doc": _doc({"type": "string", "maxLength": 2000}, "doc", "Free text shown in summaries and diagrams."),
    }


def _node_props() -> dict[str, Any]:
    """Every key a node may have (each kind allows some: KIND_KEYS)."""
    path = {"type": "string", "minLength": 1, "maxLength": 4096}
    return {
        **_layer_props(),
        "merge": _doc({"type": "string", "enum": list(MERGES)}, "merge", "The fusion mode of a merge node."),
        "shared": _doc(
            {"type": "string", "pattern": ID_PATTERN},
            "shared",
            "Calls the layer defined under `shared` with this id: every call uses one set of weights.",
        ),
        "block": _doc(
            {"type": "string", "pattern": ID_PATTERN},
            "block",
            "Instantiates the block defined under `blocks` with this id.",
        ),
        "params": instance_params_schema(),
        "repeat": repeat_schema(),
        "model": _doc(
            path,
            "model",
            "A pretrained sub-model: a .keras archive or a fusec spec, relative to this spec's folder.",
        ),
        "weights": _doc(
            path, "weights", "Trained weights for a fusec-spec sub-model (.weights.h5 or a compiled .keras)."
        ),
        "output": _doc(
            {"type": "string", "pattern": EXTERNAL_PATTERN},
            "output",
            "Which output of a sub-model with several outputs this node yields.",
        ),
        "trust": _doc(
            {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
            "trust",
            "The package a .keras sub-model's classes come from (e.g. keras_hub): loaded only when the "
            "command trusts it too (--trust PACKAGE); its code runs when the model loads.",
        ),
        "shapes": _doc(
            {
                "type": "object",
                "propertyNames": {"pattern": EXTERNAL_PATTERN},
                "additionalProperties": {
                    "type": "array",
                    "items": {"type": ["integer", "null"], "minimum": 1, "maximum": 1 << 24},
                    "maxItems": 8,
                },
                "minProperties": 1,
                "maxProperties": 64,
            },
            "shapes",
            "A trusted sub-model's output shapes by output name (batch axis excluded, null for any size): "
            "fusec cannot compute them; compile verifies them against the loaded model.",
        ),
        "inputs": _inputs_schema(),
    }


def _node_schema() -> dict[str, Any]:
    props = _node_props()
    every = set(props)
    return {
        "type": "object",
        "title": "node",
        "description": "One step of the graph: a layer, a merge, a shared-layer call, a block or a sub-model."
        + BLOCK_NODE_NOTE,
        "properties": props,
        "additionalProperties": False,
        "required": ["inputs"],
        "defaultSnippets": NODE_SNIPPETS,
        "oneOf": [{"required": [kind]} for kind in KIND_KEYS],
        "allOf": [
            *_layer_configs(in_block=True),
            *_merge_configs(in_block=True),
            *(
                {
                    "if": {"required": [kind]},
                    "then": {"properties": {k: {"not": {}} for k in sorted(every - set(keys))}},
                }
                for kind, keys in KIND_KEYS.items()
            ),
        ],
    }


def _block_schema() -> dict[str, Any]:
    ids = {"type": "string", "pattern": ID_PATTERN}
    return {
        "type": "object",
        "title": "block",
        "description": "A reusable sub-graph with named inputs and outputs, instantiated by `block` nodes.",
        "properties": {
            "inputs": _doc(
                {"type": "array", "items": ids, "minItems": 1, "maxItems": 64, "uniqueItems": True},
                "inputs",
                "Names of the block's inputs; its nodes use them as ids.",
            ),
            "nodes": _section({"$ref": "#/$defs/node"}, "nodes", "The block's nodes by id.", 1),
            "params": block_params_schema(),
            "outputs": _doc(
                {
                    "type": "object",
                    "propertyNames": {"pattern": ID_PATTERN},
                    "additionalProperties": _ref("the block node that yields this output"),
                    "minProperties": 1,
                },
                "outputs",
                "The block's outputs: name -> inner node id. An instance `t` with one output is "
                "referenced as `t`, else as `t.name`.",
            ),
            "shared_weights": _doc(
                {"type": "boolean"},
                "shared_weights",
                "True: every instance uses one set of weights (siamese towers). Default: false.",
            ),
            "doc": _doc({"type": "string", "maxLength": 2000}, "doc", "Free text."),
        },
        "required": ["inputs", "nodes", "outputs"],
        "additionalProperties": False,
    }


def _shared_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "shared layer",
        "description": "A layer defined once and called by several nodes; all calls share its weights.",
        "properties": _layer_props(),
        "required": ["layer"],
        "additionalProperties": False,
        "allOf": _layer_configs(),
    }


def _input_schema() -> dict[str, Any]:
    dim = {"type": ["integer", "null"], "minimum": 1, "maximum": 1 << 24}
    return {
        "type": "object",
        "title": "input",
        "description": "A model input; its id names the serving signature's argument.",
        "properties": {
            "shape": _doc(
                {"type": "array", "items": dim, "maxItems": 8},
                "shape",
                "Shape without the batch axis; null for a dimension of variable size.",
            ),
            "dtype": _doc({"type": "string", "enum": list(DTYPES)}, "dtype", "Element type. Default: float32."),
            "doc": _doc({"type": "string", "maxLength": 2000}, "doc", "Free text."),
        },
        "required": ["shape"],
        "additionalProperties": False,
        "defaultSnippets": INPUT_SNIPPETS,
    }


def _output_schema() -> dict[str, Any]:
    # The output's own title and description stand for the loss union's.
    loss = objective_defaults(objective_schema("loss"), LOSS_RULES)
    loss = {k: v for k, v in loss.items() if k not in ("title", "description")}
    return {
        "type": "object",
        "title": "output",
        "description": "A model output; its name keys the serving signature's result and the loss.",
        "properties": {
            "from": _ref("the node whose output this is"),
            "loss": _doc(
                {**loss, "type": [*loss["type"], "null"]},
                "loss",
                'Training loss for this output: a name, {"name": NAME, ...its arguments} '
                "(from_logits, label_smoothing...), or null (not trained directly).",
            ),
            "loss_weight": _doc(
                {"type": "number", "minimum": 0, "maximum": 1e6},
                "loss_weight",
                "Weight of this loss. Default: 1.",
            ),
            "metrics": _doc(
                {
                    "type": "array",
                    "items": objective_defaults(objective_schema("metric"), METRIC_RULES),
                    "uniqueItems": True,
                    "maxItems": 64,
                },
                "metrics",
                'Metrics reported for this output: names, or {"name": NAME, ...its arguments}.',
            ),
            "doc": _doc({"type": "string", "maxLength": 2000}, "doc", "Free text."),
        },
        "required": ["from"],
        "additionalProperties": False,
        "defaultSnippets": OUTPUT_SNIPPETS,
    }


def _section(
    item: dict[str, Any], title: str, description: str, min_items: int = 0, pattern: str = ID_PATTERN
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "title": title,
        "description": description,
        "propertyNames": {"pattern": pattern},
        "additionalProperties": item,
        "maxProperties": 20000,
    }
    if min_items:
        schema["minProperties"] = min_items
    return schema


@lru_cache(maxsize=1)
def generate_schema() -> dict[str, Any]:
    """Return the spec's JSON Schema (2020-12), generated from the registries.

    Returns:
        The schema as a dict; ``json.dumps(..., indent=2, sort_keys=True)`` of
        it is the committed ``SCHEMA_PATH``.
    """
    return describe_values(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": SCHEMA_ID,
            "title": "fusec spec",
            "description": "A neural network as a graph of inputs, layers, shared layers, merges and outputs.",
            "type": "object",
            "properties": {
                "$schema": _doc({"type": "string"}, "$schema", "The schema this file follows (for editors)."),
                "fusec": _doc(
                    {"type": "integer", "const": 1},
                    "fusec",
                    "Spec format version, the integer 1. This schema describes version 1.",
                ),
                "name": _doc({"type": "string", "pattern": ID_PATTERN}, "name", "Model name (the Keras model's name)."),
                "doc": _doc({"type": "string", "maxLength": 20000}, "doc", "Free text about the model."),
                "seed": _doc(
                    {"type": "integer", "minimum": 0, "maximum": (1 << 31) - 1},
                    "seed",
                    "Seed for weight initialisation: the same spec and seed give identical weights.",
                ),
                "weights": _doc(
                    {"type": "string", "minLength": 1, "maxLength": 4096},
                    "weights",
                    "A weights file (.npz, as `fusec import` writes) beside the spec or below its folder: "
                    "arrays keyed by node or shared-layer id, loaded at compile as data (never code).",
                ),
                "inputs": _section(_input_schema(), "inputs", "Model inputs by id.", 1, INPUT_ID_PATTERN),
                "shared": _section(_shared_schema(), "shared", "Layers called by several nodes, by id."),
                "blocks": _section(_block_schema(), "blocks", "Reusable sub-graphs by id."),
                "nodes": _section(
                    {"$ref": "#/$defs/node", "properties": {"config": {"not": {"$ref": "#/$defs/with_param"}}}},
                    "nodes",
                    "The graph's nodes by id; file order does not matter.",
                    1,
                ),
                "outputs": _section(_output_schema(), "outputs", "Model outputs by name.", 1),
                "training": training_schema(),
            },
            "required": ["fusec", "inputs", "nodes", "outputs"],
            "additionalProperties": False,
            "$defs": _defs(),
        }
    )


def schema_json() -> str:
    """The schema as the text committed in ``SCHEMA_PATH``."""
    return json.dumps(generate_schema(), indent=2, sort_keys=True) + "\n"
