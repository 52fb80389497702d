"""Composition: blocks (shared and separate weights) and pretrained sub-models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SPECS
from fusec.cli import cli
from fusec.errors import FusecError, GraphError, ShapeError
from fusec.keras.build import build_model
from fusec.static.check import check_spec
from helpers import spec, write

TOWER = {
    "inputs": ["x"],
    "nodes": {
        "h": {"layer": "Dense", "config": {"units": 4, "activation": "relu"}, "inputs": "x"},
        "o": {"layer": "Dense", "config": {"units": 2}, "inputs": "h"},
    },
    "outputs": {"out": "o"},
}


def two_towers(shared_weights: bool, **extra: Any) -> dict[str, Any]:
    return spec(
        inputs={"a": {"shape": [8]}, "b": {"shape": [8]}},
        blocks={"tower": {**TOWER, "shared_weights": shared_weights}, **extra},
        nodes={
            "ta": {"block": "tower", "inputs": "a"},
            "tb": {"block": "tower", "inputs": {"x": "b"}},
            "y": {"merge": "concat", "inputs": ["ta", "tb"]},
        },
        outputs={"y": {"from": "y", "loss": "mse"}},
    )


@pytest.mark.parametrize(("shared", "params"), [(True, 36 + 10), (False, 2 * (36 + 10))], ids=["shared", "separate"])
def test_block_parameter_counts(tmp_path: Path, shared: bool, params: int) -> None:
    checked = check_spec(write(tmp_path, two_towers(shared)))
    assert checked.totals.params == params
    assert [n for n in checked.order if n.startswith("ta__")] == ["ta__h", "ta__o"]
    assert checked.scopes["tb__o"] == (("tb", "tower"),)


def _embedding(model: Any, keras: Any, inp: str, tensor_node: int, shared: bool) -> Any:
    layer = model.get_layer("tower__o" if shared else ("ta__o" if inp == "a" else "tb__o"))
    out = layer._inbound_nodes[tensor_node if shared else 0].output_tensors[0]
    return keras.Model(model.get_layer(inp).output, out)


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "separate"])
def test_training_one_instance_moves_the_other_only_when_shared(tmp_path: Path, keras: Any, shared: bool) -> None:
    model = build_model(check_spec(write(tmp_path, two_towers(shared))))
    tower_a = _embedding(model, keras, "a", 0, shared)
    tower_b = _embedding(model, keras, "b", 1, shared)
    x = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    before = tower_b.predict(x, verbose=0)
    tower_a.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    tower_a.fit(x, np.ones((16, 2), "float32") * 3, epochs=3, verbose=0)
    after = tower_b.predict(x, verbose=0)
    assert (not np.allclose(before, after)) is shared


def test_nested_blocks_and_ports(tmp_path: Path, keras: Any) -> None:
    doc = spec(
        blocks={
            "pair": {
                "inputs": ["x"],
                "nodes": {
                    "left": {"layer": "Dense", "config": {"units": 3}, "inputs": "x"},
                    "right": {"layer": "Dense", "config": {"units": 5}, "inputs": "x"},
                },
                "outputs": {"l": "left", "r": "right"},
            },
            "outer": {
                "inputs": ["x"],
                "nodes": {
                    "inner": {"block": "pair", "inputs": "x"},
                    "both": {"merge": "concat", "inputs": ["inner.l", "inner.r"]},
                },
                "outputs": {"out": "both"},
            },
        },
        nodes={
            "o": {"block": "outer", "inputs": "x"},
            "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "o"},
        },
    )
    checked = check_spec(write(tmp_path, doc))
    assert checked.info["o__both"].shape == (None, 8)
    assert "o__inner__left" in checked.order
    model = build_model(checked)
    assert model.count_params() == checked.totals.params == (8 * 3 + 3) + (8 * 5 + 5) + 9
    assert checked.scopes["o__inner__left"] == (("o", "outer"), ("o__inner", "pair"))


BLOCK_ERRORS = [
    (
        "unknown-input",
        lambda d: d["nodes"]["tb"].update(inputs={"xx": "b"}),
        "$.nodes.tb.inputs.xx",
        "block `tower` has no input `xx`",
    ),
    (
        "unknown-block",
        lambda d: d["nodes"]["tb"].update(block="towr"),
        "$.nodes.tb.block",
        "did you mean `tower`?",
    ),
    (
        "dangling-inside",
        lambda d: d["blocks"]["tower"]["nodes"]["o"].update(inputs="hh"),
        "$.blocks.tower.nodes.o.inputs",
        "no node or input named `hh`",
    ),
    (
        "bad-output",
        lambda d: d["blocks"]["tower"]["outputs"].update(out="oo"),
        "$.blocks.tower.outputs.out",
        "names no node `oo`",
    ),
    (
        "cycle",
        lambda d: d["blocks"]["tower"]["nodes"].update(loop={"block": "tower", "inputs": "x"}),
        "$.blocks.tower.nodes.loop.block",
        "block cycle: tower -> tower",
    ),
    (
        "ambiguous-port",
        lambda d: d["blocks"]["tower"]["outputs"].update(hidden="h"),
        "$.nodes.y.inputs[0]",
        "has 2 outputs; name one",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"), [c[1:] for c in BLOCK_ERRORS], ids=[c[0] for c in BLOCK_ERRORS]
)
def test_block_errors(tmp_path: Path, mutate: Any, path: str, fragment: str) -> None:
    doc = two_towers(False)
    mutate(doc)
    with pytest.raises(GraphError) as info:
        check_spec(write(tmp_path, doc))
    hits = [p for p in info.value.problems if p.jsonpath == path and fragment in p.message + p.hint]
    assert hits, str(info.value)


def test_shape_error_inside_block_points_at_definition(tmp_path: Path) -> None:
    doc = two_towers(True)
    doc["blocks"]["tower"]["nodes"]["h"] = {
        "layer": "Reshape",
        "config": {"target_shape": [3, 3]},
        "inputs": "x",
    }
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    paths = {p.jsonpath for p in info.value.problems}
    assert paths == {"$.blocks.tower.nodes.h.config.target_shape"}


# -- sub-models ------------------------------------------------------------


def test_pretrained_submodels_frozen(keras: Any) -> None:
    checked = check_spec(SPECS / "late_fusion_pretrained.json")
    assert checked.totals.trainable == 2
    model = build_model(checked)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (trainable, model.count_params()) == (checked.totals.trainable, checked.totals.params)
    image_model = keras.saving.load_model(SPECS / "parts" / "image_classifier.keras")
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    probe = keras.Model(
        model.get_layer("image").output, model.get_layer("image_model")._inbound_nodes[-1].output_tensors[0]
    )
    np.testing.assert_allclose(
        probe.predict(x, verbose=0),
        image_model.predict({"image": x}, verbose=0)["probs"],
        rtol=1e-5,
        atol=1e-6,
    )


def test_spec_submodel_with_weights(tmp_path: Path, keras: Any) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    for name in ("image_classifier.json", "image_classifier.keras"):
        (parts / name).write_bytes((SPECS / "parts" / name).read_bytes())
    doc = spec(
        inputs={"image": {"shape": [32, 32, 3]}},
        nodes={
            "cnn": {
                "model": "parts/image_classifier.json",
                "weights": "parts/image_classifier.keras",
                "inputs": "image",
            }
        },
        outputs={"p": {"from": "cnn"}},
    )
    checked = check_spec(write(tmp_path, doc))
    assert checked.totals.params == 597 and checked.totals.trainable == 565
    model = build_model(checked)
    reference = keras.saving.load_model(parts / "image_classifier.keras")
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        model.predict({"image": x}, verbose=0)["p"],
        reference.predict({"image": x}, verbose=0)["probs"],
        rtol=1e-5,
    )


def test_lambda_submodel_refused(tmp_path: Path, keras: Any) -> None:
    inp = keras.Input((4,))
    out = keras.layers.Lambda(lambda t: t * 2)(inp)
    keras.Model(inp, out).save(tmp_path / "evil.keras")
    doc = spec(nodes={"y": {"model": "evil.keras", "inputs": "x"}})
    doc["inputs"]["x"]["shape"] = [4]
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    (problem,) = info.value.problems
    assert problem.jsonpath == "$.nodes.y.model"
    assert "layer `Lambda`" in problem.message


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink"])
def test_submodel_path_may_not_escape(tmp_path: Path, where: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "m.keras").write_bytes((SPECS / "parts" / "image_classifier.keras").read_bytes())
    home = tmp_path / "home"
    home.mkdir()
    if where == "symlink":
        os.symlink(outside / "m.keras", home / "link.keras")
    raw = {"dotdot": "../outside/m.keras", "absolute": str(outside / "m.keras"), "symlink": "link.keras"}[where]
    doc = spec(inputs={"image": {"shape": [32, 32, 3]}}, nodes={"y": {"model": raw, "inputs": "image"}})
    path = write(home, doc)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 1
    assert "$.nodes.y.model" in result.output and "leaves the spec's folder" in result.output
    assert "--allow-dir" in result.output
    allowed = CliRunner().invoke(cli, ["check", str(path), "--allow-dir", str(outside)])
    assert allowed.exit_code == 0, allowed.output


def test_submodel_cycle(tmp_path: Path) -> None:
    a = spec(nodes={"y": {"model": "b.json", "inputs": "x"}})
    b = spec(nodes={"y": {"model": "a.json", "inputs": "x"}})
    write(tmp_path, b, "b.json")
    with pytest.raises(FusecError, match=r"sub-model cycle: a.json -> b.json -> a.json"):
        check_spec(write(tmp_path, a, "a.json"))


def test_submodel_input_mismatch(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_bytes((SPECS / "parts" / "image_classifier.keras").read_bytes())
    doc = spec(nodes={"y": {"model": "m.keras", "inputs": "x"}})
    with pytest.raises(ShapeError, match=r"input `image` takes \(None, 32, 32, 3\). Received: \(None, 8\) from `x`"):
        check_spec(write(tmp_path, doc))


# -- named inputs and multi-output nodes --------------------------------------------


def seq2seq(**changes: Any) -> dict[str, Any]:
    doc = spec(
        inputs={"src": {"shape": [None, 6]}, "tgt": {"shape": [5, 4]}},
        nodes={
            "enc": {"layer": "LSTM", "config": {"units": 8, "return_state": True}, "inputs": "src"},
            "dec": {"layer": "LSTM", "config": {"units": 8, "return_sequences": True}, "inputs": "tgt"},
            "attn": {"layer": "Attention", "inputs": {"query": "dec", "value": "dec"}},
            "mix": {
                "layer": "MultiHeadAttention",
                "config": {"num_heads": 2, "key_dim": 4},
                "inputs": "attn",
            },
            "pooled": {"layer": "GlobalAveragePooling1D", "inputs": "mix"},
            "y": {"merge": "concat", "inputs": ["pooled", "enc.1", "enc.2"]},
        },
        outputs={"y": {"from": "y", "loss": "mse"}, "h": {"from": "enc.1"}},
    )
    for node, value in changes.items():
        doc["nodes"][node].update(value)
    return doc


def test_ports_and_named_inputs_build(tmp_path: Path, keras: Any) -> None:
    checked = check_spec(write(tmp_path, seq2seq()))
    assert checked.info["y"].shape == (None, 24)
    model = build_model(checked)
    assert model.count_params() == checked.totals.params
    assert model.output_names == ["y", "h"]  # the spec's order
    out = model.predict({"src": np.ones((2, 3, 6), "float32"), "tgt": np.ones((2, 5, 4), "float32")}, verbose=0)
    out = dict(zip(model.output_names, out, strict=True))
    assert out["h"].shape == (2, 8) and out["y"].shape == (2, 24)


PORT_ERRORS = [
    ("bad-port", {"y": {"inputs": ["pooled", "enc.1", "enc.3"]}}, "$.nodes.y.inputs[2]", "has 3 outputs"),
    (
        "single-output-port",
        {"y": {"inputs": ["pooled", "enc.1", "dec.1"]}},
        "$.nodes.y.inputs[2]",
        "has one output",
    ),
    (
        "unknown-slot",
        {"attn": {"inputs": {"query": "dec", "vaule": "dec"}}},
        "$.nodes.attn.inputs.vaule",
        "did you mean `value`?",
    ),
    ("missing-slot", {"attn": {"inputs": {"query": "dec"}}}, "$.nodes.attn.inputs", "needs input `value`"),
    ("slot-list", {"attn": {"inputs": ["dec", "dec"]}}, "$.nodes.attn.inputs", "takes named inputs"),
]


@pytest.mark.parametrize(("changes", "path", "fragment"), [c[1:] for c in PORT_ERRORS], ids=[c[0] for c in PORT_ERRORS])
def test_port_and_slot_errors(tmp_path: Path, changes: Any, path: str, fragment: str) -> None:
    with pytest.raises(FusecError) as info:
        check_spec(write(tmp_path, seq2seq(**changes)))
    hits = [p for p in info.value.problems if p.jsonpath == path and fragment in p.message + p.hint]
    assert hits, str(info.value)


def test_attention_key_value_lengths(tmp_path: Path) -> None:
    doc = seq2seq(attn={"inputs": {"query": "dec", "value": "dec", "key": "src"}})
    with pytest.raises(ShapeError, match=r"needs query and key of one feature size|key and value of one length"):
        check_spec(write(tmp_path, doc))


def test_weights_archive_must_fit_the_spec(tmp_path: Path) -> None:
    """A spec sub-model's weights file is inspected at check time: another model's weights are refused."""
    for name in ("text_classifier.json", "image_classifier.keras"):
        (tmp_path / name).write_bytes((SPECS / "parts" / name).read_bytes())
    doc = spec(
        inputs={"t": {"shape": [24], "dtype": "int32"}},
        nodes={"y": {"model": "text_classifier.json", "weights": "image_classifier.keras", "inputs": "t"}},
    )
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    (problem,) = info.value.problems
    assert problem.jsonpath == "$.nodes.y.weights"
    assert "holds 597 weight values in 3 layers; the sub-model's spec has 16,085 in 2" in problem.message


def test_sequential_archive_is_fed_by_one_id(tmp_path: Path) -> None:
    """A Sequential archive has one input, named after its InputLayer: `"inputs": "x"` feeds it."""
    from test_corpus_archives import archive, dense, dense_weights, input_layer, weights_h5

    seq = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "seq", "layers": [input_layer("feat", [8]), {**dense("d", 3, "x", 8), "inbound_nodes": []}]},
    }
    archive(tmp_path / "seq.keras", seq, weights_h5(dense_weights(8, 3)))
    checked = check_spec(write(tmp_path, spec(nodes={"y": {"model": "seq.keras", "inputs": "x"}})))
    assert checked.info["y"].shape == (None, 3) and checked.info["y"].params == 27
    sub = checked.shapes.models["y"].sub
    assert list(sub.inputs) == ["feat"] and list(sub.outputs) == ["d"]
