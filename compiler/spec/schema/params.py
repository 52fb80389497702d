"""The schema of block parameters and ``repeat``: what a definition declares and an instance passes.

A block definition declares ``params`` (``{"filters": {"doc": ..., "default": 64}}``);
any value inside a config of one of its nodes may be ``{"$param": "filters"}``.
Such a config cannot be judged before an instance gives the value, so a block
node's config that holds a ``$param`` anywhere (``with_param``) is checked by
the expansion stage after substitution, by this same schema; a config without
one is checked here, like a plain node's.
"""

from __future__ import annotations

from typing import Any

from .names import ID_PATTERN

#: Most parameters one block may declare, and copies one ``repeat`` may ask for.
MAX_PARAMS = 256
MAX_REPEAT = 4096

BLOCK_NODE_NOTE = (
    ' In a block definition (only), any value inside `config` may be {"$param": NAME}: '
    "the instance's value of that parameter."
)

#: ``$defs`` entries: the ``$param`` reference and "this value holds one, at any depth".
_PARAM = {
    "type": "object",
    "title": "parameter reference",
    "description": 'The value of the block parameter NAME, given by each instance: {"$param": NAME}.',
    "properties": {
        "$param": {"type": "string", "pattern": ID_PATTERN, "title": "$param", "description": "The parameter's name."}
    },
    "required": ["$param"],
    "additionalProperties": False,
}

#: Its explanation is a ``$comment``, not a title: editors show the first title among the schemas a
#: value matches, and this one (tried on every config value of a block's node) would hide the key's own.
_WITH_PARAM = {
    "$comment": 'A value with a {"$param": NAME} somewhere inside (checked once the instance gives it).',
    "anyOf": [
        {"type": "object", "required": ["$param"]},
        {"type": "object", "not": {"additionalProperties": {"not": {"$ref": "#/$defs/with_param"}}}},
        {"type": "array", "contains": {"$ref": "#/$defs/with_param"}},
    ],
}


def param_defs() -> dict[str, Any]:
    """The ``$defs`` entries block parameters use (``param``, ``with_param``)."""
    return {"param": dict(_PARAM), "with_param": dict(_WITH_PARAM)}


def block_params_schema() -> dict[str, Any]:
    """A block definition's ``params``: each parameter's doc and optional default."""
    return {
        "type": "object",
        "title": "params",
        "description": "Parameters each instance gives (or takes the default of); the block's node configs "
        'use them as {"$param": NAME}.',
        "propertyNames": {"pattern": ID_PATTERN},
        "maxProperties": MAX_PARAMS,
        "additionalProperties": {
            "type": "object",
            "title": "parameter",
            "description": "One block parameter: without `default`, every instance must give it.",
            "properties": {
                "doc": {"type": "string", "maxLength": 2000, "title": "doc", "description": "What it sets."},
                "default": {"title": "default", "description": "The value an instance that omits it gets."},
            },
            "additionalProperties": False,
        },
    }


def instance_params_schema() -> dict[str, Any]:
    """A block instance's ``params``: a value for each parameter of the block (any JSON value)."""
    return {
        "type": "object",
        "title": "params",
        "description": "Values of the block's parameters for this instance, by name; inside a block definition "
        'a value may be {"$param": NAME} to pass the enclosing block\'s parameter through.',
        "propertyNames": {"pattern": ID_PATTERN},
        "maxProperties": MAX_PARAMS,
    }


def repeat_schema() -> dict[str, Any]:
    """A block instance's ``repeat``: copies chained one after the other."""
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_REPEAT,
        "title": "repeat",
        "description": "Chain this many copies of a block with one input and one output, each fed by the one "
        "before; the instance's output is the last copy's. Copy k's nodes are named INSTANCE__k__node.",
    }
