"""Static shapes and parameter counts: merges against Keras, errors, sharing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fusec.errors import ShapeError
from fusec.static.check import check_spec
from fusec.vocab.layers import LAYERS
from fusec.vocab.merges import MERGES
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
    from fusec.keras.build import build_model

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
        "on axis 1, 32 (`in0`) and 16 (`in1`) differ and neither is 1",
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
    ("dot", [[None, 5], [1, 5]], {"axes": 1}, "equal sizes along the dot axes 1: None from `in0` vs 1 from `in1`"),
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


# --- port references: one rule everywhere ------------------------------------------------


def _dense(units: int, src: str) -> dict[str, Any]:
    return {"layer": "Dense", "config": {"units": units}, "inputs": src}


def test_dot_zero_is_the_only_output(tmp_path: Path) -> None:
    """`id.0` names the same tensor as `id`, for inputs and one-output nodes as for an RNN's sequence."""
    doc = spec(
        inputs={"x": {"shape": [5, 3]}},
        nodes={
            "enc": {"layer": "LSTM", "config": {"units": 4, "return_state": True}, "inputs": "x.0"},
            "h": _dense(2, "enc.0"),
            "c": _dense(2, "enc.2"),
            "y": {"merge": "add", "inputs": ["h.0", "c"]},
        },
        outputs={"out": {"from": "y.0"}},
    )
    checked = check_spec(write(tmp_path, doc))
    assert checked.info["h"].shape == (None, 2)


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("x.1", "input `x` has one output; `x.1` is not it"),
        ("h.1", "node `h` has one output; `h.1` is not it"),
        ("h.00", "`h.00` is not it"),
        ("enc.01", "`enc.01` is not one of them"),
        ("enc.3", "`enc.3` is not one of them"),
        ("enc.c", "`enc.c` is not one of them"),
    ],
)
def test_bad_ports_are_refused(tmp_path: Path, ref: str, fragment: str) -> None:
    doc = spec(
        inputs={"x": {"shape": [5, 3]}},
        nodes={
            "enc": {"layer": "LSTM", "config": {"units": 4, "return_state": True}, "inputs": "x"},
            "h": _dense(2, "enc"),
            "y": _dense(1, ref),
        },
        outputs={"y": {"from": "y"}, "h_out": {"from": "h"}},
    )
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    assert [p.jsonpath for p in info.value.problems] == ["$.nodes.y.inputs"]
    assert fragment in info.value.problems[0].message


def test_port_index_is_the_one_resolution() -> None:
    from fusec.static.shapes import port_index

    assert port_index("enc") == ("enc", 0)
    assert port_index("enc.0") == ("enc", 0)
    assert port_index("enc.12") == ("enc", 12)
    assert port_index("enc.01") == ("enc", None)
    assert port_index("enc.٣") == ("enc", None)  # a digit, but not ASCII
    assert port_index("tower.embedding") == ("tower", None)


# --- shared layers: every call must fit the weights the first one built --------------------


def _shared_doc(layer: dict[str, Any], inputs: dict[str, Any], first: Any, second: Any) -> dict[str, Any]:
    return spec(
        inputs=inputs,
        shared={"s": layer},
        nodes={
            "c1": {"shared": "s", "inputs": first},
            "c2": {"shared": "s", "inputs": second},
            "f1": {"layer": "Flatten", "inputs": "c1"},
            "f2": {"layer": "Flatten", "inputs": "c2"},
            "y": {"merge": "concat", "inputs": ["f1", "f2"]},
        },
        outputs={"y": {"from": "y"}},
    )


