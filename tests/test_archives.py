"""Sub-model archives read statically give exactly Keras's shapes and counts; the memory budget.

fusec never asks Keras what an archive computes: it rebuilds the archive's
graph from its layer configs and runs its own rules. These tests save models
with Keras itself (every layer rule's examples, every merge, nested models,
Sequential models, shared layers, every bundled spec compiled by fusec) and
compare fusec's static reading with what Keras loads: the output shape of
every output, the trainable and non-trainable counts, and the count of every
layer. They also check the allow-lists against Keras (every class named
exists), the weights files of spec sub-models, and the memory estimate
against its calibration and a measured compile.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_corpus_archives import dense, functional, input_layer, tiny_archive, weights_h5

from conftest import SPECS
from fusec.errors import FusecError, ShapeError
from fusec.static.archive import SubModel, inspect_keras
from fusec.static.budget import (
    ADDRESS_PER_BYTE,
    BASE_ADDRESS,
    BASE_RESIDENT,
    RESIDENT_PER_BYTE,
    SLOT_FACTOR,
    estimate,
    fmt_bytes,
    memory_problems,
    parse_size,
)
from fusec.static.check import check_spec
from fusec.vocab.layers import LAYERS
from fusec.vocab.merges import MERGES
from helpers import spec, write

PARTS = sorted((SPECS / "parts").glob("*.keras"))
BUNDLED = sorted(SPECS.glob("*.json"))


def keras_counts(model: Any) -> tuple[int, int, tuple[int, ...]]:
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    per_layer = tuple(sorted(n for n in (layer.count_params() for layer in model.layers) if n))
    return trainable, non_trainable, per_layer


def assert_same(sub: SubModel, model: Any) -> None:
    """fusec's static reading of an archive equals the model Keras loads from it (with every layer trainable)."""
    trainable, non_trainable, per_layer = keras_counts(model)
    assert (sub.trainable + sub.non_trainable, sub.layer_params) == (trainable + non_trainable, per_layer)
    assert (sub.trainable, sub.non_trainable) == (trainable, non_trainable)
    if model.__class__.__name__ == "Sequential":  # one output, named after its last layer
        shapes = {model.layers[-1].name: tuple(model.outputs[0].shape)}
    elif isinstance(model.output, dict):  # a dict of outputs is called, and read, by its keys
        shapes = {name: tuple(t.shape) for name, t in model.output.items()}
    else:
        shapes = dict(zip(model.output_names, (tuple(t.shape) for t in model.outputs), strict=True))
    assert sub.outputs == shapes
    assert list(sub.outputs) == list(shapes)
    inputs = {t.name: tuple(t.shape) for t in model.inputs}
    assert sub.inputs == inputs


def save_and_read(keras: Any, model: Any, path: Path) -> tuple[SubModel, Any]:
    model.save(path)
    return inspect_keras(path), keras.saving.load_model(path, compile=False, safe_mode=True)


# --- parity with Keras -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("path", PARTS, ids=[p.name for p in PARTS])
def test_bundled_archives_read_as_keras_loads_them(keras: Any, path: Path) -> None:
    assert_same(inspect_keras(path), keras.saving.load_model(path, compile=False, safe_mode=True))


def _example_model(keras: Any) -> Any:
    """One model calling every layer rule's and merge rule's examples, each on inputs of its own."""
    from fusec.keras.layers import keras_layer, keras_merge

    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}

    def new_input(shape: Any, dtype: str = "float32") -> Any:
        name = f"i{len(inputs)}"
        inputs[name] = keras.Input(shape=shape, dtype=dtype, name=name)
        return inputs[name]

    for name, rule in sorted(LAYERS.items()):
        for i, (shape, config) in enumerate(rule.examples):
            layer = keras_layer(name, config, f"{name.lower()}_{i}")
            if rule.slots:
                given = {slot: new_input(s) for slot, s in shape.items()}
                if rule.call_style == "list":
                    out = layer([given[s] for s in rule.slots if s in given])
                else:
                    out = layer(**given)
            else:
                out = layer(new_input(shape, "int32" if name == "Embedding" else "float32"))
            for k, t in enumerate(out if isinstance(out, (list, tuple)) else [out]):
                outputs[f"{name.lower()}_{i}_{k}"] = t
    for mode, merge in MERGES.items():
        for i, (shapes, config) in enumerate(merge.examples):
            tensors = [new_input(s) for s in shapes]
            layer = keras_merge(mode, config, f"{mode}_{i}", [t.name for t in tensors])
            if merge.slots is None:
                out = layer(tensors)
            else:
                slots = merge.example_sources(shapes)
                args = [[tensors[j] for j in slots[s]] if kind == "list" else tensors[slots[s][0]]
                        for s, kind in merge.slots.items()]  # fmt: skip
                out = layer(*args)
            outputs[f"{mode}_{i}"] = out
    return keras.Model(inputs, outputs, name="examples")


