"""The spec schema: its contract with editors, and the messages it produces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, SPECS
from fusec.errors import SchemaError
from fusec.spec.schema import SCHEMA_PATH, generate_schema, schema_json, validate_schema
from fusec.vocab.layers import LAYERS
from helpers import spec


def test_committed_schema_is_generated() -> None:
    committed = SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == schema_json(), f"run `make schema` to regenerate {SCHEMA_PATH.name}"


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
    from fusec.vocab.docgen import vocabulary_markdown

    committed = (ROOT / "docs" / "vocabulary.md").read_text()
    assert committed == vocabulary_markdown(), "run `make docs` to regenerate docs/vocabulary.md"


# --- the names rule ----------------------------------------------------------------------


def _renamed(where: str, name: str) -> dict[str, Any]:
    """The base spec with one id replaced by ``name``: an input, a node, a shared layer, an output or the model."""
    if where == "input":
        return spec(
            inputs={name: {"shape": [8]}}, nodes={"y": {"layer": "Dense", "config": {"units": 1}, "inputs": name}}
        )
    if where == "node":
        return spec(
            nodes={
                name: {"layer": "Dense", "config": {"units": 4}, "inputs": "x"},
                "y": {"layer": "Dense", "config": {"units": 1}, "inputs": name},
            }
        )
    if where == "shared":
        return spec(
            shared={name: {"layer": "Dense", "config": {"units": 4}}},
            nodes={
                "h": {"shared": name, "inputs": "x"},
                "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "h"},
            },
        )
    if where == "output":
        return spec(outputs={name: {"from": "y", "loss": "mse"}})
    return {**spec(), "name": name}


WHERE = ["input", "node", "shared", "output", "name"]
#: names every position refuses, and why
BAD_NAMES = [
    ("_h", "starts with _"),
    ("__init__", "starts with _"),
    ("h\n", 'holds "\\n"'),
    ("h\r", 'holds "\\r"'),
    ("é", 'holds "é"'),
    ("ｈ", 'holds "ｈ"'),  # a full-width letter: not ASCII
    ("a-b", 'holds "-"'),
    ("a.b", 'holds "."'),
    ("9a", "starts with a digit"),
    ("a" * 65, "the limit is 64"),
    ("", "it is empty"),
]


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize(("name", "why"), BAD_NAMES, ids=[repr(n) for n, _ in BAD_NAMES])
def test_names_rule_refuses(where: str, name: str, why: str) -> None:
    with pytest.raises(SchemaError) as info:
        validate_schema(_renamed(where, name), "s.json")
    assert any(why in p.message for p in info.value.problems), str(info.value)


@pytest.mark.parametrize("name", ["lambda", "None", "class", "self", "True", "async"])
def test_input_ids_may_not_be_keywords(name: str) -> None:
    """An input id names an argument of the serving function: Python keywords and `self` cannot."""
    with pytest.raises(SchemaError, match="serving function"):
        validate_schema(_renamed("input", name), "s.json")
    for where in ("node", "shared", "output", "name"):  # elsewhere a keyword is a fine name (an output `class`)
        validate_schema(_renamed(where, name), "s.json")


GOOD_NAMES = ["a" * 64, "x", "X9", "a__b", "a_", "n0_1", "None_", "Lambda", "selfie", "output_0", "serving_default"]


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("name", GOOD_NAMES)
def test_names_rule_accepts(where: str, name: str) -> None:
    validate_schema(_renamed(where, name), "s.json")


def test_reserved_words_are_python_keywords_and_self() -> None:
    import keyword

    from fusec.spec.schema import RESERVED

    assert set(RESERVED) == {*keyword.kwlist, "self"}


def test_patterns_end_at_the_very_end() -> None:
    """ECMA-262's `$` matches only at the end; Python's also before a final new line. fusec applies ECMA's."""
    import re

    from fusec.spec.schema import ID_PATTERN, ecma_regex, pattern_matches

    assert re.search(ID_PATTERN, "h\n")  # what jsonschema's own `pattern` would accept
    assert not pattern_matches(ID_PATTERN, "h\n")
    assert pattern_matches(r"^a$", "a") and not pattern_matches(r"^a$", "a\n")
    assert pattern_matches(r"^[$]$", "$")  # a `$` inside a class is a character
    assert pattern_matches(r"^a\$$", "a$") and not pattern_matches(r"^a\$$", "a$\n")
    assert not pattern_matches(r"^\d$", "٣")  # ECMA's \d is ASCII
    assert ecma_regex(r"^a$").pattern == r"^a\Z"


