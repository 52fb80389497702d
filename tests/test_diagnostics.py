"""Diagnostics that reach the root cause: every problem in one run, one message per bad value.

A schema error in one node must not hide the reference, cycle and shape
errors of the nodes it does not feed; what would break training or serving
(float ids into an Embedding, a padding mask thrown away, a loss that does not
fit its output) is found before any TensorFlow runs, as an error or a warning.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fusec.cli import cli
from fusec.errors import FusecError, Problem
from fusec.static.check import check_spec
from fusec.static.training import MASKING
from fusec.vocab.layers import LAYERS
from helpers import spec, write

#: One mistake of each kind the checker knows, in nodes that do not feed each other.
EVERY_KIND: dict[str, Any] = {
    "fusec": 1,
    "name": "every_kind",
    "inputs": {
        "img": {"shape": [8]},
        "tag": {"shape": [3]},
        "ids": {"shape": [4]},
        "tok": {"shape": [6], "dtype": "int32"},
    },
    "shared": {"head": {"layer": "Dense", "config": {"units": 1}}},
    "nodes": {
        "typo": {"layer": "Dense", "config": {"units": 4, "activaton": "relu"}, "inputs": "img"},
        "case": {"layer": "Dense", "config": {"units": 4, "activation": "Relu"}, "inputs": "img"},
        "keras_merge": {"layer": "Concatenate", "inputs": ["img", "tag"]},
        "init": {
            "layer": "Dense",
            "config": {"units": 4, "kernel_initializer": {"class_name": "HeNormal", "config": {}}},
            "inputs": "img",
        },
        "two_kinds": {"layer": "Dense", "merge": "add", "inputs": ["img", "img"]},
        "gate_list": {"merge": "gated", "inputs": ["img", "img"]},
        "dangling": {"layer": "Dense", "config": {"units": 2}, "inputs": "imgg"},
        "loop_a": {"layer": "Dense", "config": {"units": 8}, "inputs": "loop_b"},
        "loop_b": {"layer": "Dense", "config": {"units": 8}, "inputs": "loop_a"},
        "mismatch": {"merge": "add", "inputs": ["img", "tag"]},
        "emb": {"layer": "Embedding", "config": {"input_dim": 10, "output_dim": 4}, "inputs": "ids"},
        "tok_emb": {
            "layer": "Embedding",
            "config": {"input_dim": 10, "output_dim": 4, "mask_zero": True},
            "inputs": "tok",
        },
        "flat": {"layer": "Flatten", "inputs": "tok_emb"},
        "one_unit": {"layer": "Dense", "config": {"units": 1, "activation": "sigmoid"}, "inputs": "img"},
    },
    "outputs": {
        "from_shared": {"from": "head"},
        "classes": {"from": "one_unit", "loss": "sparse_categorical_crossentropy"},
        "flat": {"from": "flat"},
    },
}

#: (JSON path, fragment, severity) that the one run must report.
EXPECTED = [
    ("$.nodes.typo.config.activaton", "did you mean `activation`?", "error"),
    ("$.nodes.case.config.activation", "did you mean `relu`?", "error"),
    ("$.nodes.keras_merge.layer", '"merge": "concat"', "error"),
    ("$.nodes.init.config.kernel_initializer", '"kernel_initializer": "he_normal"', "error"),
    ("$.nodes.two_kinds", "both `layer` and `merge`", "error"),
    ("$.nodes.gate_list.inputs", '{"experts": ["a", "b", ...], "gate": ID}', "error"),
    ("$.nodes.dangling.inputs", "did you mean `img`?", "error"),
    ("$.nodes.loop_a.inputs", "cycle", "error"),
    ("$.nodes.mismatch.inputs", "needs inputs of one shape", "error"),
    ("$.outputs.from_shared.from", "a shared layer, not a node", "error"),
    ("$.nodes.emb.inputs", '"dtype": "int32"', "error"),
    ("$.outputs.classes.loss", "sparse_categorical_crossentropy", "error"),
    ("$.nodes.flat.inputs", "drops the padding mask", "warning"),
]


def _problems(tmp_path: Path, doc: Any, **kwargs: Any) -> list[Problem]:
    with pytest.raises(FusecError) as info:
        check_spec(write(tmp_path, doc), **kwargs)
    return info.value.problems


def test_every_kind_of_problem_in_one_run(tmp_path: Path) -> None:
    problems = _problems(tmp_path, EVERY_KIND)
    for path, fragment, severity in EXPECTED:
        hits = [p for p in problems if p.jsonpath == path and fragment in p.message + p.hint]
        assert hits, f"{path}: no problem with {fragment!r} in {[p.format(None) for p in problems]}"
        assert hits[0].severity == severity, path
    # One problem per bad value, and the node with two kinds only says so.
    paths = [p.jsonpath for p in problems]
    assert len(paths) == len(set(paths)), paths
    assert not [p for p in problems if p.jsonpath.startswith("$.nodes.two_kinds.")]


def test_one_message_per_bad_value(tmp_path: Path) -> None:
    doc = spec(nodes={"h": {"layer": "Dense", "config": {"units": None}, "inputs": "x"}, "y": BASE_Y})
    (problem,) = _problems(tmp_path, doc)
    assert problem.message == "expected integer. Received: null"
    assert "null null" not in problem.format(None)


BASE_Y = {"layer": "Dense", "config": {"units": 1}, "inputs": "h"}


def test_null_is_the_documented_default_where_keras_takes_none(tmp_path: Path) -> None:
    doc = spec(nodes={"h": {"layer": "Dense", "config": {"units": 4, "activation": None}, "inputs": "x"}, "y": BASE_Y})
    assert check_spec(write(tmp_path, doc)).totals.params == 8 * 4 + 4 + 5


@pytest.mark.parametrize(
    ("value", "near"),
    [("Relu", "relu"), ("RELU", "relu"), ("Sigmoid", "sigmoid"), ("tanH", "tanh"), ("relu_", "relu")],
)
def test_did_you_mean_ignores_case_first(tmp_path: Path, value: str, near: str) -> None:
    doc = spec(nodes={"h": {"layer": "Dense", "config": {"units": 4, "activation": value}, "inputs": "x"}, "y": BASE_Y})
    (problem,) = _problems(tmp_path, doc)
    assert problem.hint == f"did you mean `{near}`?"


@pytest.mark.parametrize(
    ("layer", "mode"),
    [("Concatenate", "concat"), ("Add", "add"), ("keras.layers.Multiply", "multiply"), ("average", "average")],
)
def test_keras_merge_layers_point_at_merge_nodes(tmp_path: Path, layer: str, mode: str) -> None:
    doc = spec(nodes={"h": {"layer": layer, "inputs": ["x", "x"]}, "y": BASE_Y})
    (problem,) = _problems(tmp_path, doc)
    assert problem.jsonpath == "$.nodes.h.layer"
    assert f'write "merge": "{mode}"' in problem.hint


def test_a_merge_mode_named_like_keras_suggests_the_mode(tmp_path: Path) -> None:
    doc = spec(nodes={"h": {"merge": "Concatenate", "inputs": ["x", "x"]}, "y": BASE_Y})
    (problem,) = _problems(tmp_path, doc)
    assert problem.hint == "did you mean `concat`?"


def test_schema_error_does_not_hide_other_nodes(tmp_path: Path) -> None:
    doc = spec(
        inputs={"a": {"shape": [4]}, "b": {"shape": [5]}},
        nodes={
            "bad": {"layer": "Dense", "config": {"unit": 3}, "inputs": "a"},
            "after": {"layer": "Dense", "config": {"units": 2}, "inputs": "bad"},
            "clash": {"merge": "add", "inputs": ["a", "b"]},
            "y": {"merge": "concat", "inputs": ["after", "clash", "nowhere"]},
        },
        outputs={"y": {"from": "y"}},
    )
    problems = _problems(tmp_path, doc)
    assert problems[0].jsonpath == "$.nodes.bad.config.unit"  # the schema error comes first
    paths = {p.jsonpath for p in problems}
    assert {"$.nodes.y.inputs[2]", "$.nodes.clash.inputs"} <= paths
    assert not any("after" in p for p in paths)  # fed by the broken node: not blamed


def test_a_broken_block_does_not_hide_the_rest(tmp_path: Path) -> None:
    doc = spec(
        inputs={"a": {"shape": [4]}, "b": {"shape": [5]}},
        blocks={
            "tower": {
                "inputs": ["i"],
                "nodes": {"d": {"layer": "Dense", "config": {"units": "four"}, "inputs": "i"}},
                "outputs": {"o": "d"},
            }
        },
        nodes={
            "t": {"block": "tower", "inputs": "a"},
            "clash": {"merge": "add", "inputs": ["a", "b"]},
            "y": {"merge": "concat", "inputs": ["t", "clash"]},
        },
        outputs={"y": {"from": "y"}},
    )
    paths = [p.jsonpath for p in _problems(tmp_path, doc)]
    assert paths == ["$.blocks.tower.nodes.d.config.units", "$.nodes.clash.inputs"]


def test_float_ids_into_embedding_traced_to_the_input(tmp_path: Path) -> None:
    doc = spec(
        inputs={"ids": {"shape": [2, 3]}},
        nodes={
            "flat": {"layer": "Reshape", "config": {"target_shape": [6]}, "inputs": "ids"},
            "emb": {"layer": "Embedding", "config": {"input_dim": 9, "output_dim": 2}, "inputs": "flat"},
            "y": {"layer": "Flatten", "inputs": "emb"},
        },
        outputs={"y": {"from": "y"}},
    )
    (problem,) = _problems(tmp_path, doc)
    assert problem.code == "dtype" and problem.jsonpath == "$.nodes.emb.inputs"
    assert '"ids": {..., "dtype": "int32"}' in problem.hint
    doc["inputs"]["ids"]["dtype"] = "int32"
    check_spec(write(tmp_path, doc))  # integer ids through a Reshape: fine


MASKED = spec(
    inputs={"tok": {"shape": [6], "dtype": "int32"}},
    nodes={
        "emb": {"layer": "Embedding", "config": {"input_dim": 10, "output_dim": 4, "mask_zero": True}, "inputs": "tok"},
        "drop": {"layer": "Dropout", "config": {"rate": 0.1}, "inputs": "emb"},
        "y": {"layer": "Flatten", "inputs": "drop"},
    },
    outputs={"y": {"from": "y"}},
)


def test_mask_dropped_is_a_warning_and_strict_refuses_it(tmp_path: Path) -> None:
    checked = check_spec(write(tmp_path, MASKED))
    (warning,) = checked.warnings
    assert warning.severity == "warning" and warning.jsonpath == "$.nodes.y.inputs"
    assert "`emb`" in warning.message
    (error,) = _problems(tmp_path, MASKED, strict=True)
    assert error.severity == "error" and error.jsonpath == "$.nodes.y.inputs"


def test_mask_used_is_fine(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(MASKED))
    doc["nodes"]["y"] = {"layer": "GlobalAveragePooling1D", "inputs": "drop"}
    assert check_spec(write(tmp_path, doc)).warnings == ()


def test_cli_shows_counts_and_marks_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, MASKED)
    runner = CliRunner()
    result = runner.invoke(cli, ["check", str(path)])
    assert result.exit_code == 0
    assert "1 warning)" in result.stdout
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: warning: \$\.nodes\.y\.inputs: ", result.stderr)
    strict = runner.invoke(cli, ["check", "--strict", str(path)])
    assert strict.exit_code == 1 and strict.stderr.startswith(f"{path}:") and ": error: " in strict.stderr
    report = json.loads(runner.invoke(cli, ["check", "--json", str(path)]).stdout)
    (entry,) = report["files"]
    assert entry["ok"] is True and [w["severity"] for w in entry["warnings"]] == ["warning"]
    failed = json.loads(runner.invoke(cli, ["check", "--json", "--strict", str(path)]).stdout)
    assert failed["files"][0]["errors"][0]["severity"] == "error"


@pytest.mark.slow
def test_masking_table_matches_keras(keras: Any) -> None:
    """Every layer that fusec says keeps or uses a mask supports masking in Keras, and no other does."""
    from fusec.keras.layers import keras_layer

    for name, rule in sorted(LAYERS.items()):
        _shape, config = rule.examples[0]
        layer = keras_layer(name, config, None)
        supports = bool(getattr(layer, "supports_masking", False))
        assert supports == (name in MASKING), name
