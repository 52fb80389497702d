"""The schema as editors read it: per-value docs, defaults the checker accepts, snippets that check, its file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fusec.cli import cli
from fusec.spec.schema import SCHEMA_PATH, generate_schema, schema_json, schema_problems
from fusec.spec.schema.editor import ACTIVATION_DOCS, NODE_SNIPPETS, PLACEHOLDERS, placeholder
from fusec.static.check import check_spec
from fusec.vocab.layers import LAYERS
from fusec.vocab.losses import LOSS_RULES, METRIC_RULES
from fusec.vocab.merges import MERGES
from fusec.vocab.rule import ACTIVATIONS, Rule
from helpers import spec, write


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def _enums(names: list[str]) -> list[dict[str, Any]]:
    """Every schema whose ``enum`` is ``names`` (a trailing null aside)."""
    return [s for s in _objects(generate_schema()) if [v for v in s.get("enum", [None]) if v is not None] == names]


# --- per-value docs -----------------------------------------------------------------------------

VOCABULARIES = {
    "layer": (sorted(LAYERS), {n: r.doc for n, r in LAYERS.items()}),
    "merge": (list(MERGES), {n: r.doc for n, r in MERGES.items()}),
    "activation": (list(ACTIVATIONS), ACTIVATION_DOCS),
    "loss": (list(LOSS_RULES), {n: r.doc for n, r in LOSS_RULES.items()}),
    "metric": (list(METRIC_RULES), {n: r.doc for n, r in METRIC_RULES.items()}),
}


def test_every_activation_has_a_doc() -> None:
    assert list(ACTIVATION_DOCS) == list(ACTIVATIONS)
    assert all(doc.strip() for doc in ACTIVATION_DOCS.values())


@pytest.mark.parametrize("kind", sorted(VOCABULARIES))
def test_each_value_has_its_own_description(kind: str) -> None:
    """Hover and completion show each name's own doc (``enumDescriptions``, in the enum's order)."""
    names, docs = VOCABULARIES[kind]
    found = _enums(names)
    assert found, f"no enum of the {kind} names"
    for schema in found:
        assert schema["enumDescriptions"] == [docs[n] for n in names]
    assert len(set(docs.values())) > 1


def test_layer_and_merge_properties_carry_the_docs() -> None:
    schema = generate_schema()
    node = schema["$defs"]["node"]["properties"]
    shared = schema["properties"]["shared"]["additionalProperties"]["properties"]
    for prop, rules, name in (
        (node["layer"], LAYERS, "Dense"),
        (shared["layer"], LAYERS, "LSTM"),
        (node["merge"], MERGES, "concat"),
    ):
        assert dict(zip(prop["enum"], prop["enumDescriptions"], strict=True))[name] == rules[name].doc


@pytest.mark.parametrize("kind", ["loss", "metric"])
def test_each_loss_and_metric_is_offered_with_its_doc(kind: str) -> None:
    """Their unions have no top-level enum for a completion list: each name is a snippet too."""
    docs = VOCABULARIES[kind][1]
    outputs = generate_schema()["properties"]["outputs"]["additionalProperties"]["properties"]
    union = outputs["loss"] if kind == "loss" else outputs["metrics"]["items"]
    assert {s["body"]: s["description"] for s in union["defaultSnippets"]} == docs


# --- defaults the checker accepts ---------------------------------------------------------------


def _configs() -> Iterator[tuple[str, Rule, dict[str, Any]]]:
    """(where, rule, its config schema) for every layer, merge, loss and metric."""
    schema = generate_schema()
    for name, rule in LAYERS.items():
        yield f"layer {name}", rule, schema["$defs"][name]
    for branch in schema["$defs"]["node"]["allOf"]:
        mode = branch["if"].get("properties", {}).get("merge", {}).get("const")
        if mode:
            cfg = branch["then"]["properties"]["config"]
            yield f"merge {mode}", MERGES[mode], cfg.get("else", cfg)
    outputs = schema["properties"]["outputs"]["additionalProperties"]["properties"]
    for kind, union, table in (
        ("loss", outputs["loss"], LOSS_RULES),
        ("metric", outputs["metrics"]["items"], METRIC_RULES),
    ):
        for branch in union["allOf"][1]["then"]["allOf"]:
            name = branch["if"]["properties"]["name"]["const"]
            yield f"{kind} {name}", table[name], branch["then"]


def test_defaults_are_the_rules_defaults() -> None:
    """Accepting a key's completion inserts the true Keras default; a key without one gets a placeholder."""
    seen = 0
    for where, rule, config in _configs():
        for p in rule.params:
            prop = config["properties"][p.name]
            if p.required:
                assert "default" not in prop, f"{where}.{p.name}"
                assert prop["examples"] == [json.loads(json.dumps(placeholder(rule, p.name)))], f"{where}.{p.name}"
            elif p.default is None:
                assert "default" not in prop, f"{where}.{p.name}: inserting null helps no one"
            else:
                assert prop["default"] == json.loads(json.dumps(p.default)), f"{where}.{p.name}"
                seen += 1
    assert seen > 150
    dense = generate_schema()["$defs"]["Dense"]["properties"]
    assert dense["units"]["examples"] == [64] and dense["use_bias"]["default"] is True


