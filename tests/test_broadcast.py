"""Broadcasting element-wise merges: Keras's rule, statically, cross-checked against Keras itself.

``add``, ``subtract``, ``multiply``, ``average``, ``maximum`` and ``minimum``
broadcast as Keras 3's merge layers do. The table below is run through Keras
(symbolic inputs, and arrays) and through fusec's static rule; the two must
agree on every accepted shape and every refusal, except where a None lets
Keras's static check pass a pair of sizes that can never run (fusec refuses
those, and Keras fails when it runs them). Then the error wording, every bad
merge of a spec reported, a squeeze-and-excitation spec against the same
model written in Keras, an archive holding one, and the diagram.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusec.errors import ShapeError
from fusec.render import render, to_dot
from fusec.static.check import check_spec
from fusec.vocab.merges import BROADCASTING, MERGES, BroadcastError, broadcast, broadcasts
from helpers import spec, write

N = None
Dims = tuple[int | None, ...]

#: Input shapes without the batch axis: known and null sizes, equal and different ranks, clashes.
TABLE: list[tuple[Dims, ...]] = [
    ((8,), (8,)),
    ((7, 7, 3), (1, 1, 3)),  # squeeze-and-excitation at a fixed size
    ((N, N, 3), (1, 1, 3)),  # ... and at a null size
    ((1, 3), (N, 3)),  # a null against a 1
    ((7, 3), (N, 3)),  # a null against a 7
    ((4, 1), (1, 5)),  # both stretch
    ((7, 7, 3), (3,)),  # ranks differ
    ((3,), (7, 7, 3)),  # the lower rank first
    ((7, 7, 3), (1, 3)),
    ((N, 5), (5,)),
    ((1,), (6, 4)),
    ((N, 1), (1, N)),
    ((7, 5), (5, 7)),  # clashes on two axes
    ((7, 5), (7,)),  # a clash from aligning at the last axis
    ((6,), (4,)),
    ((N, 5), (N, 4)),
    ((4, 1, 3), (1, 5, 1), (3,)),
    ((1, 1, 8), (N, N, 8), (2, 2, 1)),
    ((2, 3), (3,), (4, 1, 1)),
    ((7,), (N,), (5,)),  # Keras's check lets the None hide 7 against 5
    ((7,), (5,), (N,)),
    ((1, 4), (3, 1), (1, 1)),
]

#: Cases Keras's static check passes and fusec refuses: each fails when Keras runs it.
KERAS_LOOSER = {((7,), (N,), (5,))}

_NUMPY = {
    "add": lambda xs: sum(xs[1:], xs[0]),
    "subtract": lambda xs: xs[0] - xs[1],
    "multiply": lambda xs: np.prod(np.broadcast_arrays(*xs), axis=0),
    "average": lambda xs: sum(xs[1:], xs[0]) / len(xs),
    "maximum": lambda xs: np.max(np.broadcast_arrays(*xs), axis=0),
    "minimum": lambda xs: np.min(np.broadcast_arrays(*xs), axis=0),
}


def fusec_shape(shapes: tuple[Dims, ...]) -> Dims | None:
    """fusec's static result with the batch axis, or None when it refuses."""
    try:
        return broadcast([(f"in{i}", (None, *s)) for i, s in enumerate(shapes)])
    except BroadcastError:
        return None


def keras_shape(keras: Any, mode: str, shapes: tuple[Dims, ...]) -> Dims | None:
    """Keras's symbolic result (a merge layer on ``keras.Input``s), or None when it refuses."""
    layer = getattr(keras.layers, MERGES[mode].keras)()
    try:
        return tuple(layer([keras.Input(shape=s) for s in shapes]).shape)
    except ValueError:
        return None


