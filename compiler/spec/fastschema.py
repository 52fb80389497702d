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

import operator
import re
from collections.abc import Callable, Mapping, Sized
from typing import Any

Check = Callable[[Any], bool]

#: keywords that never change a verdict
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$id", "$schema", "$comment", "$defs", "deprecated",
     "markdownDescription", "defaultSnippets", "readOnly", "writeOnly", "format", "then", "else",
     # editors' annotations (VS Code's JSON language service): no effect on validation
     "enumDescriptions", "markdownEnumDescriptions", "deprecationMessage", "errorMessage", "doNotSuggest",
     "suggestSortText"}
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

    def ref(self, ref: str) -> Check:
        """``$ref`` to a place in the root (``#/$defs/name``), compiled once however often it is used."""
        if not ref.startswith("#/"):
            raise NotImplementedError(f"only local $ref is supported, not {ref!r}")
        slot = self._refs.get(ref)
        if slot is None:
            slot = self._refs[ref] = []
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            slot.append(self.compile(target))
        if slot:
            return slot[0]
        return lambda v: slot[0](v)  # a recursive definition, still being compiled: bound when it is

    def properties(self, value: Any) -> Check:
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

    def all_of(self, branches: list[Any]) -> Check:
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
        """The predicate of one keyword (None when it cannot fail)."""
        handler = _KEYWORDS.get(key)
        if handler is None:
            raise NotImplementedError(f"JSON Schema keyword {key!r} is not supported by fastschema")
        return handler(self, value, schema)


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


# --- the keywords: each a small function (compiler, keyword value, whole schema) -> predicate ---

Keyword = Callable[[SchemaCompiler, Any, Mapping[str, Any]], "Check | None"]


def _type(_c: SchemaCompiler, value: Any, _s: Mapping[str, Any]) -> Check:
    types = [_TYPES[t] for t in ([value] if isinstance(value, str) else value)]
    return types[0] if len(types) == 1 else lambda v: any(t(v) for t in types)


def _enum(_c: SchemaCompiler, value: Any, _s: Mapping[str, Any]) -> Check:
    hashable = {x for x in value if isinstance(x, str)}
    if len(hashable) == len(value):  # names only: a set lookup
        return lambda v: isinstance(v, str) and v in hashable
    return lambda v: any(json_equal(v, x) for x in value)


def _bound(compare: Callable[[Any, Any], bool]) -> Keyword:
    """``minimum`` and its kin: they judge numbers only."""
    return lambda _c, value, _s: lambda v: not _is_number(v) or compare(v, value)


def _size(kind: type[Sized], compare: Callable[[int, Any], bool]) -> Keyword:
    """``minLength``, ``maxItems`` and their kin: the length of a string, list or object."""
    return lambda _c, value, _s: lambda v: not isinstance(v, kind) or compare(len(v), value)


def _pattern(c: SchemaCompiler, value: Any, _s: Mapping[str, Any]) -> Check:
    match = c.pattern
    return lambda v: not isinstance(v, str) or match(value, v)


def _unique_items(_c: SchemaCompiler, value: Any, _s: Mapping[str, Any]) -> Check | None:
    return (lambda v: not isinstance(v, list) or _unique(v)) if value else None


def _items(c: SchemaCompiler, value: Any, schema: Mapping[str, Any]) -> Check:
    if "prefixItems" in schema:
        raise NotImplementedError("prefixItems")
    item = c.compile(value)
    return lambda v: not isinstance(v, list) or all(item(x) for x in v)


def _additional_properties(c: SchemaCompiler, value: Any, schema: Mapping[str, Any]) -> Check:
    """Alone (``compile`` folds it into ``properties`` when the schema has both)."""
    known = set(schema.get("properties", {}))
    if "patternProperties" in schema:
        raise NotImplementedError("patternProperties")
    extra = c.compile(value)
    return lambda v: not isinstance(v, dict) or all(extra(x) for k, x in v.items() if k not in known)


def _contains(c: SchemaCompiler, value: Any, schema: Mapping[str, Any]) -> Check:
    if "minContains" in schema or "maxContains" in schema:
        raise NotImplementedError("minContains/maxContains")
    item = c.compile(value)
    return lambda v: not isinstance(v, list) or any(item(x) for x in v)


def _property_names(c: SchemaCompiler, value: Any, _s: Mapping[str, Any]) -> Check:
    name = c.compile(value)
    return lambda v: not isinstance(v, dict) or all(name(k) for k in v)


def _if(c: SchemaCompiler, value: Any, schema: Mapping[str, Any]) -> Check:
    cond = c.compile(value)
    then = c.compile(schema.get("then", True))
    other = c.compile(schema.get("else", True))
    return lambda v: then(v) if cond(v) else other(v)


def _any_of(c: SchemaCompiler, value: Any, _s: Mapping[str, Any]) -> Check:
    parts = [c.compile(s) for s in value]
    return lambda v: any(p(v) for p in parts)


def _one_of(c: SchemaCompiler, value: Any, _s: Mapping[str, Any]) -> Check:
    parts = [c.compile(s) for s in value]
    return lambda v: sum(1 for p in parts if p(v)) == 1


def _not(c: SchemaCompiler, value: Any, _s: Mapping[str, Any]) -> Check:
    inner = c.compile(value)
    return lambda v: not inner(v)


_KEYWORDS: dict[str, Keyword] = {
    "type": _type,
    "const": lambda _c, value, _s: lambda v: json_equal(v, value),
    "enum": _enum,
    "minimum": _bound(operator.ge),
    "maximum": _bound(operator.le),
    "exclusiveMinimum": _bound(operator.gt),
    "exclusiveMaximum": _bound(operator.lt),
    "minLength": _size(str, operator.ge),
    "maxLength": _size(str, operator.le),
    "pattern": _pattern,
    "minItems": _size(list, operator.ge),
    "maxItems": _size(list, operator.le),
    "uniqueItems": _unique_items,
    "items": _items,
    "contains": _contains,
    "minProperties": _size(dict, operator.ge),
    "maxProperties": _size(dict, operator.le),
    "required": lambda _c, value, _s: lambda v: not isinstance(v, dict) or all(k in v for k in value),
    "properties": lambda c, value, _s: c.properties(value),
    "additionalProperties": _additional_properties,
    "propertyNames": _property_names,
    "if": _if,
    "allOf": lambda c, value, _s: c.all_of(value),
    "anyOf": _any_of,
    "oneOf": _one_of,
    "not": _not,
    "$ref": lambda c, value, _s: c.ref(value),
}


def compile_schema(root: Mapping[str, Any], pattern: Callable[[str, str], bool] | None = None) -> Check:
    """One predicate for the whole schema ``root``: ``True`` when jsonschema would find no error."""
    return SchemaCompiler(root, pattern).compile(root)