def test_fast_and_full_validators_agree_on_names() -> None:
    from fusec.spec.schema import detailed_validator, fast_check

    for name in ["h\n", "_h", "é", "ok"]:
        doc = _renamed("node", name)
        assert fast_check()(doc) == detailed_validator().is_valid(doc) == (name == "ok")


DERIVED = [
    ("spec", "spec"),
    ("my-model", "my_model"),
    ("my model (copy)", "my_model_copy"),
    ("modèle", "modele"),
    ("Ünïcödé-Ñame", "Unicode_Name"),
    ("2024", "model_2024"),
    ("2024 run", "model_2024_run"),
    ("_private", "private"),
    ("__init__", "init"),
    ("日本語", "model"),
    ("...", "model"),
    ("lambda", "lambda"),
    ("a__b", "a__b"),
    ("x" * 80, "x" * 64),
    ("a b" * 40, ("a_b" * 40)[:64].rstrip("_")),
    ("name\udcff", "name"),  # a non-UTF-8 byte, as os.fsdecode gives it
]


@pytest.mark.parametrize(("stem", "name"), DERIVED)
def test_derived_names(stem: str, name: str) -> None:
    from fusec.spec.schema import derive_name, is_id

    assert derive_name(stem) == name
    assert is_id(name)


def test_derived_name_from_the_file_stem(tmp_path: Any) -> None:
    from fusec.static.check import check_spec

    doc = {k: v for k, v in spec().items() if k != "name"}
    path = tmp_path / "my model (copy).json"
    path.write_text(json.dumps(doc))
    assert check_spec(path).name == "my_model_copy"
    named = tmp_path / "modèle.json"
    named.write_text(json.dumps({**doc, "name": "given"}))
    assert check_spec(named).name == "given"


@given(st.text(max_size=100))
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_any_stem_gives_a_valid_stable_name(stem: str) -> None:
    from fusec.spec.schema import derive_name, is_id

    name = derive_name(stem)
    assert is_id(name)
    assert derive_name(name) == name
    if is_id(stem):
        assert name == stem


# --- integers are written as integers ----------------------------------------------------

INTEGER_PLACES = [
    ("version", lambda d: d.update({"fusec": 1.0}), "$.fusec", "the integer 1"),
    ("seed", lambda d: d.update({"seed": 3.0}), "$.seed", "without a decimal point: 3"),
    ("units", lambda d: d["nodes"]["y"]["config"].update({"units": 1.0}), "$.nodes.y.config.units", ": 1"),
    ("shape", lambda d: d["inputs"]["x"].update({"shape": [8.0]}), "$.inputs.x.shape[0]", ": 8"),
    (
        "kernel",
        lambda d: d["nodes"].update(
            {"y": {"layer": "Conv1D", "config": {"filters": 1, "kernel_size": [2.0]}, "inputs": "x"}}
        ),
        "$.nodes.y.config.kernel_size",
        "",
    ),
    (
        "top_k",
        lambda d: d["nodes"].update(
            {"y": {"merge": "gated", "config": {"top_k": 1.0}, "inputs": {"experts": ["x", "x"], "gate": "x"}}}
        ),
        "$.nodes.y.config.top_k",
        ": 1",
    ),
]


@pytest.mark.parametrize(
    ("change", "path", "hint"), [c[1:] for c in INTEGER_PLACES], ids=[c[0] for c in INTEGER_PLACES]
)
def test_integers_must_be_written_as_integers(change: Any, path: str, hint: str) -> None:
    doc = spec()
    change(doc)
    with pytest.raises(SchemaError) as info:
        validate_schema(doc, "s.json")
    hits = [p for p in info.value.problems if p.jsonpath.startswith(path)]
    assert hits, str(info.value)
    assert hint in hits[0].message + " " + hits[0].hint