@pytest.mark.slow
def test_every_rule_example_through_an_archive(keras: Any, tmp_path: Path) -> None:
    """Every layer and merge of the vocabulary, saved by Keras, read back by fusec's rules: same shapes and counts."""
    sub, model = save_and_read(keras, _example_model(keras), tmp_path / "examples.keras")
    assert_same(sub, model)
    assert len(sub.outputs) > 100


@pytest.mark.slow
def test_nested_shared_and_multi_output_models(keras: Any, tmp_path: Path) -> None:
    """A Functional inside a Functional, called on narrower shapes; a shared layer; a dict of outputs."""
    layers = keras.layers
    i = keras.Input((None, 3), name="s")
    seq = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(i)
    q = layers.MultiHeadAttention(2, 4)(seq, seq, key=seq)
    a = layers.Attention()([q, seq])
    x, h, _ = layers.LSTM(6, return_state=True)(a)
    inner = keras.Model(i, [x, h], name="inner")
    j = keras.Input((5, 3), name="t")
    k = keras.Input((5, 3), name="u")
    o1, o2 = inner(j)
    p1, _ = inner(k)
    shared = layers.Dense(7, name="shared")
    y = layers.Concatenate()([shared(o1), shared(p1), o2])
    outer = keras.Model({"t": j, "u": k}, {"y": y, "h": o2, "seq": inner(j)[0]}, name="outer")
    sub, model = save_and_read(keras, outer, tmp_path / "nested.keras")
    assert_same(sub, model)
    assert sub.outputs["y"] == (None, 20)


@pytest.mark.slow
def test_sequential_archives_are_usable(keras: Any, tmp_path: Path) -> None:
    """A Sequential archive is a sub-model like any other: its input is its InputLayer (or its saved input shape)."""
    layers = keras.layers
    with_input = keras.Sequential([keras.Input((6,), name="feat"), layers.Dense(4, activation="relu"), layers.Dense(2)])
    built = keras.Sequential([layers.Dense(3), layers.BatchNormalization(), layers.Dense(2)], name="built")
    built.build((None, 6))
    for model, name in ((with_input, "seq.keras"), (built, "built.keras")):
        sub, loaded = save_and_read(keras, model, tmp_path / name)
        assert_same(sub, loaded)
        doc = spec(
            inputs={"x": {"shape": [6]}},
            nodes={
                "m": {"model": name, "inputs": "x"},
                "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "m"},
            },
        )
        checked = check_spec(write(tmp_path, doc, f"{name}.json"))
        from fusec.keras.build import build_model

        fused = build_model(checked)
        assert fused.count_params() == checked.totals.params
        x = np.ones((2, 6), "float32")
        np.testing.assert_allclose(fused.get_layer("m")(x), loaded(x), rtol=1e-5)


@pytest.mark.slow
def test_called_on_narrower_shapes(keras: Any, tmp_path: Path) -> None:
    """An archive declared on (None, None, 8) and called on (None, 5, 8): Keras's output has the 5; so has fusec's."""
    i = keras.Input((None, 8), name="seq")
    out = keras.layers.Dense(3)(keras.layers.LSTM(4, return_sequences=True)(i))
    keras.Model(i, out, name="enc").save(tmp_path / "enc.keras")
    doc = spec(inputs={"x": {"shape": [5, 8]}}, nodes={"y": {"model": "enc.keras", "inputs": "x"}})
    checked = check_spec(write(tmp_path, doc))
    from fusec.keras.build import build_model

    model = build_model(checked)
    assert checked.info["y"].shape == tuple(model.outputs[0].shape) == (None, 5, 3)


@pytest.mark.slow
@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_fusec_compiled_archives_read_back(keras: Any, tmp_path: Path, path: Path) -> None:
    """What fusec compiles (fusion layers, shared layers, blocks, sub-models, a compile config) reads back exactly."""
    from fusec.keras.build import build_model

    checked = check_spec(path)
    model = build_model(checked)
    model.optimizer.build(model.trainable_variables)  # as save.py does: the archive holds the optimizer's state
    target = tmp_path / "compiled.keras"
    model.save(target)
    sub = inspect_keras(target)
    loaded = keras.saving.load_model(target, compile=False, safe_mode=True)
    loaded.trainable = True  # as a sub-model node does (its `trainable` applies to the whole archive)
    assert_same(sub, loaded)
    assert sub.params == checked.totals.params
    assert sub.outputs == {name: tuple(t.shape) for name, t in zip(model.output_names, model.outputs, strict=True)}


