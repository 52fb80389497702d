"""A yes/no JSON Schema check, compiled once into closures, for the keywords fusec's schema uses.

jsonschema answers *why* a value is invalid, and pays for it on every value:
each keyword builds a sub-validator and an error object, so a valid
20,000-node spec took two seconds to pass. Most specs are valid, and most
entries of an invalid one are too; this module answers only *whether* a
value is valid, with every keyword of the schema turned into a small
closure once (a keyword registry, like jsonschema's, without the error
machinery). ``schema.schema_problems`` asks it first and hands only the
entries it refuses to jsonschema for messages.

The verdict must equal jsonschema's for every document: the keywords are
the Draft 2020-12 ones the generated schema uses, with fusec's strict
``integer`` (``4.0`` is not an integer); a keyword this module does not know
is refused when the schema is compiled, never guessed at. tests/test_schema.py
compares the two verdicts on mutated specs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

#: keywords that never change a verdict
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$id", "$schema", "$comment", "$defs", "deprecated",
     "markdownDescription", "defaultSnippets", "readOnly", "writeOnly", "format", "then", "else"}
)  # fmt: skip


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
}


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema means it: ``1 == 1.0``, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _key(value: Any) -> Any:
    """A hashable key, equal for two values exactly when ``json_equal`` says so."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, float) and value.is_integer():
        return ("number", int(value))
    if _is_number(value):
        return ("number", value)
    if isinstance(value, list):
        return ("array", tuple(_key(x) for x in value))
    return ("object", frozenset((k, _key(x)) for k, x in value.items()))


def _unique(items: list[Any]) -> bool:
    """``uniqueItems`` in linear time (hashing), not by comparing every pair."""
    return len({_key(x) for x in items}) == len(items)