# --- the names rule against TensorFlow ---------------------------------------------------


def _compile(tmp: Any, doc: dict[str, Any], stem: str = "spec", check: bool = True) -> Any:
    """Build a spec (checked, or straight from the document when ``check`` is false) and write its SavedModel."""
    import tensorflow as tf

    from fusec.keras.build import build_model
    from fusec.keras.save import export_saved_model
    from fusec.static.check import check_spec

    path = tmp / f"{stem}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    checked = check_spec(path) if check else _unchecked(path)
    model = build_model(checked)
    export_saved_model(model, tmp / "sm")
    serve = tf.saved_model.load(str(tmp / "sm")).signatures["serving_default"]
    args = {k: tf.zeros([2, *v.shape[1:]], v.dtype) for k, v in serve.structured_input_signature[1].items()}
    return model, serve(**args)


def _unchecked(path: Any) -> Any:
    """What check_spec would give for a spec the names rule refuses (to show that TensorFlow refuses it too)."""
    from fusec.spec.graph import build_graph, topo_order
    from fusec.spec.load import load_spec
    from fusec.static.check import Checked
    from fusec.static.shapes import infer_shapes, total_params

    loaded = load_spec(path)
    g = build_graph(loaded.doc)
    shapes = infer_shapes(g)
    return Checked(loaded, g, topo_order(g), shapes, total_params(shapes.info), loaded.doc)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("where", "name"), [("input", "_h"), ("node", "_h"), ("name", "_m"), ("input", "lambda"), ("input", "self")]
)
def test_names_the_rule_refuses_fail_in_tensorflow(tmp_path: Any, keras: Any, where: str, name: str) -> None:
    keras.backend.clear_session()
    with pytest.raises(Exception):  # noqa: B017 - TensorFlow raises ValueError or TypeError
        _compile(tmp_path, _renamed(where, name), check=False)


@pytest.mark.slow
def test_edge_names_compile_and_serve(tmp_path: Any, keras: Any) -> None:
    """64 characters, `__` inside, keywords where they are allowed, a derived name: all through the SavedModel."""
    long_id = "i" * 64
    doc = {
        "fusec": 1,
        "seed": 1,
        "inputs": {long_id: {"shape": [4]}, "None_": {"shape": [4]}},
        "shared": {"a__b": {"layer": "Dense", "config": {"units": 3}}},
        "nodes": {
            "class": {"shared": "a__b", "inputs": long_id},
            "lambda": {"shared": "a__b", "inputs": "None_.0"},
            "n" * 64: {"merge": "add", "inputs": ["class", "lambda"]},
        },
        "outputs": {"class": {"from": "class"}, "None": {"from": "n" * 64}, "x9": {"from": "lambda.0"}},
    }
    keras.backend.clear_session()
    model, result = _compile(tmp_path, doc, stem="my model (copy)")
    assert model.name == "my_model_copy"
    assert sorted(result) == ["None", "class", "x9"]


def test_input_ids_differing_only_in_case() -> None:
    from fusec.spec.schema import input_case_problems

    doc = spec(inputs={"Mh": {"shape": [8]}, "x": {"shape": [8]}, "mh": {"shape": [8]}, "MH": {"shape": [8]}})
    assert [p.jsonpath for p in input_case_problems(doc)] == ["$.inputs.mh", "$.inputs.MH"]
    assert input_case_problems(spec(inputs={"x": {"shape": [8]}, "x_1": {"shape": [8]}, "X2": {"shape": [8]}})) == []


@pytest.mark.slow
def test_input_ids_differing_only_in_case_fail_in_tensorflow(tmp_path: Any, keras: Any) -> None:
    doc = spec(
        inputs={"Mh": {"shape": [8]}, "mh": {"shape": [8]}},
        nodes={
            "a": {"layer": "Dense", "config": {"units": 2}, "inputs": "Mh"},
            "b": {"layer": "Dense", "config": {"units": 2}, "inputs": "mh"},
            "y": {"merge": "add", "inputs": ["a", "b"]},
        },
    )
    keras.backend.clear_session()
    with pytest.raises(ValueError, match="non-unique argument names"):
        _compile(tmp_path, doc, check=False)
