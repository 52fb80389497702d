"""Validation against the spec schema: a fast yes/no first, then every violation in words.

Most specs are valid, and most entries of an invalid one are too: fastschema
answers *whether* in linear time, and only the entries it refuses are handed
to jsonschema, which says *why*. Every violation is reported, the best match
first, each translated by ``messages``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ...errors import Problem, SchemaError
from ..fastschema import SchemaCompiler
from .committed import committed_schema
from .names import pattern_matches


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
    if fast_check()(doc):
        return []
    # Only for a failing spec: jsonschema costs ~0.1 s to import, the generated schema ~0.05 s to build.
    from jsonschema.exceptions import best_match

    from .messages import translate
    from .validator import detailed_validator

    doc, skipped = _failing_part(doc)
    errors = list(detailed_validator().iter_errors(doc))
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
        for p in translate(err, doc):
            key = (p.jsonpath, p.message)
            if key not in seen:
                seen.add(key)
                problems.append(p)
    return problems + skipped


#: entries whose schema errors are spelled out; past this, each failing entry gets one short line
MAX_DETAILED = 100


@lru_cache(maxsize=1)
def _compiler() -> SchemaCompiler:
    """One fastschema compiler for the (committed) schema: each ``$ref`` target is compiled once for all checks."""
    return SchemaCompiler(committed_schema(), pattern_matches)


@lru_cache(maxsize=1)
def fast_check() -> Any:
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


@lru_cache(maxsize=1)
def _node_check() -> Any:
    """The yes/no check of one plain node (``$defs/node``), compiled once."""
    return _compiler().ref("#/$defs/node")


def node_problems(node: Any, path: tuple[Any, ...]) -> list[Problem]:
    """Every violation of the plain-node schema by ``node``, as problems at ``path`` (and below).

    The expansion stage checks a block node this way once an instance has
    given its parameters: the same schema, the same messages, as if the
    substituted node had been written at ``path``.
    """
    if _node_check()(node):
        return []
    from .messages import translate  # only for a failing node (see schema_problems)
    from .validator import detailed_validator

    validator = detailed_validator().evolve(schema={"$ref": "#/$defs/node"})
    doc: Any = node
    for part in reversed(path):
        doc = {part: doc}
    problems: list[Problem] = []
    for err in validator.iter_errors(node):
        err.path.extendleft(reversed(path))
        for p in translate(err, doc):
            if p not in problems:
                problems.append(p)
    return problems
