"""Repeated parallel branches (render/repeats.py): what folds into a "×N" box, and what never does."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from fusec.render.repeats import Repeat, find_repeats
from fusec.static.check import Checked, check_spec

ROOT = Path(__file__).resolve().parent.parent


def _dense(src: str, units: int = 8, activation: str | None = "relu") -> dict[str, Any]:
    config: dict[str, Any] = {"units": units}
    if activation:
        config["activation"] = activation
    return {"layer": "Dense", "config": config, "inputs": src}


def _towers(count: int = 4, merge: str = "weighted") -> dict[str, Any]:
    """``count`` towers (Dense then Dropout) from one input into one merge, then a head."""
    nodes: dict[str, Any] = {"stem": _dense("x", 16)}
    for t in range(count):
        nodes[f"t{t}_fc"] = _dense("stem", 8)
        nodes[f"t{t}_drop"] = {"layer": "Dropout", "config": {"rate": 0.5}, "inputs": f"t{t}_fc"}
    nodes["fuse"] = {"merge": merge, "inputs": [f"t{t}_drop" for t in range(count)]}
    nodes["head"] = _dense("fuse", 1, None)
    return {
        "fusec": 1,
        "name": "towers",
        "inputs": {"x": {"shape": [8]}},
        "nodes": nodes,
        "outputs": {"y": {"from": "head", "loss": "mse"}},
    }


def _check(tmp_path: Path, doc: dict[str, Any], lenient: bool = False) -> Checked:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc, indent=1))
    return check_spec(path, lenient=lenient) if lenient else check_spec(path)


def _counts(repeats: list[Repeat]) -> list[int]:
    return [r.count for r in repeats]


def test_fanin_hubs_fold_into_groups_of_64(tmp_path: Path) -> None:
    loader = importlib.util.spec_from_file_location("gen_specs", ROOT / "bench" / "gen_specs.py")
    assert loader is not None and loader.loader is not None
    gen = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(gen)
    checked = _check(tmp_path, gen.fanin(199))
    repeats = find_repeats(checked)
    assert _counts(repeats) == [64, 64, 64]
    first = repeats[0]
    assert first.sources == ("x",) and first.sinks == ("g000_merge",)
    assert first.branches[:2] == (("g000_b00",), ("g000_b01",))
    assert first.signature == "Dense(16, relu)"
    assert repeats[1].sources == ("g000_out",) and repeats[1].sinks == ("g001_merge",)
    assert len(set(first.members)) == 64


def test_towers_fold_as_chains_in_spec_order(tmp_path: Path) -> None:
    (group,) = find_repeats(_check(tmp_path, _towers(8)))
    assert group.count == 8
    assert group.branches[0] == ("t0_fc", "t0_drop") and group.branches[7] == ("t7_fc", "t7_drop")
    assert group.sources == ("stem",) and group.sinks == ("fuse",)
    assert group.signature == "Dense(8, relu) → Dropout(0.5)"


def test_the_same_spec_gives_the_same_groups(tmp_path: Path) -> None:
    checked = _check(tmp_path, _towers(5))
    assert find_repeats(checked) == find_repeats(checked)
    assert find_repeats(checked) == find_repeats(_check(tmp_path, _towers(5)))


def test_inputs_join_a_branch_when_dtype_and_shape_match(tmp_path: Path) -> None:
    doc = _towers(1)
    doc["inputs"] = {f"in{i}": {"shape": [4]} for i in range(5)}
    doc["nodes"] = {f"fc{i}": _dense(f"in{i}") for i in range(5)}
    doc["nodes"]["cat"] = {"merge": "concat", "inputs": [f"fc{i}" for i in range(5)]}
    doc["nodes"]["head"] = _dense("cat", 1, None)
    (group,) = find_repeats(_check(tmp_path, doc))
    assert group.branches[0] == ("in0", "fc0") and group.count == 5
    assert group.sources == () and group.sinks == ("cat",)
    assert group.signature == "input float32 (None, 4) → Dense(8, relu)"
    doc["inputs"]["in4"] = {"shape": [5]}  # another shape: four left
    doc["inputs"]["in3"] = {"shape": [4], "dtype": "float16"}  # another dtype: three left
    (group,) = find_repeats(_check(tmp_path, doc))
    assert [b[0] for b in group.branches] == ["in0", "in1", "in2"]


def test_different_configs_do_not_fold_together(tmp_path: Path) -> None:
    doc = _towers(4)
    doc["nodes"]["t3_drop"]["config"]["rate"] = 0.25
    (group,) = find_repeats(_check(tmp_path, doc))
    assert [b[0] for b in group.branches] == ["t0_fc", "t1_fc", "t2_fc"]
    doc["nodes"]["t2_fc"]["config"]["activation"] = "tanh"
    assert find_repeats(_check(tmp_path, doc)) == []


def test_docs_and_key_order_do_not_matter(tmp_path: Path) -> None:
    doc = _towers(3)
    doc["nodes"]["t1_fc"]["doc"] = "the second tower"
    doc["nodes"]["t2_fc"]["config"] = {"activation": "relu", "units": 8}
    assert _counts(find_repeats(_check(tmp_path, doc))) == [3]


def test_a_shared_call_in_a_branch_stops_the_fold(tmp_path: Path) -> None:
    doc = _towers(3)
    doc["shared"] = {"proj": {"layer": "Dense", "config": {"units": 8}}}
    for t in range(3):
        doc["nodes"][f"t{t}_fc"] = {"shared": "proj", "inputs": "stem"}
    assert find_repeats(_check(tmp_path, doc)) == []


def test_a_model_output_source_stays_visible(tmp_path: Path) -> None:
    doc = _towers(3)
    doc["outputs"]["aux"] = {"from": "t1_drop", "loss": "mse"}
    assert find_repeats(_check(tmp_path, doc)) == []
    assert _counts(find_repeats(_check(tmp_path, _towers(4) | {"outputs": doc["outputs"]}))) == [3]


def test_min_count(tmp_path: Path) -> None:
    checked = _check(tmp_path, _towers(2))
    assert find_repeats(checked) == []
    assert _counts(find_repeats(checked, min_count=2)) == [2]
    assert find_repeats(_check(tmp_path, _towers(5)), min_count=6) == []
    with pytest.raises(ValueError, match="2 or more"):
        find_repeats(checked, min_count=1)


def test_different_sinks_or_sources_do_not_fold(tmp_path: Path) -> None:
    doc = _towers(4)
    nodes = doc["nodes"]
    nodes["fuse"]["inputs"] = ["t0_drop", "t1_drop"]
    nodes["fuse2"] = {"merge": "add", "inputs": ["t2_drop", "t3_drop"]}
    nodes["both"] = {"merge": "concat", "inputs": ["fuse", "fuse2"]}
    nodes["head"]["inputs"] = "both"
    assert find_repeats(_check(tmp_path, doc)) == []
    doc = _towers(4)
    doc["nodes"]["stem2"] = _dense("x", 16)
    doc["nodes"]["t3_fc"]["inputs"] = "stem2"  # one tower from another source: three left
    (group,) = find_repeats(_check(tmp_path, doc))
    assert group.count == 3 and group.sources == ("stem",)


def test_a_named_slot_of_the_sink_must_match(tmp_path: Path) -> None:
    doc = _towers(4)
    for t in range(4):
        doc["nodes"][f"t{t}_drop"] = _dense(f"t{t}_fc", 3, "softmax")
    doc["nodes"]["fuse"] = {
        "merge": "gated",
        "inputs": {"experts": ["t0_drop", "t1_drop", "t2_drop"], "gate": "t3_drop"},
    }
    (group,) = find_repeats(_check(tmp_path, doc))
    assert [b[0] for b in group.branches] == ["t0_fc", "t1_fc", "t2_fc"]
    assert group.sinks == ("fuse",)


def test_small_sub_dags_fold_whole(tmp_path: Path) -> None:
    doc = _towers(3, merge="concat")
    for t in range(3):
        doc["nodes"][f"t{t}_a"] = _dense(f"t{t}_fc", 4)
        doc["nodes"][f"t{t}_b"] = _dense(f"t{t}_fc", 4, "tanh")
        doc["nodes"][f"t{t}_drop"] = {"merge": "add", "inputs": [f"t{t}_a", f"t{t}_b"]}
    (group,) = find_repeats(_check(tmp_path, doc))
    assert group.branches[1] == ("t1_fc", "t1_a", "t1_b", "t1_drop")
    assert group.signature == "Dense(8, relu) → [Dense(4, relu) | Dense(4, tanh)] → add"


def test_a_source_may_feed_any_node_of_a_branch(tmp_path: Path) -> None:
    doc = _towers(3)
    for t in range(3):
        doc["nodes"][f"t{t}_drop"] = {"merge": "add", "inputs": [f"t{t}_fc", "x2"]}
    doc["nodes"]["x2"] = _dense("stem", 8)
    (group,) = find_repeats(_check(tmp_path, doc))
    assert group.sources == ("stem", "x2") and group.count == 3


def test_nodes_of_block_instances_never_fold(tmp_path: Path) -> None:
    doc = _towers(1)
    doc["blocks"] = {
        "tower": {
            "inputs": ["x"],
            "nodes": {"fc": _dense("x", 8), "drop": {"layer": "Dropout", "config": {"rate": 0.5}, "inputs": "fc"}},
            "outputs": {"out": "drop"},
        }
    }
    doc["nodes"] = {"stem": _dense("x", 16)}
    doc["nodes"].update({f"t{t}": {"block": "tower", "inputs": "stem"} for t in range(4)})
    doc["nodes"]["fuse"] = {"merge": "weighted", "inputs": [f"t{t}" for t in range(4)]}
    doc["nodes"]["head"] = _dense("fuse", 1, None)
    checked = _check(tmp_path, doc)
    assert checked.scopes  # the towers are block instances
    assert find_repeats(checked) == []


def test_a_node_with_a_problem_never_folds(tmp_path: Path) -> None:
    doc = _towers(4)
    doc["nodes"]["t2_fc"]["config"]["unitz"] = 3  # a schema error: drawn in red, never folded
    checked = _check(tmp_path, doc, lenient=True)
    assert checked.problems
    (group,) = find_repeats(checked)
    assert [b[0] for b in group.branches] == ["t0_fc", "t1_fc", "t3_fc"]
    broken = copy.deepcopy(_towers(3))
    broken["nodes"]["t1_drop"]["config"]["rate"] = "half"
    assert find_repeats(_check(tmp_path, broken, lenient=True)) == []


def test_bundled_specs(tmp_path: Path) -> None:
    (experts,) = find_repeats(check_spec(ROOT / "specs" / "gated_experts.json"))
    assert experts.count == 3 and experts.sinks == ("mix",)
    assert find_repeats(check_spec(ROOT / "specs" / "image_tag.json")) == []


def test_long_branches_keep_a_short_signature(tmp_path: Path) -> None:
    doc = _towers(3)
    for t in range(3):
        prev = "stem"
        for d in range(9):
            doc["nodes"][f"t{t}_c{d}"] = _dense(prev, 8 + d)
            prev = f"t{t}_c{d}"
        doc["nodes"][f"t{t}_drop"]["inputs"] = prev
        del doc["nodes"][f"t{t}_fc"]
    (group,) = find_repeats(_check(tmp_path, doc))
    assert len(group.branches[0]) == 10
    assert (
        group.signature
        == "Dense(8, relu) → Dense(9, relu) → Dense(10, relu) → … 5 more → Dense(16, relu) → Dropout(0.5)"
    )
