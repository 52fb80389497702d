"""Fusion: the weighted and gated merges against the seed answers, Keras and their rules."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import SPECS
from fusec.errors import FusecError, GraphError, SchemaError, ShapeError
from fusec.keras.build import build_model
from fusec.spec.graph import build_graph
from fusec.static.check import check_spec
from fusec.vocab.merges import MERGES
from helpers import spec, write

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype("float32")


# --- seed 001: learned weighted late fusion -----------------------------------


def seed001_by_hand(keras: Any) -> Any:
    """Seed 001's answer: WeightedAverage (softmax of a (1, 1, n) variable) over two Dense branches."""
    import tensorflow as tf

    class WeightedAverage(keras.layers.Layer):
        def __init__(self, n_output: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.W = self.add_weight(
                shape=(1, 1, n_output), initializer=keras.initializers.RandomUniform(0, 1), name="W"
            )
            self.concat = keras.layers.Concatenate(axis=-1)

        def call(self, inputs: list[Any]) -> Any:
            inputs = [tf.expand_dims(i, -1) for i in inputs]
            inputs = self.concat(inputs)  # (n_batch, n_feat, n_inputs)
            weights = tf.nn.softmax(self.W, axis=-1)
            return tf.reduce_sum(weights * inputs, axis=-1)

    L = keras.layers
    inp1, inp2 = keras.Input((100,), name="inp1"), keras.Input((100,), name="inp2")
    x1 = L.Dense(32, activation="relu", name="x1")(inp1)
    x2 = L.Dense(32, activation="relu", name="x2")(inp2)
    w_avg = WeightedAverage(n_output=2, name="w_avg")([x1, x2])
    out = L.Dense(1, name="out")(w_avg)
    return keras.Model({"inp1": inp1, "inp2": inp2}, {"out": out})


SEED001 = spec(
    name="seed001",
    inputs={"inp1": {"shape": [100]}, "inp2": {"shape": [100]}},
    nodes={
        "x1": {"layer": "Dense", "config": {"units": 32, "activation": "relu"}, "inputs": "inp1"},
        "x2": {"layer": "Dense", "config": {"units": 32, "activation": "relu"}, "inputs": "inp2"},
        "w_avg": {"merge": "weighted", "inputs": ["x1", "x2"]},
        "out": {"layer": "Dense", "config": {"units": 1}, "inputs": "w_avg"},
    },
    outputs={"out": {"from": "out", "loss": "mse"}},
    training={"optimizer": "sgd", "learning_rate": 0.1},
)


def copy_by_name(src: Any, dst: Any) -> None:
    """Copy weights by layer name; the seed's W (1, 1, n) becomes the merge's logits (n,)."""
    for layer in src.layers:
        if not layer.weights:
            continue
        if layer.name == "w_avg":
            dst.get_layer("w_avg").logits.assign(np.reshape(layer.W.numpy(), (-1,)))
        else:
            dst.get_layer(layer.name).set_weights(layer.get_weights())


def max_diff(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def test_seed001_equals_hand_written(tmp_path: Path, keras: Any) -> None:
    checked = check_spec(write(tmp_path, SEED001))
    ours, theirs = build_model(checked, compile=False), seed001_by_hand(keras)
    assert ours.count_params() == theirs.count_params() == checked.totals.params == 2 * 3232 + 2 + 33
    copy_by_name(theirs, ours)
    batch = {"inp1": rand(8, 100), "inp2": rand(8, 100)}
    assert max_diff(ours(batch)["out"], theirs(batch)["out"]) < 1e-5
    seed_weights = keras.ops.softmax(theirs.get_layer("w_avg").W, axis=-1).numpy().ravel()
    np.testing.assert_allclose(ours.get_layer("w_avg").normalized_weights(), seed_weights, atol=1e-7)


# --- seed 003: a gate's softmax weighting L expert softmaxes ------------------


def seed003_by_hand(keras: Any, n: int = 3, k: int = 5) -> Any:
    """Seed 003's answer: Reshape the gate to (1, L), Concatenate + Reshape the experts to (L, k), Dot."""
    L = keras.layers
    x = keras.Input((16,), name="x")
    experts = [L.Dense(k, activation="softmax", name=f"e{i}")(x) for i in range(1, n + 1)]
    merge_softmax = L.Dense(n, activation="softmax", name="gate")(x)
    merge_softmax = L.Reshape((1, n))(merge_softmax)
    bag_of_models = L.Concatenate()(experts)
    bag_of_models = L.Reshape((n, k))(bag_of_models)
    final = L.Dot(axes=[1, 2])([bag_of_models, merge_softmax])
    final = L.Reshape((k,), name="mix")(final)
    return keras.Model({"x": x}, {"mix": final})


def gated_doc(n: int = 3, k: int = 5, **config: Any) -> dict[str, Any]:
    nodes: dict[str, Any] = {
        f"e{i}": {"layer": "Dense", "config": {"units": k, "activation": "softmax"}, "inputs": "x"}
        for i in range(1, n + 1)
    }
    nodes["gate"] = {"layer": "Dense", "config": {"units": n, "activation": "softmax"}, "inputs": "x"}
    nodes["mix"] = {
        "merge": "gated",
        "inputs": {"experts": [f"e{i}" for i in range(1, n + 1)], "gate": "gate"},
    }
    if config:
        nodes["mix"]["config"] = config
    return spec(
        name="seed003",
        inputs={"x": {"shape": [16]}},
        nodes=nodes,
        outputs={"mix": {"from": "mix", "loss": "categorical_crossentropy"}},
    )


def test_seed003_equals_hand_written(tmp_path: Path, keras: Any) -> None:
    checked = check_spec(write(tmp_path, gated_doc()))
    ours, theirs = build_model(checked, compile=False), seed003_by_hand(keras)
    assert ours.count_params() == theirs.count_params() == checked.totals.params == 3 * 85 + 51
    for layer in theirs.layers:
        if layer.weights:
            ours.get_layer(layer.name).set_weights(layer.get_weights())
    x = {"x": rand(8, 16)}
    got, want = ours(x)["mix"], theirs(x)["mix"]
    assert max_diff(got, want) < 1e-6
    np.testing.assert_allclose(np.sum(got, axis=-1), 1.0, rtol=1e-5)  # still a distribution


# --- static rules against Keras -----------------------------------------------


def example_doc(mode: str, shapes: Any, config: dict[str, Any]) -> dict[str, Any]:
    rule = MERGES[mode]
    names = [f"in{i}" for i in range(len(shapes))]
    if rule.slots is None:
        inputs: Any = names
    else:
        groups = rule.example_sources(shapes)
        inputs = {
            slot: [names[i] for i in groups[slot]] if kind == "list" else names[groups[slot][0]]
            for slot, kind in rule.slots.items()
        }
    node: dict[str, Any] = {"merge": mode, "inputs": inputs}
    if config:
        node["config"] = config
    return spec(
        inputs={n: {"shape": list(s)} for n, s in zip(names, shapes, strict=True)},
        nodes={"m": node},
        outputs={"m": {"from": "m"}},
    )


EXAMPLES = [
    pytest.param(mode, shapes, config, id=f"{mode}-{i}")
    for mode in ("weighted", "gated")
    for i, (shapes, config) in enumerate(MERGES[mode].examples)
]


@pytest.mark.parametrize(("mode", "shapes", "config"), EXAMPLES)
def test_static_counts_equal_keras(tmp_path: Path, keras: Any, mode: str, shapes: Any, config: Any) -> None:
    checked = check_spec(write(tmp_path, example_doc(mode, shapes, config)))
    model = build_model(checked, compile=False)
    layer = model.get_layer("m")
    assert tuple(layer.output.shape) == checked.info["m"].shape
    assert layer.count_params() == checked.info["m"].trainable == model.count_params()
    known: dict[tuple[int, int], int] = {}  # (rank, axis) -> a static size some input has there
    for t in model.inputs:
        known.update({(len(t.shape), i): d for i, d in enumerate(t.shape) if d is not None})
    feeds = {t.name: rand(*(d or known.get((len(t.shape), i), 3) for i, d in enumerate(t.shape))) for t in model.inputs}
    got = model(feeds)["m"].shape
    assert all(d is None or d == g for d, g in zip(checked.info["m"].shape, got, strict=True))


# --- errors -------------------------------------------------------------------


def experts_doc(expert_shapes: list[list[int]], gate_shape: list[int], **config: Any) -> dict[str, Any]:
    inputs = {f"e{i}": {"shape": s} for i, s in enumerate(expert_shapes)}
    inputs["g"] = {"shape": gate_shape}
    node: dict[str, Any] = {"merge": "gated", "inputs": {"experts": list(inputs)[:-1], "gate": "g"}}
    if config:
        node["config"] = config
    return spec(inputs=inputs, nodes={"mix": node}, outputs={"y": {"from": "mix"}})


def weighted_doc(shapes: list[list[int | None]], inputs: Any = None, **config: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"merge": "weighted", "inputs": inputs or [f"in{i}" for i in range(len(shapes))]}
    if config:
        node["config"] = config
    return spec(
        inputs={f"in{i}": {"shape": s} for i, s in enumerate(shapes)},
        nodes={"w": node},
        outputs={"y": {"from": "w"}},
    )


def with_inputs(doc: dict[str, Any], inputs: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["nodes"]["mix"]["inputs"] = inputs
    return doc


G3 = experts_doc([[6]] * 3, [3])
MIX = "$.nodes.mix"

ERRORS = [
    ("gate-width", experts_doc([[6]] * 3, [4]), ShapeError, f"{MIX}.inputs.gate",
     "merge `mix` (gated) needs one gate value per expert: "
     "gate `g` has width 4 but the merge has 3 experts (`e0`, `e1`, `e2`)"),
    ("gate-width-short", experts_doc([[6]] * 3, [2]), ShapeError, f"{MIX}.inputs.gate",
     "gate `g` has width 2 but the merge has 3 experts"),
    ("gate-rank", experts_doc([[6]] * 3, [3, 1]), ShapeError, f"{MIX}.inputs.gate",
     "needs a gate of rank 2 (batch, experts). Received: (None, 3, 1) from `g`"),
    ("expert-shapes", experts_doc([[6], [5], [6]], [3]), ShapeError, f"{MIX}.inputs.experts",
     "merge `mix` (gated) needs experts of one shape. "
     "Received: (None, 6) from `e0`, (None, 5) from `e1`, (None, 6) from `e2`"),
    ("top-k", experts_doc([[6]] * 3, [3], top_k=4), ShapeError, f"{MIX}.config.top_k",
     "top_k 4 is more than the 3 experts"),
    ("top-k-zero", experts_doc([[6]] * 3, [3], top_k=0), SchemaError, f"{MIX}.config.top_k", "must be >= 1"),
    ("one-expert", experts_doc([[6]], [1]), GraphError, f"{MIX}.inputs.experts",
     "needs at least 2 experts. Received: 1"),
    ("list-inputs", with_inputs(G3, ["e0", "e1", "g"]), SchemaError, f"{MIX}.inputs", "expected object"),
    ("no-gate", with_inputs(G3, {"experts": ["e0", "e1"]}), SchemaError, f"{MIX}.inputs", "`gate`"),
    ("slot-typo", with_inputs(G3, {"experts": ["e0"], "gate": "g", "gates": "g"}), SchemaError,
     f"{MIX}.inputs.gates", "unknown key `gates`"),
    ("gate-list", with_inputs(G3, {"experts": ["e0", "e1"], "gate": ["g"]}), SchemaError,
     f"{MIX}.inputs.gate", "expected string"),
    ("weighted-shapes", weighted_doc([[8], [4]]), ShapeError, "$.nodes.w.inputs",
     "merge `w` (weighted) needs inputs of one shape. Received: (None, 8) from `in0`, (None, 4) from `in1`"),
    ("weighted-per-feature", weighted_doc([[3, None], [3, None]], per_feature=True), ShapeError,
     "$.nodes.w.config.per_feature", "with per_feature needs inputs whose last axis has a known size"),
    ("weighted-normalize", weighted_doc([[8], [8]], normalize="l1"), SchemaError,
     "$.nodes.w.config.normalize", "unknown value"),
    ("weighted-one", weighted_doc([[8]]), GraphError, "$.nodes.w.inputs",
     "(weighted) needs at least 2 inputs"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "error", "path", "fragment"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(tmp_path: Path, doc: Any, error: type, path: str, fragment: str) -> None:
    with pytest.raises(error) as info:
        check_spec(write(tmp_path, doc))
    problems = info.value.problems
    assert any(p.jsonpath == path and fragment in p.message for p in problems), [
        (p.jsonpath, p.message) for p in problems
    ]


@pytest.mark.parametrize(
    ("inputs", "path", "fragment"),
    [
        (["e0", "e1", "g"], "$.nodes.mix.inputs", "takes named inputs `experts`, `gate`"),
        ({"experts": ["e0", "e1"]}, "$.nodes.mix.inputs", "is missing the input `gate`"),
        ({"experts": ["e0", "e1"], "gate": "g", "gates": "g"}, "$.nodes.mix.inputs.gates", "no input named"),
        ({"experts": "e0", "gate": "g"}, "$.nodes.mix.inputs.experts", "takes a list of ids as `experts`"),
        ({"experts": ["e0", "e1"], "gate": ["g", "e0"]}, "$.nodes.mix.inputs.gate", "takes one id as `gate`"),
    ],
    ids=["list", "missing", "unknown", "experts-id", "gate-list"],
)
def test_graph_checks_named_inputs_without_schema(inputs: Any, path: str, fragment: str) -> None:
    """The graph stage stands on its own (for callers that skip the schema)."""
    doc = with_inputs(experts_doc([[6]] * 2, [2]), inputs)
    with pytest.raises(GraphError) as info:
        build_graph(doc)
    assert any(p.jsonpath == path and fragment in p.message for p in info.value.problems)


# --- layer semantics ----------------------------------------------------------


def test_top_k_zeroes_the_smallest_and_renormalises(keras: Any) -> None:
    from fusec.keras.fusion import GatedMerge

    gate = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.15, 0.05]], "float32")
    g = GatedMerge(top_k=2).gate_weights(gate).numpy()
    np.testing.assert_allclose(g[0], [0, 0, 3 / 7, 4 / 7], rtol=1e-6)
    assert (g[1] > 0).sum() == 2 and np.allclose(g[1][g[1] > 0], 0.5)  # ties: still exactly k
    np.testing.assert_allclose(g[2], [0.7 / 0.85, 0, 0.15 / 0.85, 0], rtol=1e-6)
    experts = [np.full((3, 2), float(i), "float32") for i in range(4)]  # expert i outputs i
    out = GatedMerge(top_k=2)(experts, gate).numpy()
    np.testing.assert_allclose(out[:, 0], (g * np.arange(4)).sum(axis=1), rtol=1e-6)
    logits = rand(5, 4)  # softmax then top-k == softmax over the k largest logits
    g = GatedMerge(softmax=True, top_k=3).gate_weights(logits).numpy()
    kept = np.where(logits >= np.sort(logits, axis=1)[:, 1:2], logits, -np.inf)
    np.testing.assert_allclose(g, np.exp(kept) / np.exp(kept).sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("normalize", ["softmax", "sum", "none"])
@pytest.mark.parametrize("per_feature", [False, True])
def test_untrained_weighted_is_average(keras: Any, normalize: str, per_feature: bool) -> None:
    from fusec.keras.fusion import WeightedMerge

    xs = [rand(4, 3, 5) for _ in range(3)]
    out = WeightedMerge(normalize=normalize, per_feature=per_feature)(xs)
    np.testing.assert_allclose(out, keras.layers.Average()(xs), rtol=1e-6, atol=1e-6)


def test_normalize_modes(keras: Any) -> None:
    from fusec.keras.fusion import WeightedMerge

    xs = [np.full((2, 4), float(i + 1), "float32") for i in range(3)]
    layer = WeightedMerge(normalize="sum")
    layer(xs)
    layer.logits.assign([-1.0, 1.0, 3.0])
    np.testing.assert_allclose(layer.normalized_weights(), [0, 0.25, 0.75])
    np.testing.assert_allclose(layer(xs), np.full((2, 4), 0.25 * 2 + 0.75 * 3), rtol=1e-6)
    layer.logits.assign([-1.0, -2.0, 0.0])  # every weight clipped: zeros, not NaN
    assert np.all(np.isfinite(layer(xs))) and np.all(layer(xs).numpy() == 0)
    raw = WeightedMerge(normalize="none", per_feature=True)
    raw(xs)
    raw.logits.assign(np.arange(12, dtype="float32").reshape(3, 4))
    want = [sum(float(i * 4 + f) * (i + 1) for i in range(3)) for f in range(4)]  # sum_i w[i, f] * (i + 1)
    np.testing.assert_allclose(raw(xs)[0], want)


def test_one_step_trains_the_merge_weights(tmp_path: Path, keras: Any) -> None:
    model = build_model(check_spec(write(tmp_path, SEED001)))
    before = model.get_layer("w_avg").logits.numpy().copy()
    model.train_on_batch({"inp1": rand(16, 100), "inp2": rand(16, 100) + 3.0}, {"out": rand(16, 1)})
    after = model.get_layer("w_avg").logits.numpy()
    assert not np.allclose(before, after)
    gated = build_model(check_spec(write(tmp_path, gated_doc(top_k=2), "gated.json")))
    gate_before = gated.get_layer("gate").get_weights()[0].copy()
    y = np.eye(5, dtype="float32")[RNG.integers(0, 5, 16)]
    gated.train_on_batch({"x": rand(16, 16)}, {"mix": y})
    assert not np.allclose(gate_before, gated.get_layer("gate").get_weights()[0])  # through top-k


# --- saving, serving, reporting -----------------------------------------------

ROUND_TRIP = spec(
    name="fusion_round_trip",
    inputs={"a": {"shape": [6]}, "b": {"shape": [6]}, "c": {"shape": [6]}},
    nodes={
        "w": {
            "merge": "weighted",
            "config": {"per_feature": True, "normalize": "sum"},
            "inputs": ["a", "b", "a"],
        },
        "g": {"layer": "Dense", "config": {"units": 3}, "inputs": "c"},
        "mix": {
            "merge": "gated",
            "config": {"softmax": True, "top_k": 2},
            "inputs": {"experts": ["w", "b", "c"], "gate": "g"},
        },
        "y": {"merge": "weighted", "inputs": ["mix", "w"]},
    },
    outputs={"y": {"from": "y", "loss": "mse"}},
)

RELOAD = """
import json, sys
import numpy as np
import keras
import fusec.keras.fusion  # registers fusec's layers with Keras
import fusec.keras.load
model = keras.models.load_model(sys.argv[1])
feeds = {k: np.asarray(v, "float32") for k, v in json.loads(sys.argv[2]).items()}
print(json.dumps({"y": np.asarray(model(feeds)["y"]).tolist(),
                  "weights": fusec.keras.load.learned_weights(sys.argv[1])}))
"""


def test_saves_exports_reloads_and_serves(tmp_path: Path, keras: Any) -> None:
    import tensorflow as tf

    from fusec.keras.load import learned_weights
    from fusec.keras.save import save_artifacts

    checked = check_spec(write(tmp_path, ROUND_TRIP))
    model = build_model(checked)
    model.get_layer("w").logits.assign(RNG.uniform(0, 2, (3, 6)).astype("float32"))
    model.get_layer("y").logits.assign([0.3, -0.2])
    feeds = {k: rand(4, 6) for k in "abc"}
    want = model(feeds)["y"].numpy()
    art = save_artifacts(model, checked, tmp_path / "out")

    weights = learned_weights(model)
    assert list(weights["w"]) == ["a", "b", "a#2"] and len(weights["w"]["a"]) == 6  # type: ignore[arg-type]
    assert learned_weights(model, node="y") == {"y": weights["y"]}
    assert learned_weights(art.root) == weights
    with pytest.raises(FusecError, match="did you mean `w`"):
        learned_weights(model, node="ww")

    served = tf.saved_model.load(str(art.saved_model)).signatures["serving_default"]
    assert max_diff(served(**{k: tf.constant(v) for k, v in feeds.items()})["y"], want) < 1e-6

    # A fresh process: importing fusec.keras.fusion is all that load_model needs.
    proc = subprocess.run(
        [sys.executable, "-c", RELOAD, str(art.keras), json.dumps({k: v.tolist() for k, v in feeds.items()})],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert max_diff(got["y"], want) < 1e-6
    assert got["weights"] == json.loads(json.dumps(weights))


@pytest.mark.parametrize("name", ["late_fusion_weighted", "gated_experts"])
def test_example_specs_build(keras: Any, name: str) -> None:
    checked = check_spec(SPECS / f"{name}.json")
    model = build_model(checked)
    assert model.count_params() == checked.totals.params
    out = model.get_layer("fuse" if name == "late_fusion_weighted" else "mix").output
    assert tuple(out.shape) == (None, 5 if name == "late_fusion_weighted" else 6)


def test_check_never_imports_tensorflow() -> None:
    code = (
        "import sys; from fusec.static.check import check_spec\n"
        f"for p in {[str(SPECS / 'late_fusion_weighted.json'), str(SPECS / 'gated_experts.json')]!r}:\n"
        "    check_spec(p)\n"
        "bad = [m for m in ('tensorflow', 'keras', 'fusec.keras.fusion') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
