"""Build: fusec's models equal the hand-written Keras of the seed answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import SPECS
from fusec.keras.build import build_model
from fusec.static.check import check_spec
from helpers import spec, write


def copy_weights(src: Any, dst: Any) -> int:
    """Copy weights layer by layer, matched by name; return how many layers had weights."""
    copied = 0
    for layer in src.layers:
        if layer.weights:
            dst.get_layer(layer.name).set_weights(layer.get_weights())
            copied += 1
    return copied


def seed000_by_hand(keras: Any) -> Any:
    """Seed 000's answer: IMAGE -> Conv -> MaxPool -> Conv -> MaxPool -> Dense; TAG -> Embedding -> Dense; merged."""
    L = keras.layers
    image = keras.Input((32, 32, 3), name="image")
    tag = keras.Input((1,), dtype="int32", name="tag")
    x = L.Rescaling(1 / 255, name="scale")(image)
    x = L.Conv2D(16, 3, activation="relu", name="conv1")(x)
    x = L.MaxPooling2D(name="pool1")(x)
    x = L.Conv2D(32, 3, activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(name="pool2")(x)
    x = L.Flatten(name="img_flat")(x)
    x = L.Dense(64, activation="relu", name="img_vec")(x)
    t = L.Embedding(1000, 16, name="tag_emb")(tag)
    t = L.Flatten(name="tag_flat")(t)
    t = L.Dense(16, activation="relu", name="tag_vec")(t)
    merged = L.Concatenate(name="fuse")([x, t])
    h = L.Dense(32, activation="relu", name="hidden")(merged)
    out = L.Dense(1, activation="sigmoid", name="is_cat")(h)
    return keras.Model({"image": image, "tag": tag}, {"is_cat": out})


def seed002_by_hand(keras: Any) -> Any:
    """Seed 002's answer, with the output Dense shared by the three branches."""
    L = keras.layers
    x = keras.Input((20,), name="x")
    shared = L.Dense(32, name="trunk")(x)
    subs = [L.Dense(16, name=f"sub{i}")(shared) for i in (1, 2, 3)]
    out = L.Dense(1, name="out")
    return keras.Model({"x": x}, {f"task{i}": out(s) for i, s in enumerate(subs, 1)})


def test_seed000_equals_hand_written(keras: Any) -> None:
    ours = build_model(check_spec(SPECS / "image_tag.json"))
    theirs = seed000_by_hand(keras)
    assert ours.count_params() == theirs.count_params() == check_spec(SPECS / "image_tag.json").totals.params
    assert copy_weights(theirs, ours) == 7
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32"),
        "tag": rng.integers(0, 1000, (4, 1)),
    }
    np.testing.assert_allclose(
        ours.predict(batch, verbose=0)["is_cat"],
        theirs.predict(batch, verbose=0)["is_cat"],
        rtol=1e-5,
        atol=1e-6,
    )


def test_seed002_equals_hand_written(keras: Any) -> None:
    ours = build_model(check_spec(SPECS / "multitask_shared.json"))
    theirs = seed002_by_hand(keras)
    assert ours.count_params() == theirs.count_params() == 2273
    assert copy_weights(theirs, ours) == 5
    x = np.random.default_rng(1).normal(size=(5, 20)).astype("float32")
    a, b = ours.predict({"x": x}, verbose=0), theirs.predict({"x": x}, verbose=0)
    assert ours.output_names == ["task1", "task2", "task3"]  # the spec's order
    a = dict(zip(ours.output_names, a, strict=True))
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_shared_layer_is_one_object(keras: Any) -> None:
    model = build_model(check_spec(SPECS / "multitask_shared.json"))
    out = model.get_layer("out")
    assert len(out._inbound_nodes) == 3  # called once per task branch
    assert [w.shape for w in out.weights] == [(16, 1), (1,)]
    assert not any(layer.name in ("y1", "y2", "y3") for layer in model.layers)


def test_losses_weights_metrics_compiled(keras: Any) -> None:
    model = build_model(check_spec(SPECS / "multitask_shared.json"))
    assert model.loss == {"task1": "mse", "task2": "mse", "task3": "mae"}
    assert model._compile_loss._user_loss_weights == {"task1": 1.0, "task2": 0.5, "task3": 0.25}
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.001)
    x = np.zeros((8, 20), "float32")
    y = {f"task{i}": np.ones((8, 1), "float32") for i in (1, 2, 3)}
    logs = model.fit({"x": x}, y, epochs=1, verbose=0).history
    assert {"task1_mae", "task2_mae"} <= set(logs)


