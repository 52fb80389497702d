"""fastschema's yes/no verdict equals jsonschema's, on every bundled spec and on random mutations of them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SPECS
from fusec.spec.fastschema import SchemaCompiler, _unique, compile_schema, json_equal
from fusec.spec.schema import detailed_validator, fast_check, generate_schema, schema_problems

BUNDLED = sorted(SPECS.glob("*.json"))
DOCS = [json.loads(p.read_text(encoding="utf-8")) for p in BUNDLED]

#: values a mutation may put anywhere: each type, the integer/float edge, bounds, names from the vocabulary
SCALARS = st.sampled_from(
    [0, 1, -1, 2, 4, 1.0, 4.0, 0.5, -0.5, 1e9, 2**63, "", "x", "relu", "Dense", "add", "same", "mse", "h\n",
     "_h", "lambda", None, True, False, [], {}, [1], [1, 2], [None, 8], {"units": 4}, "a" * 65]
)  # fmt: skip


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += _paths(v, (*prefix, i))
    return found


def _mutate(doc: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "add" and isinstance(parent, dict):
        parent[f"{last}_extra"] = value
    else:
        parent[last] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = draw(st.sampled_from(DOCS))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        doc = _mutate(doc, path, draw(st.sampled_from(["replace", "delete", "add"])), draw(SCALARS))
    return doc


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_specs_are_valid_for_both(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert fast_check()(doc) is True
    assert detailed_validator().is_valid(doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_verdicts_agree_on_mutations(doc: Any) -> None:
    assert fast_check()(doc) == detailed_validator().is_valid(doc), json.dumps(doc)[:2000]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_problems_come_from_the_failing_entries(doc: Any) -> None:
    """Pruning the valid entries before jsonschema explains the rest changes no message."""
    problems = schema_problems(doc)
    full = list(detailed_validator().iter_errors(doc))
    assert bool(problems) == bool(full)


def test_unknown_keyword_is_refused_not_guessed() -> None:
    with pytest.raises(NotImplementedError, match="dependentRequired"):
        compile_schema({"dependentRequired": {"a": ["b"]}})


def test_recursive_reference_compiles_once() -> None:
    schema = {"$defs": {"t": {"type": "array", "items": {"$ref": "#/$defs/t"}}}, "$ref": "#/$defs/t"}
    check = SchemaCompiler(schema).compile(schema)
    assert check([[[]], []]) and not check([[1]])


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [(1, 1.0, True), (True, 1, False), (False, 0, False), ([1, {"a": 2}], [1.0, {"a": 2.0}], True), ("1", 1, False)],
)
def test_json_equality(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal
    assert _unique([a, b]) is not equal  # uniqueItems hashes, with the same notion of equality


def test_generated_schema_uses_only_known_keywords() -> None:
    compile_schema(generate_schema())  # raises on a keyword fastschema does not implement


def test_past_the_detail_limit_each_failing_entry_gets_one_line() -> None:
    """250 mistyped nodes: 100 explained in full, 150 named in one line each, every one reported."""
    from fusec.spec.schema import MAX_DETAILED

    doc = copy.deepcopy(DOCS[0])
    doc["nodes"] = {f"n{i}": {"layer": "Dens", "config": {"units": 2}, "inputs": "x"} for i in range(250)}
    problems = schema_problems(doc)
    by_entry: dict[tuple[Any, ...], list[str]] = {}
    for p in problems:
        by_entry.setdefault(p.path[:2], []).append(p.message)
    assert set(by_entry) == {("nodes", f"n{i}") for i in range(250)}
    detailed = [k for k, msgs in by_entry.items() if not any("does not match the schema" in m for m in msgs)]
    assert len(detailed) == MAX_DETAILED
    assert all("Dens" in " ".join(by_entry[k]) for k in detailed)
    short = [p for p in problems if "does not match the schema" in p.message]
    assert len(short) == 250 - MAX_DETAILED
    assert "fix the 100 entries explained above first" in short[0].hint
