"""Schema errors in words: each jsonschema error becomes problems that name the rule, what came and the fix.

``translate`` looks the failing keyword up in HANDLERS, a table of small
functions (one per keyword, like jsonschema's own keyword registry); a
keyword without one keeps jsonschema's message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ...errors import Problem, did_you_mean, quote_names
from ...vocab.layers import REFUSED
from ...vocab.merges import MERGES
from .generate import KIND_KEYS
from .names import ID_PATTERN, INPUT_ID_PATTERN, REF_PATTERN, derive_name, id_problem, is_id

#: Why a kind of node may not set a key (else the message lists the keys it may set).
_WHY_NOT = {
    ("shared", "config"): "every call uses the shared layer's own; set it on the layer under `shared`",
    ("shared", "trainable"): "every call uses the shared layer's own; set it on the layer under `shared`",
    ("merge", "trainable"): "it has no weights to freeze",
}

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
#: Keras merge layer names (lower case) -> the merge mode that writes them, from the merge rules.
KERAS_MERGES = {r.keras.lower(): m for m, r in MERGES.items() if r.keras_home == "keras.layers"} | {"concat": "concat"}


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


Handler = Callable[[Any, tuple[Any, ...], Any], list[Problem]]


def _plain(err: Any, path: tuple[Any, ...]) -> list[Problem]:
    """jsonschema's own message, for a keyword (or a form of one) without a handler."""
    return [Problem(path, err.message, "", "schema")]