MHA = {"layer": "MultiHeadAttention", "config": {"num_heads": 2, "key_dim": 4}}
QKV = {"q": {"shape": [4, 16]}, "k": {"shape": [6, 8]}, "v": {"shape": [6, 12]}}
SHARED_OK = [
    (
        "dense-lengths",
        {"layer": "Dense", "config": {"units": 3}},
        {"a": {"shape": [4, 8]}, "b": {"shape": [5, 8]}},
        "a",
        "b",
    ),
    (
        "embedding-lengths",
        {"layer": "Embedding", "config": {"input_dim": 10, "output_dim": 3}},
        {"a": {"shape": [4], "dtype": "int32"}, "b": {"shape": [7], "dtype": "int32"}},
        "a",
        "b",
    ),
    (
        "conv-sizes",
        {"layer": "Conv2D", "config": {"filters": 2, "kernel_size": 3}},
        {"a": {"shape": [8, 8, 3]}, "b": {"shape": [5, 9, 3]}},
        "a",
        "b",
    ),
    (
        "batchnorm-axis-1",
        {"layer": "BatchNormalization", "config": {"axis": 1}},
        {"a": {"shape": [5, 6]}, "b": {"shape": [5, 9]}},
        "a",
        "b",
    ),
    (
        "mha-lengths",
        MHA,
        {**QKV, "q2": {"shape": [9, 16]}},
        {"query": "q", "key": "k", "value": "v"},
        {"query": "q2", "key": "k", "value": "v"},
    ),
]
SHARED_BAD = [
    (
        "batchnorm-rank",
        {"layer": "BatchNormalization", "config": {"axis": 1}},
        {"a": {"shape": [5, 6]}, "b": {"shape": [5, 6, 2]}},
        "a",
        "b",
    ),
    (
        "normalization-channels",
        {"layer": "Normalization", "config": {"mean": 0.5, "variance": 2.0}},
        {"a": {"shape": [4, 2]}, "b": {"shape": [4, 3]}},
        "a",
        "b",
    ),
    ("dense-width", {"layer": "Dense", "config": {"units": 3}}, {"a": {"shape": [8]}, "b": {"shape": [6]}}, "a", "b"),
    ("mha-swapped", MHA, QKV, {"query": "q", "key": "k", "value": "v"}, {"query": "q", "key": "v", "value": "k"}),
    (
        "layernorm-channels",
        {"layer": "LayerNormalization", "config": {}},
        {"a": {"shape": [5, 6]}, "b": {"shape": [6, 5]}},
        "a",
        "b",
    ),
]


@pytest.mark.parametrize(
    ("layer", "inputs", "first", "second"), [c[1:] for c in SHARED_OK], ids=[c[0] for c in SHARED_OK]
)
def test_shared_calls_that_fit(tmp_path: Path, layer: Any, inputs: Any, first: Any, second: Any) -> None:
    checked = check_spec(write(tmp_path, _shared_doc(layer, inputs, first, second)))
    assert checked.info["c2"].call == 2


@pytest.mark.parametrize(
    ("layer", "inputs", "first", "second"), [c[1:] for c in SHARED_BAD], ids=[c[0] for c in SHARED_BAD]
)
def test_shared_calls_that_do_not_fit(tmp_path: Path, layer: Any, inputs: Any, first: Any, second: Any) -> None:
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, _shared_doc(layer, inputs, first, second)))
    (problem,) = info.value.problems
    assert problem.jsonpath == "$.nodes.c2.inputs"
    assert "weights do not fit" in problem.message and "Keras builds `s` at its first call" in problem.hint


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layer", "inputs", "first", "second", "fits"),
    [(*c[1:], True) for c in SHARED_OK] + [(*c[1:], False) for c in SHARED_BAD],
    ids=[c[0] for c in SHARED_OK + SHARED_BAD],
)
def test_shared_call_rule_matches_keras(
    keras: Any, layer: Any, inputs: Any, first: Any, second: Any, fits: bool
) -> None:
    """The static rule says what Keras does: the calls it accepts run, the ones it refuses fail in Keras."""
    import numpy as np

    from fusec.keras.layers import keras_layer

    keras.backend.clear_session()
    shared = keras_layer(layer["layer"], layer.get("config", {}), None)
    tensors = {k: keras.Input(shape=v["shape"], dtype=v.get("dtype", "float32")) for k, v in inputs.items()}

    def call(given: Any) -> Any:
        return shared(tensors[given]) if isinstance(given, str) else shared(**{k: tensors[t] for k, t in given.items()})

    def run() -> None:
        outs = [call(first), call(second)]
        model = keras.Model(list(tensors.values()), outs)
        model([np.zeros((2, *t.shape[1:]), t.dtype) for t in tensors.values()])

    if fits:
        run()
    else:
        with pytest.raises(Exception):  # noqa: B017 - Keras raises ValueError or a tf error
            run()


def test_weight_dims_follow_the_parameter_rule() -> None:
    from fusec.static.shapes import _weight_dims

    def dims(name: str, shape: Any, config: dict[str, Any]) -> Any:
        rule = LAYERS[name]
        resolved = rule.resolve(config)
        return _weight_dims(rule, shape, resolved, rule.infer(shape, resolved).params)

    assert dims("Dense", (None, 5, 8), {"units": 2}) == ((("", 3),), ("", 8))
    assert dims("Conv2D", (None, 9, 9, 3), {"filters": 2, "kernel_size": 3}) == ((("", 4),), ("", 3))
    assert dims("Embedding", (None, 7), {"input_dim": 9, "output_dim": 2}) == ((("", 2),),)
    assert dims("Flatten", (None, 4, 4), {}) == ((("", 3),),)
    assert dims("Normalization", (None, 4, 2), {"mean": 0.0, "variance": 1.0}) == ((("", 3),), ("", 2))
    shapes = {"query": (None, 4, 16), "value": (None, 6, 12), "key": (None, 6, 8)}
    assert dims("MultiHeadAttention", shapes, {"num_heads": 2, "key_dim": 4}) == (
        (("query", 3), ("value", 3), ("key", 3)),
        ("query", 16),
        ("value", 12),
        ("key", 8),
    )