def run_keras(keras: Any, mode: str, shapes: tuple[Dims, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Keras's merge on arrays (a null size run as 1), and numpy's broadcasting of the same arrays."""
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(2, *(d or 1 for d in s))).astype("float32") for s in shapes]
    rank = max(a.ndim for a in arrays)  # Keras adds a lower rank's missing axes after the batch axis
    aligned = [a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:]) for a in arrays]
    layer = getattr(keras.layers, MERGES[mode].keras)()
    return np.asarray(layer(arrays)), _NUMPY[mode](aligned)


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(BROADCASTING))
def test_table_against_keras(keras: Any, mode: str) -> None:
    """Every row: fusec's static shape is Keras's, symbolic and run; a refusal is Keras's too."""
    rows = [s for s in TABLE if len(s) == 2 or MERGES[mode].arity[1] is None]
    for shapes in rows:
        ours, theirs = fusec_shape(shapes), keras_shape(keras, mode, shapes)
        if ours is not None:
            assert ours == theirs, (mode, shapes)
            got, want = run_keras(keras, mode, shapes)
            assert got.shape == want.shape
            assert all(d is None or d == g for d, g in zip(ours, got.shape, strict=True)), (mode, shapes)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        elif theirs is not None:
            assert shapes in KERAS_LOOSER, (mode, shapes, theirs)
            with pytest.raises(Exception, match=r"[Ii]ncompatible|broadcast"):
                run_keras(keras, mode, shapes)
    assert sum(fusec_shape(s) is None for s in rows) >= 4  # the table holds refusals too


def test_table_static_rule() -> None:
    """The rule as the docs state it, without TensorFlow (the row above checks it against Keras)."""
    assert fusec_shape(((7, 7, 3), (1, 1, 3))) == (N, 7, 7, 3)
    assert fusec_shape(((N, N, 3), (1, 1, 3))) == (N, N, N, 3)
    assert fusec_shape(((1, 3), (N, 3))) == (N, N, 3)  # a null against a 1 gives null
    assert fusec_shape(((7, 3), (N, 3))) == (N, N, 3)  # a null against a 7 gives null, as in Keras
    assert fusec_shape(((3,), (7, 7, 3))) == (N, 7, 7, 3)
    assert fusec_shape(((4, 1), (1, 5))) == (N, 4, 5)
    assert fusec_shape(((7,), (N,), (5,))) is None  # Keras passes it, then fails when run
    assert broadcasts((N, 1, 1, 3), (N, 7, 7, 3)) and broadcasts((N, 3), (N, 7, 3))
    assert not broadcasts((N, 7, 7, 3), (N, N, N, 3)) and not broadcasts((N, 1), (N, 1))


# --- errors --------------------------------------------------------------------------------


def merge_doc(mode: str, *shapes: list[int | None]) -> dict[str, Any]:
    names = [chr(ord("a") + i) for i in range(len(shapes))]
    return spec(
        inputs={n: {"shape": list(s)} for n, s in zip(names, shapes, strict=True)},
        nodes={"m": {"merge": mode, "inputs": names}},
        outputs={"m": {"from": "m"}},
    )


def one_problem(tmp_path: Path, doc: dict[str, Any]) -> Any:
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    (problem,) = info.value.problems
    assert problem.jsonpath == "$.nodes.m.inputs"
    assert problem.code == "shape"
    return problem


@pytest.mark.parametrize("mode", sorted(BROADCASTING))
def test_clash_names_both_shapes_the_axis_and_why(tmp_path: Path, mode: str) -> None:
    problem = one_problem(tmp_path, merge_doc(mode, [7, 7, 32], [1, 1, 16]))
    assert problem.message.startswith(f"merge `m` ({mode}) needs inputs of one shape, or of shapes that broadcast")
    assert "Received: (None, 7, 7, 32) from `a`, (None, 1, 1, 16) from `b`" in problem.message
    assert problem.message.endswith("on axis 3, 32 (`a`) and 16 (`b`) differ and neither is 1")
    assert problem.hint.startswith("make `b` 32 or 1 on axis 3")


@pytest.mark.parametrize("fixed", [[1, 1, 32], [1, 1, 1], [7, 1, 32], [32]])
def test_the_hint_fixes_it(tmp_path: Path, fixed: list[int]) -> None:
    checked = check_spec(write(tmp_path, merge_doc("multiply", [7, 7, 32], fixed)))
    assert checked.info["m"].shape == (None, 7, 7, 32)


def test_every_clashing_axis_and_ranks_that_differ(tmp_path: Path) -> None:
    two = one_problem(tmp_path, merge_doc("add", [7, 5], [5, 7])).message
    assert two.endswith(
        "on axis 1, 7 (`a`) and 5 (`b`) differ and neither is 1; on axis 2, 5 (`a`) and 7 (`b`) differ and neither is 1"
    )
    ranks = one_problem(tmp_path, merge_doc("subtract", [7, 5], [7]))
    assert ranks.message.endswith("on axis 2, 5 (`a`) and 7 (`b`, its axis 1) differ and neither is 1")
    assert "inputs of different ranks align at their last axis" in ranks.hint
    three = one_problem(tmp_path, merge_doc("maximum", [7], [None], [5])).message
    assert "(None, None) from `b`" in three and three.endswith("on axis 1, 7 (`a`) and 5 (`c`) differ and neither is 1")


def test_null_sizes_are_checked_as_keras_gives_them(tmp_path: Path) -> None:
    """What was refused at a fixed size and passed at a null one now passes at both, with Keras's shapes."""
    for size, want in ((7, (None, 7, 7, 8)), (None, (None, None, None, 8))):
        checked = check_spec(write(tmp_path, merge_doc("multiply", [size, size, 8], [1, 1, 8])))
        assert checked.info["m"].shape == want
    checked = check_spec(write(tmp_path, merge_doc("add", [7, 8], [None, 8])))
    assert checked.info["m"].shape == (None, None, 8)


def test_every_bad_merge_is_reported(tmp_path: Path) -> None:
    """16 squeeze-and-excitation merges with the wrong width, one after another: 16 problems, one each."""
    nodes: dict[str, Any] = {}
    prev = "x"
    for i in range(16):
        nodes[f"sq{i}"] = {"layer": "GlobalAveragePooling2D", "config": {"keepdims": True}, "inputs": prev}
        nodes[f"ex{i}"] = {"layer": "Conv2D", "config": {"filters": 4, "kernel_size": 1}, "inputs": f"sq{i}"}
        nodes[f"m{i}"] = {"merge": "multiply", "inputs": [prev, f"ex{i}"]}
        prev = f"m{i}"
    nodes["pool"] = {"layer": "GlobalAveragePooling2D", "inputs": prev}
    nodes["y"] = {"layer": "Dense", "config": {"units": 2}, "inputs": "pool"}
    doc = spec(inputs={"x": {"shape": [6, 6, 8]}}, nodes=nodes, outputs={"y": {"from": "y"}})
    with pytest.raises(ShapeError) as info:
        check_spec(write(tmp_path, doc))
    problems = info.value.problems
    assert [p.jsonpath for p in problems] == [f"$.nodes.m{i}.inputs" for i in range(16)]
    assert all("on axis 3, 8 (`" in p.message and "4 (`ex" in p.message for p in problems)


# --- squeeze-and-excitation: a spec, Keras, an archive ---------------------------------------


def se_doc(size: int | None) -> dict[str, Any]:
    conv = {"filters": 16, "kernel_size": 3, "padding": "same", "activation": "relu"}
    return spec(
        name="se",
        inputs={"x": {"shape": [size, size, 3]}},
        nodes={
            "stem": {"layer": "Conv2D", "config": conv, "inputs": "x"},
            "squeeze": {"layer": "GlobalAveragePooling2D", "config": {"keepdims": True}, "inputs": "stem"},
            "reduce": {"layer": "Conv2D", "config": {"filters": 4, "kernel_size": 1, "activation": "relu"},
                       "inputs": "squeeze"},
            "expand": {"layer": "Conv2D", "config": {"filters": 16, "kernel_size": 1, "activation": "sigmoid"},
                       "inputs": "reduce"},
            "excite": {"merge": "multiply", "inputs": ["stem", "expand"]},
            "pool": {"layer": "GlobalAveragePooling2D", "inputs": "excite"},
            "y": {"layer": "Dense", "config": {"units": 3}, "inputs": "pool"},
        },
        outputs={"y": {"from": "y", "loss": "mse"}},
    )  # fmt: skip


def se_keras(keras: Any, size: int | None) -> Any:
    """The same model written in Keras, its layers named after the spec's nodes."""
    L = keras.layers
    x = keras.Input(shape=(size, size, 3), name="x")
    stem = L.Conv2D(16, 3, padding="same", activation="relu", name="stem")(x)
    s = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(stem)
    s = L.Conv2D(4, 1, activation="relu", name="reduce")(s)
    s = L.Conv2D(16, 1, activation="sigmoid", name="expand")(s)
    m = L.Multiply(name="excite")([stem, s])
    y = L.Dense(3, name="y")(L.GlobalAveragePooling2D(name="pool")(m))
    return keras.Model(x, y, name="se")


@pytest.mark.parametrize(("size", "want"), [(8, (None, 8, 8, 16)), (None, (None, None, None, 16))])
def test_se_spec_checks(tmp_path: Path, size: int | None, want: Dims) -> None:
    checked = check_spec(write(tmp_path, se_doc(size)))
    assert checked.info["expand"].shape == (None, 1, 1, 16)
    assert checked.info["excite"].shape == want
    assert checked.totals.params == 448 + 68 + 80 + 51


@pytest.mark.slow
@pytest.mark.parametrize("size", [8, None])
def test_se_spec_compiles_to_the_keras_model(keras: Any, tmp_path: Path, state_dir: Path, size: int | None) -> None:
    import fusec

    path = write(tmp_path, se_doc(size))
    fusec.compile_spec(path, tmp_path / "out", fmt="keras")
    ours = fusec.load_model(tmp_path / "out", compile=False)
    theirs = se_keras(keras, size)
    checked = check_spec(path)
    for layer in theirs.layers:
        if layer.name != "x":
            assert tuple(layer.output.shape) == checked.info[layer.name].shape, layer.name
        if layer.weights:
            layer.set_weights(ours.get_layer(layer.name).get_weights())
    assert ours.count_params() == theirs.count_params() == checked.totals.params
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
    got, want = np.asarray(ours({"x": x})["y"]), np.asarray(theirs(x))
    assert got.shape == want.shape == (2, 3)
    assert np.max(np.abs(got - want)) <= 1e-6


@pytest.mark.slow
def test_se_archive_reads_as_keras_loads_it(keras: Any, tmp_path: Path) -> None:
    """The archive reader runs Keras's Multiply through the same rule: an SE model reads as Keras loads it."""
    from test_archives import assert_same, save_and_read

    for size in (8, None):
        sub, model = save_and_read(keras, se_keras(keras, size), tmp_path / f"se_{size}.keras")
        assert_same(sub, model)


# --- the diagram ---------------------------------------------------------------------------


def _edge(dot: str, fragment: str) -> str:
    (line,) = [ln for ln in dot.splitlines() if "->" in ln and fragment in ln]
    return line


def test_render_draws_the_broadcast(tmp_path: Path) -> None:
    dot = to_dot(check_spec(write(tmp_path, se_doc(8))))
    wide = _edge(dot, "broadcast")
    assert "<broadcast (None, 1, 1, 16) → (None, 8, 8, 16)>" in wide
    assert "style=dashed" in wide
    # A plain edge carries no label (its shape is printed in the source node): only the broadcast is dashed.
    plain = [ln for ln in dot.splitlines() if " -> " in ln and 'id="e' in ln and "broadcast" not in ln]
    assert plain and not any("dashed" in ln for ln in plain)
    assert "dashed edge: broadcast" in dot
    at_null = to_dot(check_spec(write(tmp_path, se_doc(None))))
    assert "broadcast (None, 1, 1, 16) → (None, None, None, 16)" in at_null


def test_render_broadcast_in_an_ordered_merge_and_none_without(tmp_path: Path) -> None:
    dot = to_dot(check_spec(write(tmp_path, merge_doc("subtract", [7, 5], [5]))))
    assert "<#2 broadcast (None, 5) → (None, 7, 5)>" in _edge(dot, "#2")
    assert "broadcast" not in _edge(dot, "#1")
    same = to_dot(check_spec(write(tmp_path, merge_doc("add", [7, 5], [None, 5]))))
    assert "broadcast" not in same and "dashed edge" not in same  # a null is not a broadcast


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_svg_shows_the_broadcast(tmp_path: Path) -> None:
    svg = render(check_spec(write(tmp_path, se_doc(8))), "svg").decode()
    assert "broadcast (None, 1, 1, 16) → (None, 8, 8, 16)" in svg
    assert re.search(r'stroke-dasharray="5,2"', svg)
    assert "dashed edge: broadcast" in svg
