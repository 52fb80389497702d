"""Schema stage: the spec's contract, as JSON Schema 2020-12.

The schema is generated from the layer and merge registries, so the
vocabulary is written once; ``schemas/fusec.schema.json`` is this generator's
output, committed for editors and other tools (a test keeps the two equal, and
``make schema`` rewrites it). Validation reports every violation, best match
first, each translated into a message that names the rule, what was received
and the fix.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from ..errors import Problem, SchemaError, did_you_mean, quote_names
from ..vocab.layers import LAYERS, REFUSED
from ..vocab.losses import LOSSES as LOSSES  # re-exported: the names a spec may use
from ..vocab.losses import METRICS as METRICS
from ..vocab.losses import objective_schema
from ..vocab.merges import MERGES
from ..vocab.rule import config_schema, describe_default, nullable
from .fastschema import SchemaCompiler

SCHEMA_ID = "https://fusec.dev/schemas/fusec-1.schema.json"

# --- the names rule -------------------------------------------------------------
#
# One rule for every name fusec gives to Keras and TensorFlow: input, node,
# shared-layer, block and output ids, block input and output names, the
# model's `name`, and the name derived from a spec's file stem. Measured on
# Keras 3.15 / TensorFlow 2.21 (tests/test_schema.py replays it):
#
# - TensorFlow names every variable and op after its layer and refuses a root
#   scope that does not match ``[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*``: a layer or
#   model called `_h` builds, then fails when the SavedModel is written;
# - ids are joined with ``__`` by block expansion and with ``.`` for ports,
#   so ``.`` stays out of ids, and a leading digit would read as a port;
# - an input id also names an argument of the SavedModel's serving function,
#   built with ``inspect.Parameter``, which refuses Python keywords (`lambda`,
#   `None`); `self` collides with the tracing method's own first argument.
#   Node ids and output names may be keywords (an output called `class`).
#
# Hence: an ASCII letter, then ASCII letters, digits and ``_``, at most 64
# characters; and for an input, none of RESERVED. The patterns are ECMA-262
# (editors apply them); fusec applies them with ECMA semantics too (``$``
# only at the very end, see ``ecma_regex``), so `h\n` is not `h`.

#: Python's keywords (``keyword.kwlist``, written out so the rule does not move with Python) and `self`.
RESERVED = (
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
    "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "nonlocal", "not", "or", "pass", "raise", "return", "self", "try", "while", "with", "yield",
)  # fmt: skip
MAX_ID = 64
_NAME = r"[A-Za-z][A-Za-z0-9_]{0,63}"
#: An id or name: the rule above.
ID_PATTERN = rf"^{_NAME}$"
#: An input id: an id that is not in RESERVED (it names an argument of the serving function).
INPUT_ID_PATTERN = rf"^(?!(?:{'|'.join(RESERVED)})$){_NAME}$"
#: A reference: an id, optionally ``.N`` (output N of a node) or ``.name`` (an output of a block instance).
REF_PATTERN = rf"^{_NAME}(\.[A-Za-z0-9_]{{1,64}})?$"
#: A name fusec does not give but must match: a sub-model's input or output (Keras's own names), a slot.
EXTERNAL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


@lru_cache(maxsize=64)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema ``pattern`` compiled with the ECMA-262 meaning editors give it.

    Python's ``$`` also matches before a final new line, so ``re.search`` of
    ``^[a-z]+$`` accepts ``"h\\n"``; ECMA's ``$`` (without the multiline flag)
    matches only at the very end. Every ``$`` outside a character class
    becomes ``\\Z``, and ``\\d``, ``\\w`` match ASCII only, as in ECMA.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


def pattern_matches(pattern: str, text: str) -> bool:
    """Whether ``text`` matches a schema ``pattern`` (ECMA-262 semantics, as fusec validates)."""
    return ecma_regex(pattern).search(text) is not None


def is_id(text: str, input_id: bool = False) -> bool:
    """Whether ``text`` follows the names rule (for an input id when ``input_id``)."""
    return pattern_matches(INPUT_ID_PATTERN if input_id else ID_PATTERN, text)


def id_problem(text: str, input_id: bool = False) -> str:
    """Why ``text`` breaks the names rule, in a few words ("" when it does not)."""
    if is_id(text, input_id):
        return ""
    bad = next((c for c in text if not (c.isascii() and (c.isalnum() or c == "_"))), None)
    if not text:
        return "it is empty"
    if bad is not None:
        return f"it holds {json.dumps(bad, ensure_ascii=False)}: ids use ASCII letters, digits and _ only"
    if text[0] == "_":
        return "it starts with _, which TensorFlow refuses in variable and op names"
    if text[0].isdigit():
        return "it starts with a digit"
    if len(text) > MAX_ID:
        return f"it has {len(text)} characters; the limit is {MAX_ID}"
    if text == "self":
        return "an input id names an argument of the serving function, whose own first argument is `self`"
    return "an input id names an argument of the serving function, and Python keywords cannot"


def input_case_problems(doc: Any) -> list[Problem]:
    """Input ids that differ only in case: the SavedModel cannot serve both.

    TensorFlow makes graph names unique ignoring case, so the serving
    function's second argument `mh` after `Mh` is renamed `mh_1` and the
    SavedModel refuses to be written. (Nodes, shared layers and outputs may
    differ only in case: their names never meet in one graph scope.)
    """
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    if not isinstance(inputs, dict):
        return []
    first: dict[str, str] = {}
    problems = []
    for iid in inputs:
        if not isinstance(iid, str):
            continue
        other = first.setdefault(iid.lower(), iid)
        if other != iid:
            problems.append(
                Problem(
                    ("inputs", iid),
                    f"input `{iid}` differs from input `{other}` only in case: TensorFlow names the serving "
                    "function's arguments ignoring case, and cannot tell them apart",
                    "rename one of them",
                    "duplicate",
                )
            )
    return problems


def derive_name(stem: str) -> str:
    """The model name of a spec without ``name``: its file stem, mapped onto the names rule.

    A stem that follows the rule is the name. Any other is mapped, stably:
    accents are dropped (``modèle`` -> ``modele``), each run of characters
    that are not ASCII letters or digits becomes one ``_``, ``_`` is trimmed
    from both ends, a name that starts with a digit gets ``model_`` in front,
    one that is empty becomes ``model``, and the result is cut to 64
    characters. So ``my model (copy).json`` is ``my_model_copy``,
    ``my-model.json`` is ``my_model`` and ``2024.json`` is ``model_2024``.
    """
    if is_id(stem):
        return stem
    text = "".join(c for c in unicodedata.normalize("NFKD", stem) if not unicodedata.combining(c))
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")
    if not text:
        return "model"
    if not text[0].isalpha():
        text = f"model_{text}"
    return text[:MAX_ID].rstrip("_")


#: The keys each kind of node may have (the kind's own key first).
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "layer": ("layer", "config", "trainable", "inputs", "doc"),
    "merge": ("merge", "config", "inputs", "doc"),
    "shared": ("shared", "inputs", "doc"),
    "block": ("block", "inputs", "doc"),
    "model": ("model", "weights", "output", "trainable", "inputs", "doc"),
}
_WHY_NOT = {
    ("shared", "config"): "every call uses the shared layer's own; set it on the layer under `shared`",
    ("shared", "trainable"): "every call uses the shared layer's own; set it on the layer under `shared`",
    ("merge", "trainable"): "it has no weights to freeze",
}

DTYPES = ("float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool")

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion", "ftrl")


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


def _layer_configs() -> list[dict[str, Any]]:
    return [
        {
            "if": {"properties": {"layer": {"const": name}}, "required": ["layer"]},
            "then": {"properties": {"config": config_schema(rule)}}
            | ({"required": ["config"]} if any(p.required for p in rule.params) else {}),  # Dense needs its units
        }
        for name, rule in LAYERS.items()
    ]


def _merge_configs() -> list[dict[str, Any]]:
    out = []
    for name, rule in MERGES.items():
        props = {
            p.name: _doc(nullable(p.schema) if p.default is None else dict(p.schema), p.name, describe_default(p))
            for p in rule.params
        }
        cfg: dict[str, Any] = {
            "type": "object",
            "title": f"{name} config",
            "description": rule.doc,
            "properties": props,
            "additionalProperties": False,
        }
        required = [p.name for p in rule.params if p.required]
        if required:
            cfg["required"] = required
        then: dict[str, Any] = {"properties": {"config": cfg}}
        if rule.slots is not None:
            then["properties"]["inputs"] = _slots_schema(name, rule.slots, rule.slot_docs)
        if any(p.required for p in rule.params):
            then["required"] = ["config"]
        out.append({"if": {"properties": {"merge": {"const": name}}, "required": ["merge"]}, "then": then})
    return out


def _layer_props() -> dict[str, Any]:
    return {
        "layer": _doc({"type": "string", "enum": sorted(LAYERS)}, "layer", "The Keras layer type (closed vocabulary)."),
        "config": _doc({"type": "object"}, "config", "The layer's keyword arguments (data only)."),
        "trainable": _doc({"type": "boolean"}, "trainable", "False freezes the layer's weights."),
        "doc": _doc({"type": "string", "maxLength": 2000}, "doc", "Free text shown in summaries and diagrams."),
    }


def _node_schema() -> dict[str, Any]:
    path = {"type": "string", "minLength": 1, "maxLength": 4096}
    props = {
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
        "inputs": _inputs_schema(),
    }
    every = set(props)
    return {
        "type": "object",
        "title": "node",
        "description": "One step of the graph: a layer, a merge, a shared-layer call, a block or a sub-model.",
        "properties": props,
        "additionalProperties": False,
        "required": ["inputs"],
        "oneOf": [{"required": [kind]} for kind in KIND_KEYS],
        "allOf": [
            *_layer_configs(),
            *_merge_configs(),
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
    }


def _output_schema() -> dict[str, Any]:
    # The output's own title and description stand for the loss union's.
    loss = {k: v for k, v in objective_schema("loss").items() if k not in ("title", "description")}
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
                {"type": "array", "items": objective_schema("metric"), "uniqueItems": True, "maxItems": 64},
                "metrics",
                'Metrics reported for this output: names, or {"name": NAME, ...its arguments}.',
            ),
            "doc": _doc({"type": "string", "maxLength": 2000}, "doc", "Free text."),
        },
        "required": ["from"],
        "additionalProperties": False,
    }


def _training_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "training",
        "description": "How model.compile sets up training.",
        "properties": {
            "optimizer": _doc(
                {"type": "string", "enum": list(OPTIMIZERS)}, "optimizer", "Optimizer by name. Default: adam."
            ),
            "learning_rate": _doc(
                {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
                "learning_rate",
                "Learning rate. Default: the optimizer's own (0.001 for adam).",
            ),
            "clipnorm": _doc({"type": "number", "exclusiveMinimum": 0}, "clipnorm", "Clip each gradient to this norm."),
            "weight_decay": _doc(
                {"type": "number", "minimum": 0, "maximum": 1}, "weight_decay", "Decoupled weight decay."
            ),
        },
        "additionalProperties": False,
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
        it is the committed ``schemas/fusec.schema.json``.
    """
    return {
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
            "inputs": _section(_input_schema(), "inputs", "Model inputs by id.", 1, INPUT_ID_PATTERN),
            "shared": _section(_shared_schema(), "shared", "Layers called by several nodes, by id."),
            "blocks": _section(_block_schema(), "blocks", "Reusable sub-graphs by id."),
            "nodes": _section(
                {"$ref": "#/$defs/node"}, "nodes", "The graph's nodes by id; file order does not matter.", 1
            ),
            "outputs": _section(_output_schema(), "outputs", "Model outputs by name.", 1),
            "training": _training_schema(),
        },
        "required": ["fusec", "inputs", "nodes", "outputs"],
        "additionalProperties": False,
        "$defs": {"node": _node_schema()},
    }