@pytest.mark.slow
def test_a_compiled_fusion_model_as_a_sub_model(keras: Any, tmp_path: Path) -> None:
    """An archive fusec compiled (its weighted merge included) is a sub-model fusec reads, builds and runs."""
    from fusec.keras.build import build_model

    inner = build_model(check_spec(SPECS / "late_fusion_weighted.json"))
    inner.save(tmp_path / "fusion.keras")
    inputs = {t.name: {"shape": list(t.shape[1:])} for t in inner.inputs}
    doc = spec(inputs=inputs, nodes={"y": {"model": "fusion.keras", "inputs": {n: n for n in inputs}}})
    checked = check_spec(write(tmp_path, doc))
    model = build_model(checked)
    assert model.count_params() == checked.totals.params == inner.count_params()
    assert tuple(model.outputs[0].shape) == checked.info["y"].shape


@pytest.mark.slow
def test_weights_files_of_a_spec(keras: Any, tmp_path: Path) -> None:
    """The weights a compiled spec saves (.weights.h5 and .keras) fit it; another spec's do not."""
    from fusec.keras.build import build_model

    sub_doc = spec(
        inputs={"x": {"shape": [6]}},
        nodes={
            "h": {"layer": "Dense", "config": {"units": 4}, "inputs": "x"},
            "n": {"layer": "BatchNormalization", "inputs": "h"},
            "y": {"layer": "Dense", "config": {"units": 2}, "inputs": "n"},
        },
    )
    model = build_model(check_spec(write(tmp_path, sub_doc, "sub.json")))
    model.save_weights(tmp_path / "sub.weights.h5")
    model.save(tmp_path / "sub.keras")
    other = spec(inputs={"x": {"shape": [5]}}, nodes={"y": {"layer": "Dense", "config": {"units": 9}, "inputs": "x"}})
    build_model(check_spec(write(tmp_path, other, "other.json"))).save(tmp_path / "other.keras")
    for weights, ok in (("sub.weights.h5", True), ("sub.keras", True), ("other.keras", False)):
        doc = spec(inputs={"x": {"shape": [6]}}, nodes={"y": {"model": "sub.json", "weights": weights, "inputs": "x"}})
        target = write(tmp_path, doc, "parent.json")
        if ok:
            checked = check_spec(target)
            fused = build_model(checked)
            assert fused.count_params() == checked.totals.params
        else:  # the same count (54), other layers: refused by the per-layer counts
            with pytest.raises(
                ShapeError, match=r"holds 54 weight values in 1 layers; the sub-model's spec has 54 in 3"
            ):
                check_spec(target)


@pytest.mark.slow
def test_allow_lists_name_real_keras_classes(keras: Any) -> None:
    """Every class an archive may name exists in the module it is allowed for (found by importing that module)."""
    import importlib

    from fusec.static.archive.classes import allowed_classes

    moved = {"fusec.fusion": "fusec.keras.fusion"}  # where fusec's own layers lived before the subpackages
    for module, classes in allowed_classes().items():
        where = importlib.import_module(moved.get(module, module))
        for cls in classes:
            if (module, cls) in (("keras", "Functional"), ("keras.models", "Functional")):
                continue  # keras.src.models.functional.Functional: the class Keras names, not exported
            found = getattr(where, cls, None)
            if module == "keras":
                found = found or getattr(keras.dtype_policies, cls, None)
            assert isinstance(found, type), f"{module}.{cls}"


# --- what the inspection refuses, from archives Keras itself writes ------------------------------


@pytest.mark.slow
def test_keras_archive_with_extra_member_is_refused(keras: Any, tmp_path: Path) -> None:
    target = tmp_path / "m.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(target)
    with zipfile.ZipFile(target, "a") as zf:
        zf.writestr("notes.txt", "hello")
    doc = spec(inputs={"x": {"shape": [4]}}, nodes={"y": {"model": "m.keras", "inputs": "x"}})
    with pytest.raises(FusecError, match=r"holds a member fusec does not load: `notes.txt`"):
        check_spec(write(tmp_path, doc))


