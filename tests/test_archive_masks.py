"""Padding masks in ``.keras`` archives: Keras's own mask ops are read, checked and set aside; others are refused.

Keras 3 saves the mask of an ``Embedding(mask_zero=True)`` as op nodes of the
functional graph (``NotEqual``, ``LogicalOr``...) passed to later calls as
``mask=``. fusec reads an archive holding them (a sub-model, ``fusec import``)
and drops them: the rebuilt model computes the same masks from ``mask_zero``.
A mask op used as data, or a mask Keras did not compute, is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_archives import assert_same, save_and_read
from test_corpus_archives import archive, dense, input_layer, layer, tensor, weights_h5

from conftest import SPECS
from fusec.errors import RuleError
from fusec.static.archive import inspect_keras
from fusec.static.check import check_spec

# --- without TensorFlow: a masked archive written by hand, as Keras 3.15 writes it -----------------


def _masked_config() -> dict[str, Any]:
    """tokens (6 ids) -> Embedding(mask_zero) -> GRU(3) with the padding mask -> Dense(2)."""
    gru = {"units": 3, "activation": "tanh", "recurrent_activation": "sigmoid", "return_sequences": False}
    layers = [
        input_layer("tok", [6], "int32"),
        layer("Embedding", "emb", {"input_dim": 20, "output_dim": 4, "mask_zero": True}, "tok", build=[None, 6]),
        {
            "module": "keras.src.ops.numpy",
            "class_name": "NotEqual",
            "config": {"name": "not_equal"},
            "registered_name": "NotEqual",
            "name": "not_equal",
            "inbound_nodes": [{"args": [tensor("tok"), 0], "kwargs": {}}],
        },
        layer("GRU", "gru", gru, "emb", build=[None, 6, 4], kwargs={"training": False, "mask": tensor("not_equal")}),
        dense("out", 2, "gru", 3),
    ]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "masked",
            "trainable": True,
            "layers": layers,
            "input_layers": [["tok", 0, 0]],
            "output_layers": [["out", 0, 0]],
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": {},
    }


_WEIGHTS = {
    "layers/embedding/vars/0": (20, 4),
    "layers/gru/cell/vars/0": (4, 9),
    "layers/gru/cell/vars/1": (3, 9),
    "layers/gru/cell/vars/2": (2, 9),
    "layers/dense/vars/0": (3, 2),
    "layers/dense/vars/1": (2,),
}


def _by_name(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in config["config"]["layers"] if d["name"] == name)


def _masked(tmp_path: Path, mutate: Callable[[dict[str, Any]], Any] | None = None) -> Path:
    config = _masked_config()
    if mutate is not None:
        mutate(config)
    return archive(tmp_path / "masked.keras", config, weights_h5(_WEIGHTS))


def test_a_masked_archive_reads_without_its_mask_ops(tmp_path: Path) -> None:
    sub = inspect_keras(_masked(tmp_path))
    assert sub.outputs == {"out": (None, 2)}
    assert sub.params == 20 * 4 + (4 * 9 + 3 * 9 + 2 * 9) + 3 * 2 + 2


def _as_output(c: dict[str, Any]) -> None:
    c["config"]["output_layers"] = [["out", 0, 0], ["not_equal", 0, 0]]


def _as_data(c: dict[str, Any]) -> None:
    _by_name(c, "out")["inbound_nodes"][0]["args"] = [tensor("not_equal")]


def _user_mask(c: dict[str, Any]) -> None:
    _by_name(c, "gru")["inbound_nodes"][0]["kwargs"]["mask"] = tensor("tok")


def _not_zero(c: dict[str, Any]) -> None:
    _by_name(c, "not_equal")["inbound_nodes"][0]["args"][1] = 5


def _no_mask_zero(c: dict[str, Any]) -> None:
    _by_name(c, "emb")["config"]["mask_zero"] = False


def _setting(c: dict[str, Any]) -> None:
    _by_name(c, "not_equal")["config"]["axis"] = 1


def _other_op(c: dict[str, Any]) -> None:
    op = _by_name(c, "not_equal")
    op.update(module="keras.src.ops.core", class_name="Cast", registered_name="Cast")


def _masked_kwarg(c: dict[str, Any]) -> None:
    _by_name(c, "gru")["inbound_nodes"][0]["kwargs"]["initial_state"] = tensor("not_equal")


@pytest.mark.parametrize(
    ("mutate", "says"),
    [
        (_as_output, "is a model output: a mask op used as data"),
        (_as_data, "is called on layer `not_equal` (NotEqual) of model `masked`: a mask used as data"),
        (_masked_kwarg, "as its `initial_state`: a mask used as data"),
        (_user_mask, "is called with a `mask` read from `tok`, not a padding mask Keras computed"),
        (_not_zero, "is called on arguments Keras never gives a mask op"),
        (_no_mask_zero, "tests a tensor that no Embedding with `mask_zero` reads"),
        (_setting, "which Keras never writes for a mask"),
        (_other_op, "Keras op `Cast`"),
    ],
    ids=["output", "data", "kwarg", "user_mask", "not_zero", "no_mask_zero", "setting", "other_op"],
)
def test_masks_keras_did_not_compute_are_refused(tmp_path: Path, mutate: Callable[..., Any], says: str) -> None:
    with pytest.raises(RuleError) as err:
        inspect_keras(_masked(tmp_path, mutate))
    assert says in err.value.message, err.value.message
    assert err.value.hint


def test_a_masked_archive_imports_without_its_mask_ops(tmp_path: Path) -> None:
    """``fusec import`` reads the same archive (no TensorFlow): the spec holds the layers, never the ops."""
    import json

    from fusec.importer import import_source

    src = _masked(tmp_path)
    report = import_source(str(src), tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert report.params == inspect_keras(src).params
    assert set(doc["nodes"]) == {"emb", "gru", "out"}
    assert doc["nodes"]["emb"]["config"]["mask_zero"] is True
    assert "not_equal" not in json.dumps(doc).lower()


# --- with Keras: archives Keras writes ----------------------------------------------------------


@pytest.mark.slow
def test_text_encoder_archive_reads_back(keras: Any, tmp_path: Path) -> None:
    """The compiled text encoder (mask ops through adds and norms to the pooling) reads back exactly."""
    from fusec.keras.build import build_model

    checked = check_spec(SPECS / "text_encoder.json")
    sub, loaded = save_and_read(keras, build_model(checked), tmp_path / "text.keras")
    assert_same(sub, loaded)
    assert sub.params == checked.totals.params


def _run(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's one output on ``x`` (fusec's models are called, and answer, by name)."""
    struct = getattr(model, "_inputs_struct", None)
    given = {model.inputs[0].name: x} if isinstance(struct, dict) else [x] if isinstance(struct, list) else x
    out = model(given, training=False)
    return np.asarray(next(iter(out.values())) if isinstance(out, dict) else out)