def schema_json() -> str:
    """The schema as the text committed in ``schemas/fusec.schema.json``."""
    return json.dumps(generate_schema(), indent=2, sort_keys=True) + "\n"


_MISSING = object()


def _discriminator(if_schema: Any) -> tuple[str, Any] | None:
    """``(key, const)`` for an ``if`` schema of the forms the generator writes, else None.

    The forms: ``{"required": [K]}`` (const is ``_MISSING``: K present) and
    ``{"properties": {K: {"const": V}}, "required": [K]}`` with V a string.
    """
    if not isinstance(if_schema, dict) or not if_schema.keys() <= {"required", "properties"}:
        return None
    required, props = if_schema.get("required"), if_schema.get("properties", {})
    if not (isinstance(required, list) and len(required) == 1 and isinstance(required[0], str)):
        return None
    key = required[0]
    if props == {}:
        return key, _MISSING
    prop = props.get(key) if isinstance(props, dict) and props.keys() == {key} else None
    if isinstance(prop, dict) and prop.keys() == {"const"} and isinstance(prop["const"], str):
        return key, prop["const"]
    return None


def _quick_if(validator: Any, if_schema: Any, instance: Any) -> bool:
    """Whether ``instance`` satisfies an ``if`` schema, without building a sub-validator.

    ``{"type": T}`` and the ``_discriminator`` forms are decided here
    (``properties`` and ``required`` hold for anything that is not an object,
    as in JSON Schema); any other form goes through jsonschema as before.
    """
    if isinstance(if_schema, dict) and if_schema.keys() == {"type"} and isinstance(if_schema["type"], str):
        return bool(validator.is_type(instance, if_schema["type"]))
    found = _discriminator(if_schema)
    if found is not None:
        if not isinstance(instance, dict):
            return True
        key, const = found
        return key in instance and (const is _MISSING or instance[key] == const)
    return bool(validator.evolve(schema=if_schema).is_valid(instance))