def test_a_nested_model_called_many_times_is_read_once(tmp_path: Path) -> None:
    """Models nested 8 deep, each calling the one below 8 times: 8**7 calls if replayed, a few dozen when memoised."""

    def ref(layer: str, node: int) -> dict[str, Any]:
        return {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, 0]}}

    model = functional("m0", [input_layer("x", [4]), dense("d", 4, "x", 4)], [["x", 0, 0]], [["d", 0, 0]])
    for level in range(1, 8):
        name = f"m{level - 1}"
        calls = [{"args": [ref("x", 0) if k == 0 else ref(name, k - 1)], "kwargs": {}} for k in range(8)]
        inner = {**model, "name": name, "inbound_nodes": calls}
        model = functional(f"m{level}", [input_layer("x", [4]), inner], [["x", 0, 0]], [[name, 8, 0]])
    weights = weights_h5({"layers/functional/vars/0": (4, 4), "layers/functional/vars/1": (4,)})
    path = tiny_archive(tmp_path / "deep.keras", lambda c: c.update(model), weights=weights)
    doc = spec(inputs={"x": {"shape": [4]}}, nodes={"y": {"model": path.name, "inputs": "x"}})
    checked = check_spec(write(tmp_path, doc))
    assert checked.info["y"].shape == (None, 4) and checked.info["y"].params == 20


# --- the memory budget ----------------------------------------------------------------------------

#: (parameters, trainable, optimizer slots, peak RSS, peak virtual): fusec compile measured (budget.py's table).
CALIBRATION = [
    (100_101, 100_101, 2, 593_805_312, 1_476_075_520),
    (10_000_101, 10_000_101, 2, 913_678_336, 1_943_777_280),
    (50_000_101, 50_000_101, 2, 2_218_913_792, 3_574_255_616),
    (50_000_101, 50_000_101, 0, 1_618_710_528, 2_973_622_272),
    (50_010_001, 50_010_001, 2, 2_019_942_400, 3_449_769_984),
    (50_010_001, 50_010_001, 0, 1_303_187_456, 2_334_064_640),
    (150_000_101, 150_000_101, 2, 3_719_475_200, 7_095_496_704),
    (150_000_101, 150_000_101, 0, 3_719_311_360, 7_095_574_528),
    (250_000_101, 250_000_101, 2, 5_719_822_336, 7_895_613_440),
    (250_000_101, 250_000_101, 0, 5_719_281_664, 7_895_613_440),
]


@pytest.mark.parametrize(("params", "trainable", "slots", "rss", "virtual"), CALIBRATION)
def test_estimate_is_above_every_measurement(params: int, trainable: int, slots: int, rss: int, virtual: int) -> None:
    from fusec.static.shapes import NodeInfo, Shapes

    info = {"e": NodeInfo("layer", "Embedding", (None, 4, 100), trainable, params - trainable)}
    est = estimate(Shapes(info), optimizer={2: "adam", 0: "sgd"}[slots])
    assert rss < est.resident < 2 * rss
    assert virtual < est.address < 2 * virtual
    w = params * 4
    assert est.resident == int(BASE_RESIDENT + RESIDENT_PER_BYTE * w + SLOT_FACTOR * slots * trainable * 4)
    assert est.address == int(BASE_ADDRESS + ADDRESS_PER_BYTE * w + SLOT_FACTOR * slots * trainable * 4)


def _embedding_spec(tmp_path: Path, rows: int) -> Path:
    doc = spec(
        inputs={"x": {"shape": [4], "dtype": "int32"}},
        nodes={
            "e": {"layer": "Embedding", "config": {"input_dim": rows, "output_dim": 100}, "inputs": "x"},
            "p": {"layer": "GlobalAveragePooling1D", "inputs": "e"},
            "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "p"},
        },
    )
    return write(tmp_path, doc, "emb.json")


def test_memory_budget_names_the_biggest_node(tmp_path: Path) -> None:
    from fusec.static.archive import ModelContext
    from fusec.static.shapes import infer_shapes

    checked = check_spec(_embedding_spec(tmp_path, 100_000))
    est = estimate(checked.shapes, checked.optimizer)
    (problem,) = memory_problems(checked.shapes, checked.optimizer, max_memory=512 << 20)
    assert problem.code == "budget" and problem.path == ()
    assert f"needs about {fmt_bytes(est.resident)} of memory" in problem.message
    assert "biggest: node `e` (Embedding, 10,000,000 parameters): 38.1 MiB" in problem.message
    assert "over the memory budget of 512 MiB (--max-memory 512 MiB)" in problem.message
    assert "--max-memory" in problem.hint and "--max-params" in problem.hint
    assert memory_problems(checked.shapes, checked.optimizer, max_memory=2 << 30) == []
    ctx = ModelContext(tmp_path, stack=(checked.spec.path,), max_memory=512 << 20)
    with pytest.raises(ShapeError, match=r"over the memory budget of 512 MiB"):
        infer_shapes(checked.graph, str(checked.spec.path), models=ctx)