def _padded(rng: np.random.Generator) -> np.ndarray:
    """Token ids in [1, 20) with padding (0) after each sentence, of lengths 1..6."""
    x = rng.integers(1, 20, size=(6, 6)).astype("int32")
    for row, length in enumerate(range(1, 7)):
        x[row, length:] = 0
    return x


@pytest.mark.slow
def test_masked_gru_imports_and_honours_the_mask(keras: Any, tmp_path: Path) -> None:
    """Embedding(mask_zero) + Concatenate + GRU + Dense: imported, compiled, equal to Keras, padding ignored."""
    from fusec.importer import import_source
    from fusec.keras.build import build_model
    from fusec.keras.weights import set_weights

    layers = keras.layers
    tok = keras.Input((6,), dtype="int32", name="tok")
    emb = layers.Embedding(20, 4, mask_zero=True, name="emb")(tok)
    both = layers.Concatenate(name="both")([emb, layers.Dense(3, name="proj")(emb)])
    out = layers.Dense(2, name="out")(layers.GRU(5, name="gru")(both))
    model = keras.Model(tok, out)
    src = tmp_path / "src.keras"
    model.save(src)
    assert_same(inspect_keras(src), keras.saving.load_model(src, compile=False, safe_mode=True))
    report = import_source(str(src), tmp_path / "m.json")
    checked = check_spec(tmp_path / "m.json")
    assert checked.totals.params == model.count_params() == report.params
    built = build_model(checked, compile=False)
    set_weights(built, checked)
    x = _padded(np.random.default_rng(0))
    want = _run(model, x)
    np.testing.assert_allclose(_run(built, x), want, atol=1e-5)
    emb_layer = next(w for w in built.layers if isinstance(w, layers.Embedding))
    table = emb_layer.get_weights()[0]
    table[0] = 100.0  # what a padded position embeds: ignored where the mask is honoured
    emb_layer.set_weights([table])
    np.testing.assert_allclose(_run(built, x), want, atol=1e-5)
    emb_layer.set_weights([np.where(np.arange(20)[:, None] == 3, 100.0, table)])  # a real token's row: it counts
    assert not np.allclose(_run(built, np.where(x == 0, 0, 3)), _run(model, np.where(x == 0, 0, 3)), atol=1e-3)
