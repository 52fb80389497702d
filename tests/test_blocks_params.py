"""Block parameters, ``repeat``, and folding flat specs into blocks (spec/params.py, spec/fold.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fusec.errors import FusecError
from fusec.spec.blocks import expand_blocks
from fusec.spec.fold import fold_blocks, write_spec_text
from fusec.spec.schema import fast_check, generate_schema, schema_problems
from fusec.static.check import check_spec
from helpers import spec, write

IMAGE = {"x": {"shape": [16, 16, 3]}}


def _conv(filters: Any, kernel: Any = 3, **extra: Any) -> dict[str, Any]:
    return {"layer": "Conv2D", "config": {"filters": filters, "kernel_size": kernel, "padding": "same", **extra}}


UNIT = {
    "inputs": ["x"],
    "params": {"filters": {"doc": "width"}, "k": {"default": 3}},
    "nodes": {
        "conv": {**_conv({"$param": "filters"}, [{"$param": "k"}, 3]), "inputs": "x"},
        "bn": {"layer": "BatchNormalization", "inputs": "conv"},
    },
    "outputs": {"y": "bn"},
}


def _doc(nodes: dict[str, Any], blocks: dict[str, Any] | None = None, out: str = "g") -> dict[str, Any]:
    head = {"g": {"layer": "GlobalAveragePooling2D", "inputs": out}} if out == "g" else {}
    return spec(
        inputs=IMAGE,
        blocks=blocks if blocks is not None else {"unit": UNIT},
        nodes={**nodes, **head, "p": {"layer": "Dense", "config": {"units": 2}, "inputs": "g"}},
        outputs={"p": {"from": "p", "loss": "mse"}},
    )


def _problems(tmp_path: Path, doc: dict[str, Any]) -> list[str]:
    with pytest.raises(FusecError) as err:
        check_spec(write(tmp_path, doc))
    return [f"{p.jsonpath}: {p.message} ({p.hint})" for p in err.value.problems]


# -- parameters -----------------------------------------------------------------


def test_params_substituted_defaults_and_pass_through(tmp_path: Path) -> None:
    outer = {
        "inputs": ["x"],
        "params": {"width": {}},
        "nodes": {"a": {"block": "unit", "params": {"filters": {"$param": "width"}, "k": 1}, "inputs": "x"}},
        "outputs": {"y": "a"},
    }
    doc = _doc(
        {
            "u": {"block": "unit", "params": {"filters": 4}, "inputs": "x"},
            "o": {"block": "outer", "params": {"width": 6}, "inputs": "u"},
        },
        {"unit": UNIT, "outer": outer},
        out="o",
    )
    doc["nodes"]["g"] = {"layer": "GlobalAveragePooling2D", "inputs": "o"}
    checked = check_spec(write(tmp_path, doc))
    nodes = checked.doc["nodes"]
    assert nodes["u__conv"]["config"] == {"filters": 4, "kernel_size": [3, 3], "padding": "same"}
    assert nodes["o__a__conv"]["config"]["filters"] == 6
    assert nodes["o__a__conv"]["config"]["kernel_size"] == [1, 3]
    assert checked.shapes.info["o__a__conv"].shape == (None, 16, 16, 6)
    assert UNIT["nodes"]["conv"]["config"]["filters"] == {"$param": "filters"}  # the definition is not changed


def test_param_errors_point_at_the_instance_and_name_the_receiving_key(tmp_path: Path) -> None:
    found = _problems(tmp_path, _doc({"u": {"block": "unit", "params": {"filters": "four", "kk": 1}, "inputs": "x"}}))
    assert any(
        line.startswith("$.nodes.u.params.kk: block `unit` has no param `kk`") and "`k`" in line for line in found
    )
    wrong = [line for line in found if line.startswith("$.nodes.u.params.filters:")]
    assert wrong and "expected integer" in wrong[0] and "$.blocks.unit.nodes.conv.config.filters" in wrong[0]


def test_param_error_through_a_pass_through_points_at_the_outermost_value(tmp_path: Path) -> None:
    outer = {
        "inputs": ["x"],
        "params": {"width": {}},
        "nodes": {"a": {"block": "unit", "params": {"filters": {"$param": "width"}}, "inputs": "x"}},
        "outputs": {"y": "a"},
    }
    doc = _doc({"o": {"block": "outer", "params": {"width": 2.5}, "inputs": "x"}}, {"unit": UNIT, "outer": outer}, "o")
    doc["nodes"]["g"] = {"layer": "GlobalAveragePooling2D", "inputs": "o"}
    found = _problems(tmp_path, doc)
    assert any(line.startswith("$.nodes.o.params.width: expected integer") for line in found), found


def test_missing_and_undeclared_params(tmp_path: Path) -> None:
    bad = copy.deepcopy(UNIT)
    bad["nodes"]["bn"]["config"] = {"epsilon": {"$param": "eps"}}
    found = _problems(tmp_path, _doc({"u": {"block": "unit", "inputs": "x"}}, {"unit": bad}))
    assert any(line.startswith("$.nodes.u: block `unit` needs param `filters`") for line in found), found
    assert any(
        line.startswith("$.blocks.unit.nodes.bn.config.epsilon") and "declares no param `eps`" in line for line in found
    )


def test_unused_param_is_a_warning() -> None:
    unit = copy.deepcopy(UNIT)
    unit["params"]["spare"] = {"default": 1}
    flat = expand_blocks(_doc({"u": {"block": "unit", "params": {"filters": 2}, "inputs": "x"}}, {"unit": unit}))
    assert not flat.problems
    assert [(p.jsonpath, p.severity) for p in flat.warnings] == [("$.blocks.unit.params.spare", "warning")]


def test_params_on_shared_weights_and_outside_blocks_are_refused(tmp_path: Path) -> None:
    shared = {**copy.deepcopy(UNIT), "shared_weights": True}
    found = _problems(
        tmp_path, _doc({"u": {"block": "unit", "params": {"filters": 2}, "inputs": "x"}}, {"unit": shared})
    )
    assert any("shared weights" in line for line in found)
    found = _problems(tmp_path, _doc({"u": {"block": "unit", "params": {"filters": {"$param": "w"}}, "inputs": "x"}}))
    assert any(line.startswith("$.nodes.u.params.filters:") and "in no block" in line for line in found), found


def test_param_in_a_top_level_config_is_a_schema_error() -> None:
    doc = _doc({"c": {**_conv({"$param": "filters"}), "inputs": "x"}}, {}, out="c")
    doc["nodes"]["g"] = {"layer": "GlobalAveragePooling2D", "inputs": "c"}
    found = schema_problems(doc)
    assert [p.jsonpath for p in found] == ["$.nodes.c.config"] and "block" in found[0].message


def test_literal_error_beside_a_param_points_at_the_definition(tmp_path: Path) -> None:
    unit = copy.deepcopy(UNIT)
    unit["nodes"]["conv"]["config"]["padding"] = "sideways"
    found = _problems(tmp_path, _doc({"u": {"block": "unit", "params": {"filters": 2}, "inputs": "x"}}, {"unit": unit}))
    assert any(line.startswith("$.blocks.unit.nodes.conv.config.padding:") for line in found), found


# -- repeat ---------------------------------------------------------------------


def test_repeat_chains_copies_with_stable_ids(tmp_path: Path) -> None:
    doc = _doc({"s": {"block": "unit", "params": {"filters": 3}, "repeat": 3, "inputs": "x"}}, out="s")
    doc["nodes"]["g"] = {"layer": "GlobalAveragePooling2D", "inputs": "s"}
    checked = check_spec(write(tmp_path, doc))
    nodes = checked.doc["nodes"]
    assert [n for n in nodes if n.startswith("s__")] == [f"s__{k}__{n}" for k in (1, 2, 3) for n in ("conv", "bn")]
    assert nodes["s__1__conv"]["inputs"] == "x"
    assert nodes["s__2__conv"]["inputs"] == "s__1__bn"
    assert nodes["g"]["inputs"] == "s__3__bn"
    assert checked.scopes["s__2__bn"] == (("s__2", "unit"),)


def test_repeat_needs_one_input_and_one_output(tmp_path: Path) -> None:
    two = {
        "inputs": ["a", "b"],
        "nodes": {"m": {"merge": "add", "inputs": ["a", "b"]}},
        "outputs": {"y": "m"},
    }
    doc = _doc({"s": {"block": "two", "repeat": 2, "inputs": {"a": "x", "b": "x"}}}, {"two": two}, out="s")
    doc["nodes"]["g"] = {"layer": "GlobalAveragePooling2D", "inputs": "s"}
    found = _problems(tmp_path, doc)
    assert any(line.startswith("$.nodes.s.repeat: `repeat` chains copies of block `two`") for line in found), found


def test_repeat_counts_toward_the_node_limit(tmp_path: Path) -> None:
    stage = {
        "inputs": ["x"],
        "nodes": {"a": {"block": "unit", "params": {"filters": 1}, "repeat": 4096, "inputs": "x"}},
        "outputs": {"y": "a"},
    }
    doc = _doc({"s": {"block": "stage", "repeat": 3, "inputs": "x"}}, {"unit": UNIT, "stage": stage}, out="s")
    doc["nodes"]["g"] = {"layer": "GlobalAveragePooling2D", "inputs": "s"}
    assert any("more than 20,000 nodes" in line for line in _problems(tmp_path, doc))


def test_schema_accepts_params_and_repeat_and_fast_check_agrees() -> None:
    doc = _doc({"s": {"block": "unit", "params": {"filters": 3}, "repeat": 2, "inputs": "x"}}, out="s")
    doc["nodes"]["g"] = {"layer": "GlobalAveragePooling2D", "inputs": "s"}
    assert fast_check()(doc) and not schema_problems(doc)
    for path, value in [
        (("nodes", "s", "repeat"), 0),
        (("nodes", "s", "repeat"), 2.0),
        (("blocks", "unit", "params", "filters", "bogus"), 1),
        (("blocks", "unit", "nodes", "bn", "config"), {"epsilon": "x"}),
    ]:
        bad = copy.deepcopy(doc)
        target = bad
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        assert not fast_check()(bad)
        assert schema_problems(bad), path
    defs = generate_schema()["$defs"]
    assert {"param", "with_param"} <= set(defs)


# -- folding --------------------------------------------------------------------


def _add(nodes: dict[str, Any], nid: str, node: dict[str, Any], inputs: Any) -> str:
    nodes[nid] = {**node, "inputs": inputs}
    return nid


def _bn() -> dict[str, Any]:
    return {"layer": "BatchNormalization", "config": {"axis": 3, "epsilon": 1.001e-5}}


def _relu() -> dict[str, Any]:
    return {"layer": "Activation", "config": {"activation": "relu"}}


def _bottleneck(nodes: dict[str, Any], x: str, filters: int, stride: int, shortcut: bool, name: str) -> str:
    """Keras's ``resnet.block1``, one node per layer, Keras's layer names."""
    short = x
    if shortcut:
        c = _add(nodes, f"{name}_0_conv", _conv(4 * filters, 1, strides=stride), x)
        short = _add(nodes, f"{name}_0_bn", _bn(), c)
    h = _add(nodes, f"{name}_1_conv", _conv(filters, 1, strides=stride), x)
    h = _add(nodes, f"{name}_1_bn", _bn(), h)
    h = _add(nodes, f"{name}_1_relu", _relu(), h)
    h = _add(nodes, f"{name}_2_conv", _conv(filters, 3), h)
    h = _add(nodes, f"{name}_2_bn", _bn(), h)
    h = _add(nodes, f"{name}_2_relu", _relu(), h)
    h = _add(nodes, f"{name}_3_conv", _conv(4 * filters, 1), h)
    h = _add(nodes, f"{name}_3_bn", _bn(), h)
    h = _add(nodes, f"{name}_add", {"merge": "add"}, [short, h])
    return _add(nodes, f"{name}_out", _relu(), h)


def _flat(nodes: dict[str, Any], x: str, size: int = 32) -> dict[str, Any]:
    _add(nodes, "avg_pool", {"layer": "GlobalAveragePooling2D"}, x)
    _add(nodes, "predictions", {"layer": "Dense", "config": {"units": 10, "activation": "softmax"}}, "avg_pool")
    return {
        "fusec": 1,
        "name": "model",
        "inputs": {"input_1": {"shape": [size, size, 3]}},
        "nodes": nodes,
        "outputs": {"predictions": {"from": "predictions"}},
    }


def resnet(stages: tuple[int, ...] = (3, 4, 6, 3)) -> dict[str, Any]:
    """A flat ResNet (ResNet50 by default: 53 convolutions, 16 bottlenecks) as ``fusec import`` writes one."""
    nodes: dict[str, Any] = {}
    x = _add(nodes, "conv1_pad", {"layer": "ZeroPadding2D", "config": {"padding": 3}}, "input_1")
    x = _add(nodes, "conv1_conv", {"layer": "Conv2D", "config": {"filters": 64, "kernel_size": 7, "strides": 2}}, x)
    x = _add(nodes, "conv1_bn", _bn(), x)
    x = _add(nodes, "conv1_relu", _relu(), x)
    x = _add(nodes, "pool1_pad", {"layer": "ZeroPadding2D", "config": {"padding": 1}}, x)
    x = _add(nodes, "pool1_pool", {"layer": "MaxPooling2D", "config": {"pool_size": 3, "strides": 2}}, x)
    for s, (blocks, filters) in enumerate(zip(stages, (64, 128, 256, 512), strict=False), 2):
        for b in range(1, blocks + 1):
            x = _bottleneck(nodes, x, filters, 1 if s == 2 or b > 1 else 2, b == 1, f"conv{s}_block{b}")
    return _flat(nodes, x, 64)


def densenet(blocks: tuple[int, ...] = (3, 4)) -> dict[str, Any]:
    """A flat DenseNet: dense layers (BN, relu, 1x1, BN, relu, 3x3, concat) and transitions."""
    nodes: dict[str, Any] = {}
    x = _add(nodes, "conv1_conv", _conv(16, 3), "input_1")
    for s, count in enumerate(blocks, 2):
        for b in range(1, count + 1):
            n = f"conv{s}_block{b}"
            h = _add(nodes, f"{n}_0_bn", _bn(), x)
            h = _add(nodes, f"{n}_0_relu", _relu(), h)
            h = _add(nodes, f"{n}_1_conv", _conv(16, 1, use_bias=False), h)
            h = _add(nodes, f"{n}_1_bn", _bn(), h)
            h = _add(nodes, f"{n}_1_relu", _relu(), h)
            h = _add(nodes, f"{n}_2_conv", _conv(4, 3, use_bias=False), h)
            x = _add(nodes, f"{n}_concat", {"merge": "concat"}, [x, h])
        if s < len(blocks) + 1:
            x = _add(nodes, f"pool{s}_bn", _bn(), x)
            x = _add(nodes, f"pool{s}_conv", _conv(8 * s, 1), x)
            x = _add(nodes, f"pool{s}_pool", {"layer": "AveragePooling2D", "config": {"pool_size": 2, "strides": 2}}, x)
    return _flat(nodes, x)


def mobilenet_v2() -> dict[str, Any]:
    """A flat MobileNetV2: inverted residuals, with an ``add`` only where stride and width allow it."""
    nodes: dict[str, Any] = {}
    x = _add(nodes, "Conv1", _conv(8, 3, strides=2), "input_1")
    width = 8
    for b, (filters, stride) in enumerate([(8, 1), (12, 2), (12, 1), (12, 1), (16, 2), (16, 1)], 1):
        n = f"block_{b}"
        h = _add(nodes, f"{n}_expand", _conv(width * 6, 1), x)
        h = _add(nodes, f"{n}_expand_BN", _bn(), h)
        h = _add(nodes, f"{n}_expand_relu", {"layer": "ReLU", "config": {"max_value": 6.0}}, h)
        dw = {"layer": "DepthwiseConv2D", "config": {"kernel_size": 3, "strides": stride, "padding": "same"}}
        h = _add(nodes, f"{n}_depthwise", dw, h)
        h = _add(nodes, f"{n}_depthwise_BN", _bn(), h)
        h = _add(nodes, f"{n}_depthwise_relu", {"layer": "ReLU", "config": {"max_value": 6.0}}, h)
        h = _add(nodes, f"{n}_project", _conv(filters, 1), h)
        h = _add(nodes, f"{n}_project_BN", _bn(), h)
        x = _add(nodes, f"{n}_add", {"merge": "add"}, [x, h]) if stride == 1 and filters == width else h
        width = filters
    return _flat(nodes, x)


def _assert_expands_to(folded: dict[str, Any], flat: dict[str, Any], moved: dict[str, str]) -> None:
    """The folded spec expands to exactly the flat one, every node mapped to one expanded node."""
    expanded = expand_blocks(folded)
    assert not expanded.problems
    assert len(expanded.doc["nodes"]) == len(flat["nodes"])
    assert len(set(moved.values())) == len(moved)

    def new(ref: str) -> str:
        src, dot, port = ref.partition(".")
        return f"{moved.get(src, src)}{dot}{port}"

    for nid, node in flat["nodes"].items():
        got = expanded.doc["nodes"][moved.get(nid, nid)]
        inputs = node["inputs"]
        want = [new(r) for r in inputs] if isinstance(inputs, list) else new(inputs)
        assert got == {**node, "inputs": want}, nid


def _lines(doc: dict[str, Any]) -> int:
    text = write_spec_text(doc)
    assert json.loads(text) == doc
    return len(text.splitlines())


def test_resnet50_folds_three_times_shorter_and_checks_the_same(tmp_path: Path) -> None:
    flat = resnet()
    assert sum(n.get("layer") == "Conv2D" for n in flat["nodes"].values()) == 53
    folded, moved = fold_blocks(flat)
    _assert_expands_to(folded, flat, moved)
    assert len(folded["blocks"]) == 2
    assert folded["nodes"]["conv4"] == {
        "block": "conv_block_2",
        "params": {"filters": 256, "filters_2": 1024},
        "repeat": 5,
        "inputs": "conv4_block1",
    }
    assert folded["nodes"]["conv4_block1"]["params"] == {"filters": 1024, "strides": 2, "filters_2": 256}
    assert moved["conv4_block3_2_conv"] == "conv4__2__n2_conv"
    assert moved["conv4_block1_out"] == "conv4_block1__out"
    before, after = _lines(flat), _lines(folded)
    assert before >= 3 * after, (before, after)
    a = check_spec(write(tmp_path, write_spec_text(flat), "flat.json"))
    b = check_spec(write(tmp_path, write_spec_text(folded), "folded.json"))
    assert a.totals.params == b.totals.params
    assert b.shapes.info[moved["conv5_block3_out"]].shape == a.shapes.info["conv5_block3_out"].shape


@pytest.mark.parametrize(
    "make", [densenet, mobilenet_v2, lambda: resnet((2, 1, 3))], ids=["densenet", "mobilenetv2", "resnet"]
)
def test_folding_expands_to_the_original(tmp_path: Path, make: Any) -> None:
    flat = make()
    folded, moved = fold_blocks(flat)
    assert folded.get("blocks"), "something repeated was folded"
    _assert_expands_to(folded, flat, moved)
    assert _lines(folded) < _lines(flat)
    a = check_spec(write(tmp_path, write_spec_text(flat), "flat.json"))
    b = check_spec(write(tmp_path, write_spec_text(folded), "folded.json"))
    assert (a.totals.params, a.totals.trainable) == (b.totals.params, b.totals.trainable)


def test_nothing_to_fold_comes_back_unchanged() -> None:
    doc = spec()
    assert fold_blocks(doc) == (doc, {})
    assert json.loads(write_spec_text(doc)) == doc