def test_embedding_at_the_parameter_budget_is_refused_under_an_address_space_limit(tmp_path: Path) -> None:
    """The review's case: 499,999,000 parameters pass --max-params, and would die with MemoryError under 8 GiB."""
    path = _embedding_spec(tmp_path, 4_999_990)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, resource.RLIM_INFINITY))

    proc = subprocess.run(
        [sys.executable, "-m", "fusec", "compile", str(path), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "needs about 25.7 GiB of address space" in proc.stderr
    assert "over this process's address-space limit of 8.0 GiB (ulimit -v)" in proc.stderr
    assert "node `e` (Embedding, 499,999,000 parameters)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_measured_compile_stays_under_the_estimate(tmp_path: Path) -> None:
    """Compile a 5,000,000-parameter model in a fresh process: its peak RSS and address space are under the estimate."""
    path = _embedding_spec(tmp_path, 50_000)
    checked = check_spec(path)
    est = estimate(checked.shapes, checked.optimizer)
    code = (
        "import sys\nfrom fusec.cli import cli\n"
        "try:\n    cli.main(sys.argv[1:], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "s = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)\n"
        "print(int(s['VmHWM'].split()[0]) * 1024, int(s['VmPeak'].split()[0]) * 1024)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", code, "compile", str(path), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert (tmp_path / "out" / "fusec.json").exists(), proc.stderr
    rss, virtual = (int(v) for v in proc.stdout.split()[-2:])
    assert rss < est.resident, (fmt_bytes(rss), fmt_bytes(est.resident))
    assert virtual < est.address, (fmt_bytes(virtual), fmt_bytes(est.address))
    staged = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert staged < est.staging + (16 << 20)


@pytest.mark.parametrize(
    ("text", "size"), [("8G", 8 << 30), ("512MiB", 512 << 20), ("1.5g", 3 << 29), ("1000", 1000), ("2T", 2 << 40)]
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1G", "0", "lots", "infG", "nan"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_nested_specs_are_budgeted_once_in_the_outermost(tmp_path: Path) -> None:
    """A sub-spec's weights count in the parent's estimate; the sub-spec is not refused on its own."""
    write(tmp_path, json.loads(_embedding_spec(tmp_path, 1_000_000).read_text()), "inner.json")
    doc = spec(inputs={"x": {"shape": [4], "dtype": "int32"}}, nodes={"y": {"model": "inner.json", "inputs": "x"}})
    checked = check_spec(write(tmp_path, doc, "outer.json"))
    est = estimate(checked.shapes, checked.optimizer)
    assert est.weight_bytes == checked.totals.params * 4 == 400_000_404


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*at, i))
    return found


@pytest.mark.slow
def test_damaged_configs_end_in_a_clean_refusal(keras: Any, tmp_path: Path) -> None:
    """Each value of a real archive's config.json replaced by odd values: a RuleError or a clean reading."""
    from fusec.errors import RuleError

    layers = keras.layers
    i = keras.Input((5, 3), name="s")
    b = layers.Bidirectional(layers.GRU(2, return_sequences=True))(i)
    q = layers.MultiHeadAttention(1, 2)(b, b)
    x, h = layers.SimpleRNN(3, return_state=True)(layers.Add()([q, b]))
    keras.Model({"s": i}, {"x": x, "h": layers.BatchNormalization()(h)}, name="m").save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    odd = [None, 0, -1, 1 << 40, "x", [], {}, [None], True]
    seen = 0
    for at in _paths(config)[1:]:
        for value in odd:
            damaged = json.loads(members["config.json"])
            target = damaged
            for k in at[:-1]:
                target = target[k]
            target[at[-1]] = value
            path = tmp_path / "d.keras"
            with zipfile.ZipFile(path, "w") as zf:
                for name, data in members.items():
                    zf.writestr(name, json.dumps(damaged) if name == "config.json" else data)
            try:
                inspect_keras(path)
            except RuleError as err:
                assert err.message.startswith("`d.keras`"), err.message
                seen += 1
    assert seen > len(odd) * 50