# --- sizes: no tensor past 2**31 - 1 values per example --------------------------------------


@pytest.mark.parametrize(
    ("inputs", "node", "path"),
    [
        ({"x": {"shape": [65536, 65536]}}, {"layer": "GlobalAveragePooling1D", "inputs": "x"}, "$.inputs.x.shape"),
        (
            {"x": {"shape": [16777216, 16777216, 16777216]}},
            {"layer": "GlobalMaxPooling2D", "inputs": "x"},
            "$.inputs.x.shape",
        ),
        (
            {"x": {"shape": [4096, 4096, 1]}},
            {"layer": "UpSampling2D", "config": {"size": [4096, 4096]}, "inputs": "x"},
            "$.nodes.y",
        ),
        (
            {"x": {"shape": [None]}},
            {"layer": "Reshape", "config": {"target_shape": [65536, 65536]}, "inputs": "x"},
            "$.nodes.y",
        ),
        ({"x": {"shape": [256]}}, {"layer": "RepeatVector", "config": {"n": 16777216}, "inputs": "x"}, "$.nodes.y"),
    ],
)
def test_tensors_past_the_size_limit(tmp_path: Path, inputs: Any, node: Any, path: str) -> None:
    doc = spec(inputs=inputs, nodes={"y": node}, outputs={"y": {"from": "y"}})
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    assert [p.jsonpath for p in info.value.problems] == [path]
    assert "the limit is 2,147,483,647" in info.value.problems[0].message


def test_size_limit_edge(tmp_path: Path) -> None:
    def doc(rows: int) -> dict[str, Any]:
        node = {"layer": "GlobalMaxPooling1D", "inputs": "x"}
        return spec(inputs={"x": {"shape": [rows, 65536]}}, nodes={"y": node}, outputs={"y": {"from": "y"}})

    assert check_spec(write(tmp_path, doc(32767))).info["x"].shape == (None, 32767, 65536)  # 2**31 - 65536
    with pytest.raises(ShapeError, match="2,147,483,648 values per example"):
        check_spec(write(tmp_path, doc(32768)))


def test_reshape_with_zero_is_a_clean_error(tmp_path: Path) -> None:
    doc = spec(
        inputs={"x": {"shape": [12]}},
        nodes={"y": {"layer": "Reshape", "config": {"target_shape": [-1, 0]}, "inputs": "x"}},
        outputs={"y": {"from": "y"}},
    )
    with pytest.raises(ShapeError, match="holds 0 at position 1"):
        check_spec(write(tmp_path, doc))


# --- element types --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "chain", "bad"),
    [
        ("uint8", ["Conv2D"], "c0"),
        ("uint8", ["Rescaling", "Conv2D"], None),
        ("int32", ["Flatten", "Dense"], None),
        ("int64", ["Flatten", "Softmax"], "c1"),
        ("bool", ["Dense"], None),
        ("bool", ["Dropout"], "c0"),
        ("float16", ["Conv2D"], None),
        ("bfloat16", ["Dropout", "Conv2D"], None),
        ("uint8", ["Permute", "Reshape", "GlobalAveragePooling1D"], None),
        ("uint8", ["Permute", "Reshape", "Softmax"], "c2"),
    ],
)
def test_dtypes_each_layer_takes(tmp_path: Path, dtype: str, chain: list[str], bad: str | None) -> None:
    configs = {
        "Conv2D": {"filters": 2, "kernel_size": 3},
        "Rescaling": {"scale": 0.5},
        "Dense": {"units": 2},
        "Dropout": {"rate": 0.5},
        "Permute": {"dims": [2, 1, 3]},
        "Reshape": {"target_shape": [64, 3]},
    }
    nodes: dict[str, Any] = {}
    src = "x"
    for i, layer in enumerate(chain):
        nodes[f"c{i}"] = {"layer": layer, "inputs": src, **({"config": configs[layer]} if layer in configs else {})}
        src = f"c{i}"
    doc = spec(inputs={"x": {"shape": [8, 8, 3], "dtype": dtype}}, nodes=nodes, outputs={"y": {"from": src}})
    if bad is None:
        check_spec(write(tmp_path, doc))
        return
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    assert [p.jsonpath for p in info.value.problems] == [f"$.nodes.{bad}.inputs"]
    assert "floating-point values" in info.value.problems[0].message


