"""jsonschema's Draft 2020-12 validator, with fast paths for the forms the generator writes.

A node's ``allOf`` holds one ``if {layer: X} then {config...}`` branch per
layer and merge, and its ``oneOf`` one ``{"required": [kind]}`` per kind:
the overridden keywords decide those without building a sub-validator per
branch. The errors, their order and their paths are jsonschema's own.
``integer`` is strict (``4.0`` is not one, as in Keras), and ``pattern``
has ECMA-262's meaning, as editors apply it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from .generate import generate_schema
from .names import pattern_matches

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
def detailed_validator() -> Any:
    """jsonschema's validator of the generated schema, with the fast paths above (built once)."""
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
