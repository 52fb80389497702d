"""The spec schema: its contract with editors, and the messages it produces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ROOT, SPECS
from fusec.errors import SchemaError
from fusec.layers import LAYERS
from fusec.schema import generate_schema, schema_json, validate_schema
from helpers import spec


def test_committed_schema_is_generated() -> None:
    committed = (ROOT / "schemas" / "fusec.schema.json").read_text()
    assert committed == schema_json(), "run `make schema` to regenerate schemas/fusec.schema.json"


def test_schema_is_valid_2020_12() -> None:
    from jsonschema import Draft202012Validator

    schema = generate_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["$id"].startswith("https://")


def _objects(node: Any, where: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{where}/{i}")


def test_every_property_documented_and_closed() -> None:
    for where, node in _objects(generate_schema()):
        if "properties" in node and node.get("type") == "object":
            assert node.get("additionalProperties") is False, where
            for name, prop in node["properties"].items():
                assert prop.get("title") and prop.get("description"), f"{where}/properties/{name}"


def test_every_layer_has_a_config_schema() -> None:
    text = json.dumps(generate_schema())
    for name in LAYERS:
        assert f'"title": "{name} config"' in text


def test_no_remote_refs() -> None:
    refs = [n["$ref"] for _, n in _objects(generate_schema()) if "$ref" in n]
    assert all(r.startswith("#") for r in refs)


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.json")), ids=lambda p: p.stem)
def test_bundled_specs_validate(path: Any) -> None:
    validate_schema(json.loads(path.read_text()), str(path))


def _node(**node: Any) -> dict[str, Any]:
    return spec(nodes={"h": {"inputs": "x", **node}, "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "h"}})


CASES = [
    ("version", {**spec(), "fusec": 2}, "$.fusec", "unsupported spec version 2", "reads version 1"),
    ("unknown-top", {**spec(), "colour": {}}, "$.colour", "unknown key `colour` in spec", "valid keys"),
    (
        "missing-nodes",
        {k: v for k, v in spec().items() if k != "nodes"},
        "$",
        "missing the required key `nodes`",
        "",
    ),
    (
        "layer-typo",
        _node(layer="Dens", config={"units": 2}),
        "$.nodes.h.layer",
        "unknown layer type `Dens`",
        "did you mean `Dense`?",
    ),
    (
        "layer-case",
        _node(layer="dense", config={"units": 2}),
        "$.nodes.h.layer",
        "unknown layer type",
        "`Dense`",
    ),
    ("lambda", _node(layer="Lambda"), "$.nodes.h.layer", "layer `Lambda` is refused", ""),
    ("tfsmlayer", _node(layer="TFSMLayer"), "$.nodes.h.layer", "refused", ""),
    ("dotted", _node(layer="keras.layers.Dense"), "$.nodes.h.layer", "unknown layer type", ""),
    (
        "config-typo",
        _node(layer="Dense", config={"unit": 2}),
        "$.nodes.h.config.unit",
        "unknown key `unit` in Dense config",
        "did you mean `units`?",
    ),
    (
        "config-unknown",
        _node(layer="Dense", config={"units": 2, "zzz": 1}),
        "$.nodes.h.config.zzz",
        "unknown key `zzz`",
        "valid keys: `activation`",
    ),
    (
        "config-missing",
        _node(layer="Dense", config={}),
        "$.nodes.h.config",
        "missing the required key `units`",
        "",
    ),
    (
        "config-type",
        _node(layer="Dense", config={"units": "4"}),
        "$.nodes.h.config.units",
        "expected integer",
        "",
    ),
    (
        "config-zero",
        _node(layer="Dense", config={"units": 0}),
        "$.nodes.h.config.units",
        "must be >= 1. Received: 0",
        "",
    ),
    (
        "config-absurd",
        _node(layer="Dense", config={"units": 10**12}),
        "$.nodes.h.config.units",
        "must be <=",
        "",
    ),
    (
        "config-float-size",
        _node(layer="Dense", config={"units": 1e12}),
        "$.nodes.h.config.units",
        "expected integer",
        "",
    ),
    (
        "activation",
        _node(layer="Dense", config={"units": 2, "activation": "relux"}),
        "$.nodes.h.config.activation",
        "unknown value for `activation`",
        "did you mean `relu`?",
    ),
    (
        "two-kinds",
        _node(layer="Dense", merge="add", config={"units": 2}),
        "$.nodes.h",
        "exactly one of `layer`, `merge`, `shared`",
        "both",
    ),
    ("no-kind", _node(), "$.nodes.h", "exactly one of", "none of them"),
    (
        "bad-id",
        spec(inputs={"x-1": {"shape": [8]}}),
        "$.inputs['x-1']",
        "is not a valid id",
        "letters, digits",
    ),
    (
        "ref-type",
        _node(layer="Dense", config={"units": 1}, inputs=3),
        "$.nodes.h.inputs",
        "expected string or array or object",
        "",
    ),
    (
        "ref-item",
        spec(nodes={"y": {"merge": "add", "inputs": ["x", 3]}}),
        "$.nodes.y.inputs[1]",
        "expected string",
        "",
    ),
    ("shape-zero", spec(inputs={"x": {"shape": [0]}}), "$.inputs.x.shape[0]", "must be >= 1", ""),
    (
        "dtype",
        spec(inputs={"x": {"shape": [8], "dtype": "float31"}}),
        "$.inputs.x.dtype",
        "unknown value for `dtype`",
        "float32",
    ),
    (
        "loss",
        spec(outputs={"y": {"from": "y", "loss": "mse2"}}),
        "$.outputs.y.loss",
        "unknown value for `loss`",
        "`mse`",
    ),
    (
        "shared-config",
        spec(
            shared={"s": {"layer": "Dense", "config": {"units": 1}}},
            nodes={"y": {"shared": "s", "config": {}, "inputs": "x"}},
        ),
        "$.nodes.y.config",
        "a `shared` node cannot set `config`",
        "",
    ),
    (
        "merge-trainable",
        spec(nodes={"y": {"merge": "add", "trainable": False, "inputs": ["x", "x"]}}),
        "$.nodes.y.trainable",
        "a `merge` node cannot set `trainable`: it has no weights to freeze",
        "",
    ),
    (
        "dot-axes",
        spec(nodes={"y": {"merge": "dot", "config": {"axes": "1"}, "inputs": ["x", "x"]}}),
        "$.nodes.y.config.axes",
        "expected integer or array",
        "",
    ),
    (
        "dot-no-axes",
        spec(nodes={"y": {"merge": "dot", "inputs": ["x", "x"]}}),
        "$.nodes.y",
        "missing the required key `config`",
        "",
    ),
    (
        "safe-mode-key",
        _node(layer="Dense", config={"units": 1, "safe_mode": False}),
        "$.nodes.h.config.safe_mode",
        "unknown key",
        "",
    ),
    (
        "optimizer",
        {**spec(), "training": {"optimizer": "adamm"}},
        "$.training.optimizer",
        "unknown value",
        "`adam`",
    ),
]


@pytest.mark.parametrize(("doc", "path", "fragment", "hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_schema_errors(doc: Any, path: str, fragment: str, hint: str) -> None:
    with pytest.raises(SchemaError) as info:
        validate_schema(doc, "s.json")
    hits = [p for p in info.value.problems if p.jsonpath == path and fragment in p.message]
    assert hits, f"no problem at {path} with {fragment!r}; got:\n{info.value}"
    assert hint in hits[0].hint + hits[0].message


def test_best_match_first_and_all_reported() -> None:
    doc = _node(layer="Dense", config={"unit": 2, "activation": "relux"})
    with pytest.raises(SchemaError) as info:
        validate_schema(doc, "s.json")
    paths = [p.jsonpath for p in info.value.problems]
    assert "$.nodes.h.config.unit" in paths and "$.nodes.h.config.activation" in paths
    assert len(paths) == len(set(zip(paths, (p.message for p in info.value.problems), strict=True)))


def test_vocabulary_page_is_generated() -> None:
    from fusec.docgen import vocabulary_markdown

    committed = (ROOT / "docs" / "vocabulary.md").read_text()
    assert committed == vocabulary_markdown(), "run `make docs` to regenerate docs/vocabulary.md"