def _additional_properties(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    """An unknown key: the nearest valid key, or the valid ones."""
    known = err.schema.get("properties", {})
    allowed = sorted(known)
    out = []
    for key in (k for k in err.instance if k not in known):
        near = did_you_mean(key, allowed)
        if near:
            hint = f"did you mean `{near[0]}`?"
        elif allowed:
            hint = f"valid keys: {quote_names(allowed)}"
        else:
            hint = "this object takes no keys"
        out.append(Problem((*path, key), f"unknown key `{key}` in {_owner(doc, path)}", hint, "schema"))
    return out


def _required(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    """One problem per missing key."""
    missing = [k for k in err.validator_value if k not in err.instance]
    cls = err.instance.get("class_name") if isinstance(err.instance, dict) else None
    if missing == ["name"] and isinstance(cls, str) and path and isinstance(path[-1], str):
        # Keras's serialized form ({"class_name": "HeNormal", "config": {...}}): fusec takes the snake-case name.
        field, name = path[-1], _snake(cls)
        return [
            Problem(
                path,
                f"`{field}` is written as a Keras object (`class_name` {_show(cls)}); fusec writes it by name",
                f'write "{field}": "{name}", or {{"name": "{name}", ...its arguments}}',
                "schema",
            )
        ]
    return [Problem(path, f"{_owner(doc, path)} is missing the required key `{k}`", "", "schema") for k in missing]


def _one_of(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    """A node with no kind key or several (the node's ``oneOf`` of ``required``), else as ``anyOf``."""
    branches = err.validator_value
    if not all(set(b) == {"required"} for b in branches):
        return _any_of(err, path, doc)
    kinds = [b["required"][0] for b in branches]
    given = [k for k in kinds if isinstance(err.instance, dict) and k in err.instance]
    received = "none of them" if not given else "both " + " and ".join(f"`{k}`" for k in given)
    message = f"a node needs exactly one of {quote_names(kinds)}. Received: {received}"
    return [Problem(path, message, "keep one kind per node", "schema")]


def _any_of(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    """A union: the branch of the value's type explains, else the types expected."""
    branches, inst = err.validator_value, err.instance
    fits = [i for i, b in enumerate(branches) if "type" in b and _type_ok(inst, b["type"])]
    if len(fits) == 1:
        sub = [e for e in err.context if e.schema_path and e.schema_path[0] == fits[0]]
        if sub:
            return [p for e in sub for p in translate(e, doc)]
    types = [b.get("type", "value") for b in branches]
    return [Problem(path, f"expected {' or '.join(map(str, types))}. Received: {_show(inst)}", "", "schema")]


def _not(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    """A key that this kind of node may not set."""
    if not path:
        return _plain(err, path)
    if err.validator_value == {"$ref": "#/$defs/with_param"}:
        message = 'a {"$param": NAME} has a value only in the config of a block\'s node'
        return [Problem(path, message, "write the value itself, or move the node into a block", "schema")]
    node = _get(doc, path[:-1])
    kind = next((k for k in KIND_KEYS if isinstance(node, dict) and k in node), "node")
    key = str(path[-1])
    why = _WHY_NOT.get((kind, key), f"valid keys: {quote_names(list(KIND_KEYS.get(kind, ())))}")
    return [Problem(path, f"a `{kind}` node cannot set `{key}`: {why}", "", "schema")]


def _type(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    return [_type_problem(path, err.instance, err.validator_value, err.schema, doc)]


def _enum(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    """An unknown name: a refused layer, a Keras merge written as a layer, or the nearest valid name."""
    inst = err.instance
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
    choices = [str(c) for c in err.validator_value if c is not None]
    near = did_you_mean(str(inst), choices) or did_you_mean(tail, choices)
    if field == "merge" and tail.lower() in KERAS_MERGES:
        near = [KERAS_MERGES[tail.lower()]]
    what = "layer type" if field == "layer" else "merge mode" if field == "merge" else f"value for `{field}`"
    hint = f"did you mean `{near[0]}`?" if near else f"valid: {quote_names(choices)}"
    return [Problem(path, f"unknown {what} {_show(inst)}", hint, "schema")]


def _const(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    """Another spec version (the only ``const`` with its own message)."""
    if path != ("fusec",):
        return _plain(err, path)
    message = f"unsupported spec version {_show(err.instance)}"
    return [Problem(path, message, f"this fusec reads version {err.validator_value}", "version")]


def _pattern(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    """A name that breaks the names rule; under ``propertyNames`` the name is a key, so the path ends with it."""
    if "propertyNames" in err.absolute_schema_path:
        path = (*path, err.instance)
    return [_name_problem(path, err.instance, err.validator_value)]


def _property_names(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
    sv = err.validator_value
    return [
        _name_problem((*path, err.instance), err.instance, sv.get("pattern") if isinstance(sv, dict) else ID_PATTERN)
    ]


def _bound(op: str) -> Handler:
    def bound(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
        return [Problem(path, f"must be {op} {err.validator_value}. Received: {_show(err.instance)}", "", "schema")]

    return bound


def _size(what: str, op: str) -> Handler:
    """Too many or too few items, characters or keys: the count, never the whole value."""

    def size(err: Any, path: tuple[Any, ...], doc: Any) -> list[Problem]:
        inst = err.instance
        got = len(inst) if isinstance(inst, (list, str, dict)) else inst
        unit = {"items": "entries", "length": "characters", "properties": "keys"}[what]
        if op == "at least" and err.validator_value == 1:
            return [Problem(path, f"must not be empty. Received: {_show(inst)}", "", "schema")]
        return [Problem(path, f"must hold {op} {err.validator_value:,} {unit}. Received: {got:,}", "", "schema")]

    return size


#: The failing keyword -> its handler.
HANDLERS: dict[str, Handler] = {
    "additionalProperties": _additional_properties,
    "required": _required,
    "oneOf": _one_of,
    "anyOf": _any_of,
    "not": _not,
    "type": _type,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "propertyNames": _property_names,
    "minimum": _bound(">="),
    "maximum": _bound("<="),
    "exclusiveMinimum": _bound(">"),
    "exclusiveMaximum": _bound("<"),
    "maxItems": _size("items", "at most"),
    "minItems": _size("items", "at least"),
    "maxLength": _size("length", "at most"),
    "minLength": _size("length", "at least"),
    "maxProperties": _size("properties", "at most"),
    "minProperties": _size("properties", "at least"),
}


def translate(err: Any, doc: Any) -> list[Problem]:
    """The problems one jsonschema error stands for.

    Args:
        err: a ``jsonschema.ValidationError``.
        doc: the whole document (messages name what holds the value).

    Returns:
        One problem or more (an unknown key each, a missing key each).
    """
    path = tuple(err.absolute_path)
    handler = HANDLERS.get(err.validator)
    return handler(err, path, doc) if handler is not None else _plain(err, path)
