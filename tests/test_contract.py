"""The model's interface is the spec's: input and output order and names, everywhere.

Keras orders a functional model's dict inputs and outputs by sorted key and
names its outputs after the layers that make them; fusec's models must
instead follow the spec, so a user who feeds lists in the spec's order, or
dicts by name, gets the same answers, the same losses and the same training.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SPECS
from fusec.cli import cli
from fusec.keras.build import build_model
from fusec.render import to_dot
from fusec.static.check import check_spec
from fusec.static.summary import format_summary
from helpers import spec, write

ALL_SPECS = sorted(SPECS.glob("*.json"))

#: Inputs and outputs declared out of alphabetical order, with different widths, so a
#: re-sorted interface either crashes or visibly mixes up the tensors.
UNSORTED = spec(
    name="unsorted",
    inputs={"x0": {"shape": [3]}, "x1": {"shape": [5]}, "g": {"shape": [2]}},
    shared={"head": {"layer": "Dense", "config": {"units": 1}}},
    nodes={
        "mix": {"merge": "concat", "inputs": ["x0", "x1", "g"]},
        "trunk": {"layer": "Dense", "config": {"units": 6, "activation": "relu"}, "inputs": "mix"},
        "t_price": {"layer": "Dense", "config": {"units": 4}, "inputs": "trunk"},
        "t_clicked": {"layer": "Dense", "config": {"units": 4}, "inputs": "trunk"},
        "price": {"shared": "head", "inputs": "t_price"},
        "clicked": {"shared": "head", "inputs": "t_clicked"},
        "category": {"layer": "Dense", "config": {"units": 3, "activation": "softmax"}, "inputs": "trunk"},
    },
    outputs={
        "price": {"from": "price", "loss": "mse"},
        "category": {"from": "category", "loss": "sparse_categorical_crossentropy"},
        "clicked": {"from": "clicked", "loss": "mse", "loss_weight": 0.5},
    },
)


def _feeds(model: Any, rng: np.random.Generator, n: int = 4) -> dict[str, np.ndarray]:
    out = {}
    for t in model.inputs:
        shape = [n, *(4 if d is None else d for d in t.shape[1:])]
        if "int" in str(t.dtype):
            out[t.name] = rng.integers(0, 3, shape).astype(str(t.dtype))
        else:
            out[t.name] = rng.normal(size=shape).astype("float32")
    return out


def _labels(model: Any, checked: Any, rng: np.random.Generator, n: int = 4) -> dict[str, np.ndarray]:
    out = {}
    for name, t in zip(model.output_names, model.outputs, strict=True):
        loss = checked.doc["outputs"][name].get("loss")
        shape = [n, *(4 if d is None else d for d in t.shape[1:])]
        loss_name = loss if isinstance(loss, str) else (loss or {}).get("name", "")
        if loss_name.startswith("sparse"):
            out[name] = rng.integers(0, shape[-1], shape[:-1]).astype("int32")
        elif loss:
            out[name] = rng.uniform(0, 1, shape).astype("float32")
    return out


def _as_list(result: Any, names: list[str]) -> list[np.ndarray]:
    if isinstance(result, dict):
        return [np.asarray(result[n]) for n in names]
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


def _check_interface(checked: Any, model: Any) -> None:
    assert [t.name for t in model.inputs] == list(checked.doc["inputs"])
    assert list(model.output_names) == list(checked.doc["outputs"])


@pytest.mark.slow
@pytest.mark.parametrize("path", ALL_SPECS, ids=[p.stem for p in ALL_SPECS])
def test_lists_in_spec_order_equal_dicts_by_name(path: Path, keras: Any) -> None:
    checked = check_spec(path)
    model = build_model(checked)
    _check_interface(checked, model)
    rng = np.random.default_rng(0)
    x = _feeds(model, rng)
    names = list(model.output_names)
    as_list = [x[n] for n in checked.doc["inputs"]]
    by_dict = _as_list(model.predict(x, verbose=0), names)
    by_list = _as_list(model.predict(as_list, verbose=0), names)
    for a, b in zip(by_dict, by_list, strict=True):
        np.testing.assert_array_equal(a, b)
    y = _labels(model, checked, rng)
    if not y:
        return  # nothing to train (an output without a loss)
    assert model.evaluate(x, y, verbose=0, return_dict=True) == model.evaluate(
        as_list, y if len(y) == 1 else [y[n] for n in names if n in y], verbose=0, return_dict=True
    )


@pytest.mark.slow
def test_unsorted_interface_follows_the_spec(tmp_path: Path, keras: Any) -> None:
    checked = check_spec(write(tmp_path, UNSORTED))
    model = build_model(checked)
    _check_interface(checked, model)
    assert model.output_names == ["price", "category", "clicked"]
    rng = np.random.default_rng(1)
    x = _feeds(model, rng, 8)
    y = _labels(model, checked, rng, 8)
    listed_x, listed_y = [x["x0"], x["x1"], x["g"]], [y["price"], y["category"], y["clicked"]]
    for a, b in zip(model.predict(x, verbose=0), model.predict(listed_x, verbose=0), strict=True):
        np.testing.assert_array_equal(a, b)
    by_dict = model.evaluate(x, y, verbose=0, return_dict=True)
    assert by_dict == model.evaluate(listed_x, listed_y, verbose=0, return_dict=True)
    assert {"price_loss", "category_loss", "clicked_loss"} <= set(by_dict)

    # Training from identical weights on the same batches: the same losses, the same weights.
    twin = build_model(check_spec(write(tmp_path, UNSORTED)))
    h1 = model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    h2 = twin.fit(listed_x, listed_y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    assert h1.keys() == h2.keys()
    for key in h1:
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-6, err_msg=key)
    for a, b in zip(model.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.slow
def test_outputs_from_shared_layers_ports_and_merges_are_named(tmp_path: Path, keras: Any) -> None:
    doc = spec(
        inputs={"seq": {"shape": [5, 3]}},
        shared={"head": {"layer": "Dense", "config": {"units": 2}}},
        nodes={
            "enc": {"layer": "LSTM", "config": {"units": 4, "return_state": True}, "inputs": "seq"},
            "both": {"merge": "add", "inputs": ["enc", "enc.2"]},
            "a": {"shared": "head", "inputs": "enc"},
            "b": {"shared": "head", "inputs": "both"},
        },
        outputs={
            "z_state": {"from": "enc.1"},
            "summed": {"from": "both"},
            "a": {"from": "a", "loss": "mse"},
            "again": {"from": "a"},
            "b_out": {"from": "b", "loss": "mae"},
        },
    )
    checked = check_spec(write(tmp_path, doc))
    model = build_model(checked)
    assert model.output_names == ["z_state", "summed", "a", "again", "b_out"]
    # The Identity layers that name outputs add no weights.
    assert model.count_params() == checked.totals.params


def test_output_name_may_not_take_another_nodes_id(tmp_path: Path) -> None:
    from fusec.errors import FusecError

    doc = spec(outputs={"h": {"from": "y", "loss": "mse"}})
    with pytest.raises(FusecError) as info:
        check_spec(write(tmp_path, doc))
    (problem,) = info.value.problems
    assert problem.jsonpath == "$.outputs.h" and "has the id of node `h`" in problem.message


@pytest.mark.slow
def test_compiled_signature_manifest_and_cli_follow_the_spec(tmp_path: Path, keras: Any) -> None:
    path = write(tmp_path, UNSORTED)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["compile", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "serving_default: x0, x1, g -> price, category, clicked" in result.output
    manifest = json.loads((out / "fusec.json").read_text())
    assert list(manifest["signature"]["inputs"]) == ["x0", "x1", "g"]
    assert list(manifest["signature"]["outputs"]) == ["price", "category", "clicked"]
    # Served by plain TensorFlow: arguments by name, results keyed by the output names.
    code = (
        "import sys, json, numpy as np, tensorflow as tf\n"
        "f = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "r = f(x0=tf.ones([2, 3]), x1=tf.ones([2, 5]), g=tf.ones([2, 2]))\n"
        "print(json.dumps({k: list(v.shape) for k, v in r.items()}))\n"
    )
    served = subprocess.run(
        [sys.executable, "-c", code, str(out / "saved_model")], capture_output=True, text=True, check=True
    )
    assert json.loads(served.stdout.strip().splitlines()[-1]) == {
        "price": [2, 1],
        "category": [2, 3],
        "clicked": [2, 1],
    }
    # The reloaded archive keeps the order and the names.
    import fusec.keras.fusion  # noqa: F401

    model = keras.models.load_model(out / "unsorted.keras")
    assert [t.name for t in model.inputs] == ["x0", "x1", "g"]
    assert model.output_names == ["price", "category", "clicked"]


def test_summary_and_render_follow_the_spec(tmp_path: Path) -> None:
    checked = check_spec(write(tmp_path, UNSORTED))
    text = format_summary(checked)
    outputs = [line.split()[0] for line in text.splitlines() if "<-" in line]
    assert outputs == ["price", "category", "clicked"]
    rows = [line.split()[0] for line in text.splitlines()]
    assert rows.index("x0") < rows.index("x1") < rows.index("g")
    drawn = [
        line.split("<B>", 1)[1].split("</B>", 1)[0]
        for line in to_dot(checked).splitlines()
        if line.startswith("  o") and "<B>" in line
    ]
    assert drawn == ["price", "category", "clicked"]  # output boxes o0, o1, o2


@pytest.mark.parametrize(
    "manifest",
    [b"[" * 100_000 + b"]" * 100_000, b'{"name": "' + b"x" * (2 << 20) + b'"}', b"\xff\xfe", b"[1, 2]"],
    ids=["deeply_nested", "over_1_MiB", "not_utf8", "not_an_object"],
)
def test_load_model_refuses_a_hostile_manifest_cleanly(tmp_path: Path, manifest: bytes) -> None:
    """A folder's fusec.json is data: any content gives the clean OutputError, never a crash."""
    import fusec
    from fusec.errors import OutputError

    (tmp_path / "fusec.json").write_bytes(manifest)
    with pytest.raises(OutputError, match="not a fusec compile output"):
        fusec.load_model(tmp_path)