def test_same_seed_same_weights(tmp_path: Path, keras: Any) -> None:
    path = SPECS / "image_tag.json"
    first = [w.copy() for w in build_model(check_spec(path), compile=False).get_weights()]
    second = build_model(check_spec(path), compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    other = spec(seed=2)
    third = build_model(check_spec(write(tmp_path, other)), compile=False).get_weights()
    fourth = build_model(check_spec(write(tmp_path, spec())), compile=False).get_weights()
    assert not np.array_equal(third[0], fourth[0])


def test_frozen_layer(tmp_path: Path, keras: Any) -> None:
    doc = spec()
    doc["nodes"]["h"]["trainable"] = False
    checked = check_spec(write(tmp_path, doc))
    model = build_model(checked)
    assert not model.get_layer("h").trainable
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == checked.totals.trainable == 5


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.json")), ids=lambda p: p.stem)
def test_static_counts_equal_keras(path: Path, keras: Any) -> None:
    checked = check_spec(path)
    model = build_model(checked, compile=False)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (trainable, model.count_params() - trainable) == (
        checked.totals.trainable,
        checked.totals.non_trainable,
    )
    for nid, info in checked.info.items():
        if info.kind in ("layer", "merge"):
            assert tuple(model.get_layer(nid).output.shape) == info.shape, nid


# --- deep graphs: Keras recurses once per layer -----------------------------------------


def _depth(n: int) -> int:
    return 0 if n == 0 else 1 + _depth(n - 1)


def test_deep_recursion_gives_room_and_restores_the_limit() -> None:
    import sys

    from fusec.keras.build import deep_recursion, run_deep

    before = sys.getrecursionlimit()
    with pytest.raises(RecursionError):
        _depth(before + 100)
    with deep_recursion(5_000):
        assert _depth(5_000) == 5_000
    assert sys.getrecursionlimit() == before
    assert run_deep(lambda: _depth(5_000), 5_000) == 5_000
    assert sys.getrecursionlimit() == before
    with pytest.raises(ZeroDivisionError):
        run_deep(lambda: 1 // 0, 10)


def _chain(n: int) -> dict[str, Any]:
    nodes = {
        f"a{i}": {"layer": "Activation", "config": {"activation": "relu"}, "inputs": f"a{i - 1}" if i else "x"}
        for i in range(n)
    }
    return spec(inputs={"x": {"shape": [4]}}, nodes=nodes, outputs={"y": {"from": f"a{n - 1}"}})


@pytest.mark.slow
def test_a_chain_deeper_than_pythons_limit_builds_and_saves(tmp_path: Path, keras: Any) -> None:
    """1,500 layers: past the ~900 Keras reaches with Python's default limit of 1,000, on build and on save."""
    from fusec.keras.build import deep_recursion
    from fusec.keras.save import save_artifacts

    checked = check_spec(write(tmp_path, _chain(1_500)))
    keras.backend.clear_session()
    model = build_model(checked)
    assert len(model.layers) == 1_502  # the input, 1,500 Activations and the output's Identity
    with deep_recursion(len(checked.order)):
        art = save_artifacts(model, checked, tmp_path / "out")
    assert (art.root / "saved_model" / "saved_model.pb").is_file()
    y = model([np.full((2, 4), -1.0, "float32")])
    assert float(np.abs(np.asarray(y["y"])).sum()) == 0.0


@pytest.mark.slow
def test_dot_zero_references_build(tmp_path: Path, keras: Any) -> None:
    """`x.0` and `h.0` resolve to the tensors `x` and `h`, in build as in check."""
    doc = spec(
        nodes={
            "h": {"layer": "Dense", "config": {"units": 4}, "inputs": "x.0"},
            "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "h.0"},
        },
        outputs={"y": {"from": "y"}, "hidden": {"from": "h.0"}},
    )
    keras.backend.clear_session()
    model = build_model(check_spec(write(tmp_path, doc)))
    assert model.output_names == ["y", "hidden"]
    assert model.get_layer("y").input is model.get_layer("h").output