class SchemaCompiler:
    """Turns a schema (and the ``$defs`` it refers to) into one predicate.

    Args:
        root: the whole schema (``$ref`` targets are looked up in it).
        pattern: how ``pattern`` matches a string (jsonschema's ``re.search``
            unless the caller's validator uses another rule).
    """

    def __init__(self, root: Mapping[str, Any], pattern: Callable[[str, str], bool] | None = None) -> None:
        self.root = root
        self.pattern = pattern or (lambda p, s: re.search(p, s) is not None)
        self._refs: dict[str, list[Check]] = {}

    def compile(self, schema: Any) -> Check:
        """The predicate for ``schema``."""
        if schema is True or schema == {}:
            return lambda _v: True
        if schema is False:
            return lambda _v: False
        if "properties" in schema and "additionalProperties" in schema:
            merged = {k: v for k, v in schema.items() if k != "additionalProperties"}
            merged["properties"] = (schema["properties"], schema["additionalProperties"])
            schema = merged
        found = (self._keyword(k, v, schema) for k, v in schema.items() if k not in _ANNOTATIONS)
        checks = tuple(c for c in found if c is not None)
        if len(checks) == 1:
            return checks[0]

        def every(v: Any) -> bool:  # a loop: faster than all() over a generator on this hot path
            for c in checks:  # noqa: SIM110
                if not c(v):
                    return False
            return True

        return every

    def _ref(self, ref: str) -> Check:
        if not ref.startswith("#/"):
            raise NotImplementedError(f"only local $ref is supported, not {ref!r}")
        slot = self._refs.get(ref)
        if slot is None:
            slot = self._refs[ref] = []
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            slot.append(self.compile(target))
        return lambda v: slot[0](v)  # late-bound: recursive definitions compile once

    def _properties(self, value: Any) -> Check:
        """``properties`` (with ``additionalProperties`` when the schema has both), looping over the object's keys."""
        props_schema, extra_schema = value if isinstance(value, tuple) else (value, True)
        props = {k: self.compile(s) for k, s in props_schema.items()}
        extra = None if extra_schema is True else self.compile(extra_schema)

        def properties(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for k, x in v.items():
                c = props.get(k, extra)
                if c is not None and not c(x):
                    return False
            return True

        return properties

    def _all_of(self, branches: list[Any]) -> Check:
        """``allOf``, with ``if {K: const V} then T`` branches looked up by the value at K.

        The generated node schema holds one such branch per layer and merge;
        on an object only the branches whose ``if`` holds can fail, so those
        are found by key instead of tried one by one. On anything else the
        ``if`` holds vacuously (as JSON Schema says) and every branch applies.
        """
        every = [self.compile(s) for s in branches]
        indexed: dict[str, dict[Any, list[Check]]] = {}
        rest: list[Check] = []
        for sub, check in zip(branches, every, strict=True):
            found = _discriminated(sub)
            if found is None:
                rest.append(check)
            else:
                key, const, then = found
                indexed.setdefault(key, {}).setdefault(const, []).append(self.compile(then))

        def all_of(v: Any) -> bool:
            if not isinstance(v, dict):
                return all(c(v) for c in every)
            if not all(c(v) for c in rest):
                return False
            for key, by_value in indexed.items():
                x = v.get(key)
                if isinstance(x, str):
                    for c in by_value.get(x, ()):
                        if not c(v):
                            return False
            return True

        return all_of

    def _keyword(self, key: str, value: Any, schema: Mapping[str, Any]) -> Check | None:
        if key == "type":
            types = [_TYPES[t] for t in ([value] if isinstance(value, str) else value)]
            return types[0] if len(types) == 1 else lambda v: any(t(v) for t in types)
        if key == "const":
            return lambda v: json_equal(v, value)
        if key == "enum":
            hashable = {x for x in value if isinstance(x, str)}
            if len(hashable) == len(value):
                return lambda v: isinstance(v, str) and v in hashable
            return lambda v: any(json_equal(v, x) for x in value)
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            op = {
                "minimum": lambda v: v >= value,
                "maximum": lambda v: v <= value,
                "exclusiveMinimum": lambda v: v > value,
                "exclusiveMaximum": lambda v: v < value,
            }[key]
            return lambda v: not _is_number(v) or op(v)
        if key == "minLength":
            return lambda v: not isinstance(v, str) or len(v) >= value
        if key == "maxLength":
            return lambda v: not isinstance(v, str) or len(v) <= value
        if key == "pattern":
            match = self.pattern
            return lambda v: not isinstance(v, str) or match(value, v)
        if key == "minItems":
            return lambda v: not isinstance(v, list) or len(v) >= value
        if key == "maxItems":
            return lambda v: not isinstance(v, list) or len(v) <= value
        if key == "uniqueItems":
            if not value:
                return None
            return lambda v: not isinstance(v, list) or _unique(v)
        if key == "items":
            if "prefixItems" in schema:
                raise NotImplementedError("prefixItems")
            item = self.compile(value)
            return lambda v: not isinstance(v, list) or all(item(x) for x in v)
        if key == "minProperties":
            return lambda v: not isinstance(v, dict) or len(v) >= value
        if key == "maxProperties":
            return lambda v: not isinstance(v, dict) or len(v) <= value
        if key == "required":
            return lambda v: not isinstance(v, dict) or all(k in v for k in value)
        if key == "properties":
            return self._properties(value)
        if key == "additionalProperties":
            known = set(schema.get("properties", {}))
            if "patternProperties" in schema:
                raise NotImplementedError("patternProperties")
            extra = self.compile(value)
            return lambda v: not isinstance(v, dict) or all(extra(x) for k, x in v.items() if k not in known)
        if key == "propertyNames":
            name = self.compile(value)
            return lambda v: not isinstance(v, dict) or all(name(k) for k in v)
        if key == "if":
            cond = self.compile(value)
            then = self.compile(schema.get("then", True))
            other = self.compile(schema.get("else", True))
            return lambda v: then(v) if cond(v) else other(v)
        if key == "allOf":
            return self._all_of(value)
        if key == "anyOf":
            parts = [self.compile(s) for s in value]
            return lambda v: any(p(v) for p in parts)
        if key == "oneOf":
            parts = [self.compile(s) for s in value]
            return lambda v: sum(1 for p in parts if p(v)) == 1
        if key == "not":
            inner = self.compile(value)
            return lambda v: not inner(v)
        if key == "$ref":
            return self._ref(value)
        raise NotImplementedError(f"JSON Schema keyword {key!r} is not supported by fastschema")


def _discriminated(sub: Any) -> tuple[str, str, Any] | None:
    """``(K, V, then)`` for ``{"if": {"properties": {K: {"const": V}}, "required": [K]}, "then": then}``, V a string."""
    if not isinstance(sub, dict) or sub.keys() != {"if", "then"}:
        return None
    cond = sub["if"]
    if not isinstance(cond, dict) or cond.keys() != {"properties", "required"}:
        return None
    required, props = cond["required"], cond["properties"]
    if not (
        isinstance(required, list) and len(required) == 1 and isinstance(props, dict) and props.keys() == {required[0]}
    ):
        return None
    prop = props[required[0]]
    if isinstance(prop, dict) and prop.keys() == {"const"} and isinstance(prop["const"], str):
        return required[0], prop["const"], sub["then"]
    return None


def compile_schema(root: Mapping[str, Any], pattern: Callable[[str, str], bool] | None = None) -> Check:
    """One predicate for the whole schema ``root``: ``True`` when jsonschema would find no error."""
    return SchemaCompiler(root, pattern).compile(root)