def _if(validator: Any, if_schema: Any, instance: Any, schema: Any) -> Any:
    # jsonschema's own ``if``, with the fast test: the same errors, same paths.
    if _quick_if(validator, if_schema, instance):
        if "then" in schema:
            yield from validator.descend(instance, schema["then"], schema_path="then")
    elif "else" in schema:
        yield from validator.descend(instance, schema["else"], schema_path="else")


# id(allOf list) -> (the list, its plan); the lists live in the cached validator's schema.
_PLANS: dict[int, tuple[list[Any], tuple[dict[str, dict[str, list[int]]], list[int]]]] = {}


def _plan(all_of: list[Any]) -> tuple[dict[str, dict[str, list[int]]], list[int]]:
    """Index an ``allOf``: ``{key: {const: [branch]}}`` for ``if {key: const} then`` branches, and the rest."""
    cached = _PLANS.get(id(all_of))
    if cached is not None and cached[0] is all_of:
        return cached[1]
    by_const: dict[str, dict[str, list[int]]] = {}
    rest: list[int] = []
    for index, sub in enumerate(all_of):
        found = _discriminator(sub.get("if")) if isinstance(sub, dict) and sub.keys() == {"if", "then"} else None
        if found is None or found[1] is _MISSING:
            rest.append(index)
        else:
            by_const.setdefault(found[0], {}).setdefault(found[1], []).append(index)
    _PLANS[id(all_of)] = (all_of, (by_const, rest))
    return by_const, rest


