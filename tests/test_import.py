"""``fusec import``: Keras models into specs and weights files, proven equal to the source model."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from fusec import check_spec
from fusec.cli import cli
from fusec.errors import FusecError
from fusec.importer import ImportRefused, import_source


def _outputs(model: Any, x: np.ndarray) -> list[np.ndarray]:
    out = model(x, training=False)
    if isinstance(out, dict):
        out = list(out.values())
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _roundtrip(keras: Any, model: Any, tmp_path: Path, **kw: Any) -> Any:
    """Save, import, check, build with the imported weights: outputs and params equal Keras's."""
    from fusec.keras.build import build_model
    from fusec.keras.weights import set_weights

    src = tmp_path / "src.keras"
    model.save(src)
    report = import_source(str(src), tmp_path / "m.json", **kw)
    checked = check_spec(tmp_path / "m.json")
    assert checked.totals.params == model.count_params() == report.params
    for layer in model.layers:  # every top-level node's shape is Keras's
        node = report.nodes.get(layer.name)
        if node in checked.shapes.info and len(layer._inbound_nodes) == 1 and not isinstance(layer, keras.Model):
            assert checked.shapes.info[node].shape == tuple(layer.output.shape), layer.name
    built = build_model(checked, compile=False)
    set_weights(built, checked)
    x = np.random.default_rng(0).normal(size=(2, *model.inputs[0].shape[1:])).astype("float32")
    for a, b in zip(_outputs(model, x), _outputs(built, x), strict=True):
        assert np.max(np.abs(a - b)) <= 1e-5
    return report


def _randomise(keras: Any, model: Any) -> None:
    """Non-trivial batch-norm statistics, so the copy of every weight is tested."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([g, b, rng.normal(size=m.shape).astype("f"), rng.uniform(0.5, 2, v.shape).astype("f")])


def test_functional_with_ops_nested_and_shared(keras: Any, tmp_path: Path) -> None:
    inp = keras.Input((6, 6, 3), name="img")
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    y = 2.0 - (x + 3.0) * 0.5
    sub = keras.Sequential([keras.layers.Conv2D(4, 1, name="sc"), keras.layers.ReLU(name="sr")], name="sub")
    dense = keras.layers.Dense(4, name="shared_d")
    merged = keras.layers.Add(name="addm")([dense(sub(y)), dense(x)])
    out = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D(name="gap")(merged))
    model = keras.Model(inp, out, name="toy")
    _randomise(keras, model)
    report = _roundtrip(keras, model, tmp_path)
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["weights"] == "m.weights.npz" and "shared_d" in doc["shared"] and "sub" in doc["blocks"]
    assert {n["layer"] for n in doc["nodes"].values() if n.get("layer") == "ScalarOp"} == {"ScalarOp"}
    assert report.nodes["sub/sc"] == "sub__sc"


def test_sequential(keras: Any, tmp_path: Path) -> None:
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.2), keras.layers.Dense(3)]
    )
    _roundtrip(keras, model, tmp_path)


def test_refusal_lists_every_unsupported_layer_and_writes_nothing(keras: Any, tmp_path: Path) -> None:
    inp = keras.Input((8,))
    x = keras.layers.GaussianNoise(0.1, name="noise")(inp)
    x = keras.layers.Dense(4, name="d")(x)
    x = keras.layers.ActivityRegularization(name="act_reg")(x)
    src = tmp_path / "bad.keras"
    keras.Model(inp, x).save(src)
    with pytest.raises(ImportRefused) as err:
        import_source(str(src), tmp_path / "out.json")
    text = str(err.value)
    assert "`noise` (GaussianNoise)" in text and "`act_reg` (ActivityRegularization)" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.keras"]


def test_blocks_fold_a_resnet_like_archive(keras: Any, tmp_path: Path) -> None:
    inp = keras.Input((8, 8, 4))
    x = inp
    for i in range(4):
        y = keras.layers.Conv2D(4, 3, padding="same", name=f"b{i}_conv")(x)
        y = keras.layers.BatchNormalization(name=f"b{i}_bn")(y)
        x = keras.layers.ReLU(name=f"b{i}_out")(keras.layers.Add(name=f"b{i}_add")([x, y]))
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(x)))
    _randomise(keras, model)
    report = _roundtrip(keras, model, tmp_path, blocks=True)
    assert report.lines < report.flat_lines
    assert "blocks" in json.loads((tmp_path / "m.json").read_text())


def test_archive_import_never_imports_tensorflow(keras: Any, tmp_path: Path) -> None:
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(tmp_path / "s.keras")
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\nfrom fusec.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "import", str(tmp_path / "s.keras"), "-o", str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s.weights.npz").exists()


def test_mobilenet_v3_small_through_import(keras: Any, tmp_path: Path) -> None:
    model = keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=4)
    _randomise(keras, model)
    _roundtrip(keras, model, tmp_path)  # no rewriting: hard-swish's `x + 3`, `x * (1/6)` become ScalarOp nodes
    report = import_source(
        "keras.applications.MobileNetV3Small", tmp_path / "app.json", input_shape=(32, 32, 3), classes=4
    )
    assert check_spec(tmp_path / "app.json").totals.params == report.params == model.count_params()


# --- without TensorFlow: the weights file, the command line ---------------------------------------

_SPEC = {
    "fusec": 1,
    "inputs": {"x": {"shape": [3]}},
    "nodes": {"d": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"}},
    "outputs": {"y": {"from": "d"}},
}


def _spec_with(tmp_path: Path, arrays: dict[str, np.ndarray], weights: str = "w.weights.npz") -> Path:
    np.savez(tmp_path / "w.weights.npz", **arrays)  # type: ignore[arg-type]
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({**_SPEC, "weights": weights}))
    return spec


def test_weights_file_accepted(tmp_path: Path) -> None:
    spec = _spec_with(tmp_path, {"d/0": np.zeros((3, 2), "f"), "d/1": np.zeros(2, "f")})
    assert check_spec(spec).totals.params == 8


@pytest.mark.parametrize(
    ("arrays", "weights", "says"),
    [
        ({"d/0": np.zeros((3, 2), "f")}, "w.weights.npz", "has 8 parameters but its arrays hold 6"),
        ({"e/0": np.zeros(8, "f")}, "w.weights.npz", "names no layer node"),
        ({"d/0": np.zeros(8, "U1")}, "w.weights.npz", "not numbers"),
        ({"d/0": np.zeros(8, "c8")}, "w.weights.npz", "not numbers"),
        ({"d/0": np.zeros(8, "f")}, "../w.weights.npz", "leaves the spec's folder"),
        ({"d/0": np.zeros(8, "f")}, "missing.npz", "no file"),
    ],
)
def test_weights_file_refused(tmp_path: Path, arrays: dict[str, np.ndarray], weights: str, says: str) -> None:
    spec = _spec_with(tmp_path, arrays, weights)
    with pytest.raises(FusecError) as err:
        check_spec(spec)
    assert says in str(err.value) and "$.weights" in str(err.value)


def test_weights_file_with_objects_is_refused_unread(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.weights.npz", **{"d/0": np.array([object()] * 8)})  # type: ignore[arg-type]
    (tmp_path / "s.json").write_text(json.dumps({**_SPEC, "weights": "w.weights.npz"}))
    with pytest.raises(FusecError, match="not numbers"):
        check_spec(tmp_path / "s.json")


def test_cli_refuses_a_broken_archive_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("config.json", "{not json")
    result = CliRunner().invoke(cli, ["import", str(bad), "-o", str(tmp_path / "m.json")])
    assert result.exit_code == 1
    assert "bad.keras" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.keras"]
