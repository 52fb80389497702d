"""Static shapes and parameter counts: merges against Keras, errors, sharing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fusec.check import check_spec
from fusec.errors import ShapeError
from fusec.merges import MERGES
from helpers import spec, write


def merge_doc(mode: str, shapes: tuple[tuple[Any, ...], ...], config: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = {"merge": mode, "inputs": [f"in{i}" for i in range(len(shapes))]}
    if config:
        node["config"] = config
    return spec(
        inputs={f"in{i}": {"shape": list(s)} for i, s in enumerate(shapes)},
        nodes={"m": node},
        outputs={"m": {"from": "m"}},
    )


MERGE_CASES = [
    pytest.param(mode, shapes, config, id=f"{mode}-{i}")
    for mode, rule in sorted(MERGES.items())
    if not getattr(rule, "slots", None)
    for i, (shapes, config) in enumerate(rule.examples)
]


@pytest.mark.parametrize(("mode", "shapes", "config"), MERGE_CASES)
def test_merge_matches_keras(tmp_path: Path, keras: Any, mode: str, shapes: Any, config: Any) -> None:
    from fusec.build import build_model

    checked = check_spec(write(tmp_path, merge_doc(mode, shapes, config)))
    model = build_model(checked, compile=False)
    assert tuple(model.get_layer("m").output.shape) == checked.info["m"].shape
    assert model.count_params() == checked.totals.params


def test_every_merge_has_examples() -> None:
    for name, rule in MERGES.items():
        assert len(rule.examples) >= 3, name


MISMATCH = [
    (
        "add",
        [[32], [16]],
        None,
        "merge `m` (add) needs inputs of one shape. Received: (None, 32) from `in0`, (None, 16) from `in1`",
    ),
    ("average", [[4, 3], [4]], None, "merge `m` (average) needs inputs of one shape"),
    ("multiply", [[5], [6]], None, "(multiply) needs inputs of one shape"),
    ("maximum", [[5], [6]], None, "(maximum) needs inputs of one shape"),
    ("minimum", [[5], [6]], None, "(minimum) needs inputs of one shape"),
    ("subtract", [[5], [6]], None, "(subtract) needs inputs of one shape"),
    ("concat", [[4, 3], [5, 2]], None, "(concat) needs inputs that match on every axis but axis -1"),
    ("concat", [[4, 3], [4]], None, "(concat) needs inputs of one rank"),
    ("concat", [[4], [4]], {"axis": 0}, "axis 0 is out of range"),
    (
        "dot",
        [[4], [5]],
        {"axes": 1},
        "(dot) needs equal sizes along the dot axes 1: 4 from `in0` vs 5 from `in1`",
    ),
    ("dot", [[4], [4]], {"axes": 2}, "axes 2 are out of range"),
    ("dot", [[2, 2, 2], [2, 2, 2]], {"axes": 1}, "needs inputs of rank 2 or 3"),
]


@pytest.mark.parametrize(
    ("mode", "shapes", "config", "fragment"), MISMATCH, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISMATCH)]
)
def test_merge_errors(tmp_path: Path, mode: str, shapes: Any, config: Any, fragment: str) -> None:
    doc = merge_doc(mode, tuple(tuple(s) for s in shapes), config or {})
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    (problem,) = info.value.problems
    assert fragment in problem.message
    expected = "$.nodes.m.config." + next(iter(config)) if config and "out of range" in fragment else "$.nodes.m.inputs"
    if "equal sizes" in fragment:
        expected = "$.nodes.m.config.axes"
    assert problem.jsonpath == expected


def test_layer_error_names_node_and_key(tmp_path: Path) -> None:
    doc = spec(
        inputs={"x": {"shape": [12]}},
        nodes={"r": {"layer": "Reshape", "config": {"target_shape": [5, 5]}, "inputs": "x"}},
        outputs={"r": {"from": "r"}},
    )
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    (problem,) = info.value.problems
    assert problem.jsonpath == "$.nodes.r.config.target_shape"
    assert problem.message.startswith("node `r` (Reshape): Reshape needs target_shape to hold as many values")


def test_rank_error_points_at_inputs(tmp_path: Path) -> None:
    doc = spec(
        nodes={
            "p": {"layer": "RepeatVector", "config": {"n": 2}, "inputs": "x"},
            "y": {"layer": "Flatten", "inputs": "p"},
        },
        outputs={"y": {"from": "y"}},
    )
    check_spec(write(tmp_path, doc))  # rank 2 is fine
    doc["nodes"]["q"] = {"layer": "RepeatVector", "config": {"n": 2}, "inputs": "p"}
    doc["outputs"]["q"] = {"from": "q"}
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    assert info.value.problems[0].jsonpath == "$.nodes.q.inputs"
    assert "Received: (None, 2, 8)" in info.value.problems[0].message


def test_errors_do_not_cascade(tmp_path: Path) -> None:
    doc = spec(
        inputs={"a": {"shape": [4]}, "b": {"shape": [5]}},
        nodes={
            "bad": {"merge": "add", "inputs": ["a", "b"]},
            "after": {"layer": "Dense", "config": {"units": 2}, "inputs": "bad"},
            "also_bad": {"merge": "add", "inputs": ["b", "a"]},
            "y": {"merge": "concat", "inputs": ["after", "also_bad"]},
        },
        outputs={"y": {"from": "y"}},
    )
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    assert [p.jsonpath for p in info.value.problems] == ["$.nodes.bad.inputs", "$.nodes.also_bad.inputs"]  # file order


def test_shared_weights_counted_once(tmp_path: Path) -> None:
    doc = spec(
        inputs={"a": {"shape": [8]}, "b": {"shape": [8]}},
        shared={"enc": {"layer": "Dense", "config": {"units": 4}}},
        nodes={
            "ea": {"shared": "enc", "inputs": "a"},
            "eb": {"shared": "enc", "inputs": "b"},
            "y": {"merge": "add", "inputs": ["ea", "eb"]},
        },
        outputs={"y": {"from": "y"}},
    )
    checked = check_spec(write(tmp_path, doc))
    assert checked.totals.params == 8 * 4 + 4
    assert (checked.info["ea"].call, checked.info["eb"].call) == (1, 2)
    assert checked.info["eb"].params == 0


def test_shared_call_with_incompatible_input(tmp_path: Path) -> None:
    doc = spec(
        inputs={"a": {"shape": [8]}, "b": {"shape": [6]}},
        shared={"enc": {"layer": "Dense", "config": {"units": 4}}},
        nodes={
            "ea": {"shared": "enc", "inputs": "a"},
            "eb": {"shared": "enc", "inputs": "b"},
            "y": {"merge": "concat", "inputs": ["ea", "eb"]},
        },
        outputs={"y": {"from": "y"}},
    )
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    (problem,) = info.value.problems
    assert problem.jsonpath == "$.nodes.eb.inputs"
    assert "Received: (None, 6) here, (None, 8) at its first call `ea`" in problem.message


def test_frozen_layer_counts_as_non_trainable(tmp_path: Path) -> None:
    doc = spec()
    doc["nodes"]["h"]["trainable"] = False
    checked = check_spec(write(tmp_path, doc))
    assert (checked.info["h"].trainable, checked.info["h"].non_trainable) == (0, 36)
    assert checked.totals.trainable == 5


def test_parameter_budget(tmp_path: Path) -> None:
    doc = spec(nodes={"y": {"layer": "Dense", "config": {"units": 1 << 20}, "inputs": "x"}})
    path = write(tmp_path, doc)
    with pytest.raises(ShapeError, match=r"9,437,184 parameters, over the budget of 1,000,000"):
        check_spec(path, max_params=1_000_000)
    assert check_spec(path, max_params=10_000_000).totals.params == 9_437_184