def _all_of(validator: Any, all_of: Any, instance: Any, schema: Any) -> Any:
    # A node's ``allOf`` holds one ``if {layer: X} then {config...}`` per
    # layer and merge (about 60). An ``if`` without ``else`` that fails yields
    # no error, so for an object only the branches whose discriminator
    # matches (and the others) are descended, in their original order, and
    # an ``if`` that fails is skipped before jsonschema builds a validator for
    # it. The errors, their order and their paths are jsonschema's own.
    indices: Iterable[int] = range(len(all_of))
    if isinstance(instance, dict) and isinstance(all_of, list):
        by_const, rest = _plan(all_of)
        picked = list(rest)
        for key, branches in by_const.items():
            value = instance.get(key, _MISSING)
            if isinstance(value, str) and value in branches:
                picked.extend(branches[value])
        indices = sorted(picked)
    for index in indices:
        subschema = all_of[index]
        if (
            isinstance(subschema, dict)
            and subschema.keys() <= {"if", "then"}
            and "if" in subschema
            and not _quick_if(validator, subschema["if"], instance)
        ):
            continue
        yield from validator.descend(instance, subschema, schema_path=index)


def _one_of(validator: Any, one_of: Any, instance: Any, schema: Any) -> Any:
    # A node's ``oneOf`` is one ``{"required": [kind]}`` per kind: an object
    # with exactly one kind key passes, decided here without a sub-validator
    # per branch; anything else gets jsonschema's own ``oneOf`` and error.
    from jsonschema import Draft202012Validator

    if (
        isinstance(instance, dict)
        and isinstance(one_of, list)
        and all(isinstance(b, dict) and b.keys() == {"required"} and len(b["required"]) == 1 for b in one_of)
        and sum(b["required"][0] in instance for b in one_of) == 1
    ):
        return
    yield from Draft202012Validator.VALIDATORS["oneOf"](validator, one_of, instance, schema)


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    # JSON Schema counts 4.0 as an integer; Keras does not, so a spec may not.
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    # ``if``, ``allOf`` and ``oneOf`` are jsonschema's with a fast path for the
    # generated discriminators: validating a 4,000-node spec got 7-10x faster (docs/benchmarks.md).
    # ``pattern`` with ECMA-262's meaning (``$`` at the very end only), as editors apply it.
    strict = validators.extend(
        Draft202012Validator,
        validators={"if": _if, "allOf": _all_of, "oneOf": _one_of, "pattern": _pattern},
        type_checker=checker,
    )
    return strict(generate_schema())


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if isinstance(instance, str) and not pattern_matches(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_JSON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    for name, cls in _JSON_TYPES.items():
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _type_ok(value: Any, t: str) -> bool:
    actual = _json_type(value)
    return actual == t or (t == "number" and actual == "integer")


def _show(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 60 and "`" not in value:
        return f"`{value}`"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _owner(doc: Any, path: tuple[Any, ...]) -> str:
    """A few words naming what the object at ``path`` is, for messages."""
    if len(path) >= 3 and path[-1] == "config":
        parent = _get(doc, path[:-1])
        if isinstance(parent, dict):
            if "layer" in parent:
                return f"{parent['layer']} config"
            if "merge" in parent:
                return f"merge ({parent['merge']}) config"
    if len(path) >= 3 and path[0] == "outputs" and path[2] in ("loss", "metrics"):
        what = "loss" if path[2] == "loss" else "metric"
        value = _get(doc, path)
        name = value.get("name") if isinstance(value, dict) else None
        return f"{what} `{name}`" if isinstance(name, str) else what
    if len(path) == 2 and path[0] in ("nodes", "shared", "inputs", "outputs"):
        return {"nodes": "node", "shared": "shared layer", "inputs": "input", "outputs": "output"}[path[0]]
    if not path:
        return "spec"
    return str(path[-1])


def _get(doc: Any, path: Iterable[Any]) -> Any:
    for part in path:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


_ID_HINT = "ids use ASCII letters, digits and _, start with a letter and have at most 64 characters"

#: Keras's merge layer classes (lower case) -> the fusec merge mode that replaces them.
KERAS_MERGES = {
    "concatenate": "concat",
    "concat": "concat",
    "add": "add",
    "subtract": "subtract",
    "multiply": "multiply",
    "average": "average",
    "maximum": "maximum",
    "minimum": "minimum",
    "dot": "dot",
}


def _show_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _snake(name: str) -> str:
    """``HeNormal`` -> ``he_normal``, ``GlorotUniform`` -> ``glorot_uniform``."""
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return out.replace("__", "_")


def _type_problem(path: tuple[Any, ...], inst: Any, want: Any, schema: Mapping[str, Any], doc: Any) -> Problem:
    """One message for a value of the wrong JSON type: what was expected, what came, and the fix."""
    if path == ("fusec",):
        if isinstance(inst, float) and inst == 1:
            return Problem(
                path, f"the spec version is the integer 1. Received: {inst!r}", 'write "fusec": 1', "version"
            )
        return Problem(path, f"unsupported spec version {_show(inst)}", "this fusec reads version 1", "version")
    wanted = want if isinstance(want, list) else [want]
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    received = "null" if inst is None else f"{_json_type(inst)} {_show(inst)}"
    names = [c for c in schema.get("enum", []) if isinstance(c, str)]
    hint = ""
    if inst is None:
        hint = f"remove `{field}` to use its default" if field else ""
    elif names and isinstance(inst, dict):
        # A Keras object written out ({"class_name": "HeNormal", "config": {...}}): fusec takes the name.
        cls = inst.get("class_name")
        near = did_you_mean(_snake(cls), names) if isinstance(cls, str) else []
        example = near[0] if near else names[0]
        hint = f'write the name as a string, e.g. "{field}": "{example}"'
    elif field == "inputs":
        node = _get(doc, path[:-1])
        rule = MERGES.get(node.get("merge", "")) if isinstance(node, dict) else None
        if rule is not None and rule.slots:
            parts = ", ".join(
                f'"{k}": ' + ('["a", "b", ...]' if kind == "list" else "ID") for k, kind in rule.slots.items()
            )
            hint = f"a {rule.name} merge takes named inputs: write {{{parts}}}"
    message = f"expected {' or '.join(wanted)}. Received: {received}"
    if "integer" in wanted and isinstance(inst, float) and inst.is_integer() and not hint:
        hint = f"write it without a decimal point: {int(inst)}"
    if names and len(names) <= 40 and not hint:
        hint = f"valid: {quote_names(names)}"
    return Problem(path, message, hint, "schema")


def _name_problem(path: tuple[Any, ...], inst: Any, pattern: Any) -> Problem:
    """A name that breaks the names rule (or, for a sub-model's names, the looser external rule)."""
    if pattern not in (ID_PATTERN, INPUT_ID_PATTERN, REF_PATTERN):
        return Problem(path, f"{_show(inst)} is not a valid name", "use letters, digits and _, at most 64", "schema")
    text = str(inst)
    input_id = pattern == INPUT_ID_PATTERN
    if pattern == REF_PATTERN:
        head, _, port = text.partition(".")
        why = id_problem(head)
        if why:
            return Problem(
                path, f"{_show(inst)} is not a valid reference: {why}", f"e.g. `{derive_name(head)}`", "schema"
            )
        return Problem(
            path,
            f"{_show(inst)} is not a valid reference: `{port}` after the `.` is not an output index or output name",
            f"write `{head}` for its output, `{head}.1` for its second output, or `{head}.NAME` for a block's output",
            "schema",
        )
    example = derive_name(text)
    if not is_id(example, input_id):
        example += "_"  # a keyword
    fix = f"rename it, e.g. `{example}`; {_ID_HINT}"
    return Problem(path, f"{_show(inst)} is not a valid id: {id_problem(text, input_id)}", fix, "schema")


def _translate(err: Any, doc: Any) -> list[Problem]:
    path = tuple(err.absolute_path)
    v, inst, sv = err.validator, err.instance, err.validator_value
    schema = err.schema
    if v == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extras = [k for k in inst if k not in schema.get("properties", {})]
        out = []
        for key in extras:
            near = did_you_mean(key, allowed)
            if near:
                hint = f"did you mean `{near[0]}`?"
            elif allowed:
                hint = f"valid keys: {quote_names(allowed)}"
            else:
                hint = "this object takes no keys"
            out.append(Problem((*path, key), f"unknown key `{key}` in {_owner(doc, path)}", hint, "schema"))
        return out
    if v == "required":
        missing = [k for k in sv if k not in inst]
        return [Problem(path, f"{_owner(doc, path)} is missing the required key `{k}`", "", "schema") for k in missing]
    if v == "oneOf" and all(set(b) == {"required"} for b in sv):
        kinds = [b["required"][0] for b in sv]
        given = [k for k in kinds if isinstance(inst, dict) and k in inst]
        received = "none of them" if not given else "both " + " and ".join(f"`{k}`" for k in given)
        return [
            Problem(
                path,
                f"a node needs exactly one of {quote_names(kinds)}. Received: {received}",
                "keep one kind per node",
                "schema",
            )
        ]
    if v in ("oneOf", "anyOf"):
        fits = [i for i, b in enumerate(sv) if "type" in b and _type_ok(inst, b["type"])]
        if len(fits) == 1:
            sub = [e for e in err.context if e.schema_path and e.schema_path[0] == fits[0]]
            if sub:
                return [p for e in sub for p in _translate(e, doc)]
        types = [b.get("type", "value") for b in sv]
        return [
            Problem(
                path,
                f"expected {' or '.join(map(str, types))}. Received: {_show(inst)}",
                "",
                "schema",
            )
        ]
    if v == "not" and path:
        node = _get(doc, path[:-1])
        kind = next((k for k in KIND_KEYS if isinstance(node, dict) and k in node), "node")
        key = str(path[-1])
        why = _WHY_NOT.get((kind, key), f"valid keys: {quote_names(list(KIND_KEYS.get(kind, ())))}")
        return [Problem(path, f"a `{kind}` node cannot set `{key}`: {why}", "", "schema")]
    if v == "type":
        return [_type_problem(path, inst, sv, schema, doc)]
    if v == "enum":
        field = next((p for p in reversed(path) if isinstance(p, str)), "")  # `metrics`, not `0`
        if field == "layer" and isinstance(inst, str) and inst in REFUSED:
            return [Problem(path, f"layer `{inst}` is refused: it {REFUSED[inst]}", "", "refused")]
        tail = str(inst).split(".")[-1]  # `keras.layers.Dense` -> `Dense`
        if field == "layer" and tail.lower() in KERAS_MERGES:
            mode = KERAS_MERGES[tail.lower()]
            form = '{"experts": [...], "gate": ID}' if MERGES[mode].slots else "a list of ids"
            return [
                Problem(
                    path,
                    f"{_show(inst)} is a merge: fusec writes Keras's merge layers as merge nodes",
                    f'write "merge": "{mode}" instead of "{field}": {_show_json(inst)}, with "inputs" {form}',
                    "schema",
                )
            ]
        choices = [c for c in sv if c is not None]
        near = did_you_mean(str(inst), [str(c) for c in choices]) or did_you_mean(tail, [str(c) for c in choices])
        if field == "merge" and tail.lower() in KERAS_MERGES:
            near = [KERAS_MERGES[tail.lower()]]
        what = "layer type" if field == "layer" else "merge mode" if field == "merge" else f"value for `{field}`"
        hint = f"did you mean `{near[0]}`?" if near else f"valid: {quote_names([str(c) for c in choices])}"
        return [Problem(path, f"unknown {what} {_show(inst)}", hint, "schema")]
    if v == "const" and path == ("fusec",):
        return [Problem(path, f"unsupported spec version {_show(inst)}", f"this fusec reads version {sv}", "version")]
    if v == "pattern" and "propertyNames" in err.absolute_schema_path:
        return [_name_problem((*path, inst), inst, sv)]
    if v == "pattern":
        return [_name_problem(path, inst, sv)]
    if v == "propertyNames":
        return [_name_problem((*path, inst), inst, sv.get("pattern") if isinstance(sv, dict) else ID_PATTERN)]
    bounds = {
        "minimum": ">=",
        "maximum": "<=",
        "exclusiveMinimum": ">",
        "exclusiveMaximum": "<",
    }
    if v in bounds:
        return [Problem(path, f"must be {bounds[v]} {sv}. Received: {_show(inst)}", "", "schema")]
    return [Problem(path, err.message, "", "schema")]


def validate_schema(doc: Any, file: str | None = None) -> None:
    """Validate a loaded document against the spec schema.

    Args:
        doc: the parsed spec.
        file: the file name for messages.

    Raises:
        SchemaError: with every violation, the best match first.
    """
    problems = schema_problems(doc)
    if problems:
        raise SchemaError(problems, file=file)


#: Keywords that judge one value; when several fail on one value, one message says it (in this order).
_VALUE_KEYWORDS = (
    "type", "const", "enum", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "multipleOf",
)  # fmt: skip


def _is_kind_error(err: Any) -> bool:
    return bool(err.validator == "oneOf" and err.path and all(set(b) == {"required"} for b in err.validator_value))


def _two_kinds(err: Any) -> bool:
    """A kind error for a node that has several kind keys (``layer`` and ``merge``, say)."""
    return (
        _is_kind_error(err)
        and isinstance(err.instance, dict)
        and sum(b["required"][0] in err.instance for b in err.validator_value) > 1
    )


def schema_problems(doc: Any) -> list[Problem]:
    """Every violation of the spec schema in a loaded document, translated.

    One problem per bad value (a value that is both of the wrong type and not
    in the list gets the clearer of the two messages), the best match first.

    Args:
        doc: the parsed spec.

    Returns:
        The problems; empty when the document is valid.
    """
    from jsonschema.exceptions import best_match

    if _fast()(doc):
        return []
    doc, skipped = _failing_part(doc)
    errors = list(_validator().iter_errors(doc))
    if not errors:
        return skipped
    # One error per value: of the value keywords failing at one path, keep the first in _VALUE_KEYWORDS.
    rank = {k: i for i, k in enumerate(_VALUE_KEYWORDS)}
    judged: dict[tuple[Any, ...], Any] = {}
    for e in errors:
        if e.validator in rank:
            where = tuple(e.absolute_path)
            if where not in judged or rank[e.validator] < rank[judged[where].validator]:
                judged[where] = e
    errors = [e for e in errors if e.validator not in rank or judged[tuple(e.absolute_path)] is e]
    best = best_match(errors)
    ordered = [best] + sorted((e for e in errors if e is not best), key=lambda e: [str(p) for p in e.absolute_path])
    # A node that is two kinds at once also breaks each kind's rules (a merge's
    # keys are wrong for a layer...); only the kind error is worth reading.
    confused = {tuple(e.absolute_path) for e in errors if _two_kinds(e)}
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in ordered:
        where = tuple(err.absolute_path)
        if not _is_kind_error(err) and any(where[: len(c)] == c for c in confused):
            continue
        for p in _translate(err, doc):
            key = (p.jsonpath, p.message)
            if key not in seen:
                seen.add(key)
                problems.append(p)
    return problems + skipped


#: entries whose schema errors are spelled out; past this, each failing entry gets one short line
MAX_DETAILED = 100


@lru_cache(maxsize=1)
def _compiler() -> SchemaCompiler:
    """One fastschema compiler for the generated schema: each ``$ref`` target is compiled once for all checks."""
    return SchemaCompiler(generate_schema(), pattern_matches)


@lru_cache(maxsize=1)
def _fast() -> Any:
    """The yes/no check of the whole schema (fastschema), compiled once."""
    return _compiler().compile(_compiler().root)


@lru_cache(maxsize=1)
def _entry_checks() -> dict[str, tuple[Any, Any]]:
    """For each section: (id check, entry check), compiled from the section's schema."""
    compiler = _compiler()
    checks = {}
    for section in _SECTIONS:
        sub = compiler.root["properties"][section]
        checks[section] = (
            compiler.compile(sub.get("propertyNames", True)),
            compiler.compile(sub.get("additionalProperties", True)),
        )
    return checks


_SECTIONS = ("inputs", "shared", "blocks", "nodes", "outputs")


def _failing_part(doc: Any) -> tuple[Any, list[Problem]]:
    """The part of an invalid spec jsonschema must explain, and a short problem for each entry left out.

    jsonschema spends about 0.1 ms per entry whether or not the entry is
    valid, so only the entries the fast check refuses are handed to it (one
    valid entry stays in a section that had no failure, so a section's own
    rules such as ``minProperties`` still hold), and only the first
    MAX_DETAILED of them: a file of 20,000 mistyped nodes is answered in
    linear time with 100 detailed messages and one line for each other entry.
    """
    if not isinstance(doc, dict) or any(not isinstance(doc.get(s, {}), dict) for s in _SECTIONS):
        return doc, []
    checks = _entry_checks()
    part = dict(doc)
    skipped: list[Problem] = []
    budget = MAX_DETAILED
    for section in _SECTIONS:
        if section not in doc:
            continue
        id_ok, entry_ok = checks[section]
        failing = [k for k, v in doc[section].items() if not (id_ok(k) and entry_ok(v))]
        if not failing:
            part[section] = dict(list(doc[section].items())[:1])
            continue
        shown, rest = failing[:budget], failing[budget:]
        budget -= len(shown)
        part[section] = {k: doc[section][k] for k in shown}
        skipped += [
            Problem(
                (section, k),
                f"`{section}.{k}` does not match the schema",
                f"fix the {MAX_DETAILED} entries explained above first, then check again",
                "schema",
            )
            for k in rest
        ]
    return part, skipped