def _layer_spec(name: str, shape: Any, config: dict[str, Any]) -> dict[str, Any]:
    rule = LAYERS[name]
    if rule.slots:
        inputs = {slot: {"shape": list(s)} for slot, s in shape.items()}
        refs: Any = {slot: slot for slot in shape}
    else:
        inputs = {"x": {"shape": list(shape), "dtype": "int32" if name == "Embedding" else "float32"}}
        refs = "x"
    nodes = {"h": {"layer": name, "config": config, "inputs": refs}}
    return {"fusec": 1, "name": "defaults", "inputs": inputs, "nodes": nodes, "outputs": {"h": {"from": "h"}}}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_default_and_placeholder_checks(name: str, tmp_path: Path) -> None:
    """A layer's first example with each required key at its placeholder and every other key at its default."""
    rule = LAYERS[name]
    shape, config = rule.examples[0]
    props = generate_schema()["$defs"][name]["properties"]
    filled = dict(config)
    for p in rule.params:
        prop = props[p.name]
        if "default" in prop:
            filled[p.name] = prop["default"]
        elif p.required and p.name in PLACEHOLDERS:  # other placeholders are the first example's, fit to its shape
            filled[p.name] = prop["examples"][0]
    check_spec(write(tmp_path, _layer_spec(name, shape, filled)))


@pytest.mark.parametrize("where", [w for w, r, _ in _configs() if not w.startswith("layer ")])
def test_merge_and_objective_defaults_pass_the_schema(where: str) -> None:
    rule, config = next((r, c) for w, r, c in _configs() if w == where)
    filled = {k: p["default"] for k, p in config["properties"].items() if "default" in p}
    filled |= {p.name: config["properties"][p.name]["examples"][0] for p in rule.params if p.required}
    kind, name = where.split(" ", 1)
    if kind == "merge":
        slots = MERGES[name].slots
        inputs: Any = {k: "x" if n == "one" else ["x", "x"] for k, n in slots.items()} if slots else ["x", "x"]
        node: dict[str, Any] = {"merge": name, "config": filled, "inputs": inputs}
        doc = spec(nodes={"m": node, "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "m"}})
    elif kind == "loss":
        doc = spec(outputs={"y": {"from": "y", "loss": {"name": name, **filled}}})
    else:
        doc = spec(outputs={"y": {"from": "y", "loss": "mse", "metrics": [{"name": name, **filled}]}})
    assert schema_problems(doc) == []


# --- snippets -----------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\$\{\d+:([^}]*)\}|\$\d+")


def _expand(body: Any) -> Any:
    """A snippet body as the editor inserts it, with each placeholder's default text: plain JSON."""
    if isinstance(body, dict):
        return {k: _expand(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_expand(v) for v in body]
    if isinstance(body, str) and body.startswith("^"):
        return json.loads(PLACEHOLDER.sub(r"\1", body[1:]))
    if isinstance(body, str):
        return PLACEHOLDER.sub(r"\1", body)
    return body


def test_snippets_insert_json() -> None:
    snippets = [s for o in _objects(generate_schema()) for s in o.get("defaultSnippets", [])]
    assert len(snippets) > 40
    for s in snippets:
        assert s.get("description"), s
        json.loads(json.dumps(_expand(s["body"])))


@pytest.mark.parametrize("snippet", NODE_SNIPPETS, ids=lambda s: s["label"])
def test_node_snippets_check(snippet: dict[str, Any], tmp_path: Path) -> None:
    """Each new-node snippet, as inserted, is a node `check` accepts in a minimal spec."""
    node = _expand(snippet["body"])
    refs = node["inputs"] if isinstance(node["inputs"], list) else [node["inputs"]]
    doc: dict[str, Any] = {
        "fusec": 1,
        "inputs": {r: {"shape": [8]} for r in refs},
        "nodes": {"n": node},
        "outputs": {"y": {"from": "n", "loss": "mse"}},
    }
    dense = {"layer": "Dense", "config": {"units": 4}}
    if "shared" in node:
        doc["shared"] = {node["shared"]: dense}
    if "block" in node:
        inner = {"h": {**dense, "inputs": "i"}}
        doc["blocks"] = {node["block"]: {"inputs": ["i"], "nodes": inner, "outputs": {"o": "h"}}}
    if "model" in node:
        write(tmp_path, spec(), node["model"])
    check_spec(write(tmp_path, doc))


def test_input_and_output_snippets_check(tmp_path: Path) -> None:
    schema = generate_schema()["properties"]
    (new_input,) = schema["inputs"]["additionalProperties"]["defaultSnippets"]
    (new_output,) = schema["outputs"]["additionalProperties"]["defaultSnippets"]
    doc = spec(inputs={"x": _expand(new_input["body"])}, outputs={"y": _expand(new_output["body"])})
    check_spec(write(tmp_path, doc))


# --- the shipped file ---------------------------------------------------------------------------


def test_schema_ships_inside_the_package() -> None:
    assert SCHEMA_PATH.parent.name == "schema" and SCHEMA_PATH.parent.parent.name in ("spec",)
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_json(), "run `make schema` to regenerate it"
    assert generate_schema()["$id"] == "https://fusec.dev/schemas/fusec-1.schema.json"


def test_schema_path_prints_the_file_schema_prints() -> None:
    runner = CliRunner()
    where = runner.invoke(cli, ["schema", "--path"], catch_exceptions=False)
    printed = runner.invoke(cli, ["schema"], catch_exceptions=False)
    assert where.exit_code == 0 and printed.exit_code == 0
    path = Path(where.output.strip())
    assert path.is_absolute() and path == SCHEMA_PATH
    assert path.read_text(encoding="utf-8") == printed.output