@pytest.mark.parametrize("mode", sorted(MERGES))
def test_merges_take_floats(tmp_path: Path, mode: str) -> None:
    rule = MERGES[mode]
    shapes, config = rule.examples[0]
    doc = merge_doc(mode, shapes, config)
    doc["inputs"]["in0"]["dtype"] = "int32"
    if rule.slots:
        names = [f"in{i}" for i in range(len(shapes))]
        slots = rule.example_sources(shapes)
        doc["nodes"]["m"]["inputs"] = {
            k: [names[i] for i in idx] if rule.slots[k] == "list" else names[idx[0]] for k, idx in slots.items()
        }
    with pytest.raises(ShapeError, match="combines floating-point values"):
        check_spec(write(tmp_path, doc))


@pytest.mark.slow
def test_dot_of_an_unknown_and_a_known_size_fails_in_keras(keras: Any) -> None:
    """Keras's Dot compares the sizes as written: None against 1 is refused, so fusec refuses it statically."""
    from fusec.keras.layers import keras_merge

    keras.backend.clear_session()
    a, b = keras.Input(shape=(None, 5)), keras.Input(shape=(1, 5))
    with pytest.raises(ValueError, match="Incompatible input shapes"):
        keras_merge("dot", {"axes": 1}, "m")([a, b])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["concat", "add", "average", "dot", "weighted"])
def test_integer_merges_mislead_keras(keras: Any, mode: str) -> None:
    """Why merges take floats only: on int32 inputs Keras declares one type and serves another (or fails)."""
    import numpy as np

    from fusec.keras.layers import keras_merge

    keras.backend.clear_session()
    ins = [keras.Input(shape=(4,), dtype="int32") for _ in range(2)]
    out = keras_merge(mode, {"axes": 1} if mode == "dot" else {}, "m", ["a", "b"])(ins)
    real = keras.Model(ins, out)([np.ones((2, 4), "int32")] * 2)
    assert str(out.dtype) != real.dtype.name


def _second_call(rule: Any, shapes: Any, config: dict[str, Any]) -> Any:
    """The first call's shapes with every axis the layer is not built from grown by one."""
    from fusec.static.shapes import _weight_dims

    params = rule.infer(shapes, config).params
    named = shapes if isinstance(shapes, dict) else {"": shapes}
    built = _weight_dims(rule, shapes, config, params)[1:]
    grown = {}
    for slot, shape in named.items():
        keep = {size for s, size in built if s == slot}
        grown[slot] = tuple(d if i == 0 or d is None or d in keep else d + 1 for i, d in enumerate(shape))
    return grown if isinstance(shapes, dict) else grown[""]


SHARED_EXAMPLES = [
    pytest.param(name, i, id=f"{name}-{i}") for name, rule in sorted(LAYERS.items()) for i in range(len(rule.examples))
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "index"), SHARED_EXAMPLES)
def test_every_layer_shared_on_what_the_rule_allows(keras: Any, name: str, index: int) -> None:
    """For every layer: a second call that the weight rule accepts (all other sizes changed) runs in Keras."""
    import numpy as np

    from fusec.errors import RuleError
    from fusec.keras.layers import keras_layer

    rule = LAYERS[name]
    shape, config = rule.examples[index]
    resolved = rule.resolve(config)
    first = {s: (None, *v) for s, v in shape.items()} if rule.slots else (None, *shape)
    second = _second_call(rule, first, resolved)
    try:
        rule.infer(second, resolved)
    except RuleError:
        return  # a size the rule needs as it is (a Reshape's): nothing to share differently
    keras.backend.clear_session()
    layer = keras_layer(name, config, None)
    dtype = "int32" if rule.dtypes == "ids" else "float32"

    def inputs(shapes: Any) -> Any:
        if isinstance(shapes, dict):
            return {s: keras.Input(shape=v[1:], dtype=dtype) for s, v in shapes.items()}
        return keras.Input(shape=shapes[1:], dtype=dtype)

    def call(t: Any) -> Any:
        if not isinstance(t, dict):
            out = layer(t)
        elif rule.call_style == "list":
            out = layer([t[s] for s in rule.slots if s in t])
        else:
            out = layer(**t)
        return out[0] if isinstance(out, (list, tuple)) else out

    a, b = inputs(first), inputs(second)
    flat = [*a.values(), *b.values()] if rule.slots else [a, b]
    model = keras.Model(flat, [call(a), call(b)])
    dilation = config.get("dilation_rate", 1)
    if name.endswith("Transpose") and max([dilation] if isinstance(dilation, int) else dilation) > 1:
        # Built above, which is what sharing needs; TensorFlow's CPU kernel without oneDNN (a CPU
        # without AVX-512) refuses to run any dilated transposed convolution, shared or not.
        return
    model([np.zeros((2, *[d or 16 for d in t.shape[1:]]), dtype) for t in flat])
