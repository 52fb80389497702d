"""A transformer text encoder in a spec, proven equal to the same encoder written in plain Keras.

specs/text_encoder.json (pre-layer-norm) and its post-layer-norm variant
(BERT's order) are compiled by fusec and compared with encoders written by hand in
Keras, with the same layer names so weights copy across: the position table
of fusec's ``PositionEmbedding`` goes into the hand-written one's
``keras.layers.Embedding`` over positions 0..T-1. Rows are padded with 0
(``mask_zero``), so the padding mask must ride through the add,
attention, layer norms and Dense layers to the masked mean for the outputs
to agree, and a sentence must give the same answer however long its padding.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import SPECS
from fusec.static.check import Checked, check_spec
from fusec.vocab.layers import LAYERS

SPEC = SPECS / "text_encoder.json"
VOCAB, WIDTH, STEPS = 100, 16, 16
#: Sentences of 3 to 16 tokens, padded with 0 to 16 steps (no row is all padding).
LENGTHS = (3, 16, 7, 1, 11, 5)


def _tokens(steps: int = STEPS, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    rows = np.zeros((len(LENGTHS), steps), "int32")
    for r, n in enumerate(LENGTHS):
        rows[r, : min(n, steps)] = rng.integers(1, VOCAB, min(n, steps))
    return rows


def _post_norm(doc: dict[str, Any]) -> dict[str, Any]:
    """The spec's encoder layer rewritten post-norm (BERT's order): norm(x + attention(x)), then norm(. + ffn(.))."""
    doc = copy.deepcopy(doc)
    block = doc["blocks"]["encoder_layer"]["nodes"]
    block["attention"]["inputs"] = "x"
    block["attention_norm"]["inputs"] = "attention_add"
    block["ffn_inner"]["inputs"] = "attention_norm"
    block["ffn_add"]["inputs"] = ["attention_norm", "ffn_drop"]
    block["ffn_norm"]["inputs"] = "ffn_add"
    doc["blocks"]["encoder_layer"]["outputs"] = {"out": "ffn_norm"}
    del doc["nodes"]["final_norm"]
    doc["nodes"]["pooled"]["inputs"] = "layer_2"
    return doc


def _variant(tmp_path: Path, norm: str, steps: int | None = STEPS, mask: bool = True) -> Checked:
    """The spec (``pre``) or its post-norm variant, on ``steps`` tokens (None: any length), checked."""
    doc = json.loads(SPEC.read_text())
    doc.pop("$schema")
    if norm == "post":
        doc = _post_norm(doc)
    doc["inputs"]["tokens"]["shape"] = [steps]
    doc["nodes"]["token_emb"]["config"]["mask_zero"] = mask
    path = tmp_path / f"{norm}_{steps}_{mask}.json"
    path.write_text(json.dumps(doc))
    return check_spec(path)


# --- the same encoders, written in plain Keras ------------------------------------------


def _keras_positions(keras: Any) -> Any:
    """Learned positions as Keras tutorials write them: an Embedding looked up at 0..T-1, keeping the mask."""

    class Positions(keras.layers.Layer):
        def __init__(self, length: int, width: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.table = keras.layers.Embedding(length, width)
            self.supports_masking = True

        def call(self, x: Any) -> Any:
            ops = keras.ops
            return ops.broadcast_to(self.table(ops.arange(ops.shape(x)[1])), ops.shape(x))

    return Positions


def _keras_block(keras: Any, x: Any, prefix: str, norm: str) -> Any:
    layers = keras.layers

    def n(name: str) -> str:
        return f"{prefix}__{name}"

    attention = layers.MultiHeadAttention(2, 8, dropout=0.1, name=n("attention"))
    attention_norm = layers.LayerNormalization(epsilon=1e-6, name=n("attention_norm"))
    ffn_norm = layers.LayerNormalization(epsilon=1e-6, name=n("ffn_norm"))
    ffn = [layers.Dense(32, activation="gelu", name=n("ffn_inner")), layers.Dense(WIDTH, name=n("ffn_outer"))]
    if norm == "post":
        h = attention_norm(layers.Add()([x, layers.Dropout(0.1)(attention(x, x))]))
        return ffn_norm(layers.Add()([h, layers.Dropout(0.1)(ffn[1](ffn[0](h)))]))
    y = attention_norm(x)
    h = layers.Add()([x, layers.Dropout(0.1)(attention(y, y))])
    return layers.Add()([h, layers.Dropout(0.1)(ffn[1](ffn[0](ffn_norm(h))))])


def _keras_encoder(keras: Any, norm: str, steps: int | None = STEPS) -> Any:
    layers = keras.layers
    tokens = keras.Input((steps,), dtype="int32", name="tokens")
    emb = layers.Embedding(VOCAB, WIDTH, mask_zero=True, name="token_emb")(tokens)
    x = layers.Add()([emb, _keras_positions(keras)(STEPS, WIDTH, name="position_emb")(emb)])
    x = layers.LayerNormalization(epsilon=1e-6, name="embed_norm")(x)
    for prefix in ("layer_1", "layer_2"):
        x = _keras_block(keras, x, prefix, norm)
    if norm == "pre":
        x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    pooled = layers.GlobalAveragePooling1D(name="pooled")(x)
    return keras.Model(tokens, layers.Dense(3, activation="softmax", name="label")(pooled))


def _copy_weights(source: Any, target: Any) -> None:
    """Every weighted layer of ``source`` into the ``target`` layer of the same name."""
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())


def _randomized(model: Any, seed: int = 1) -> Any:
    """Non-trivial weights everywhere (layer-norm scales and biases too), so nothing agrees by accident."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _fusec(keras: Any, checked: Checked) -> Any:
    from fusec.keras.build import build_model

    return _randomized(build_model(checked, compile=False))


def _run(model: Any, tokens: Any) -> Any:
    out = model([tokens] if isinstance(model.input, list) else tokens, training=False)
    return np.asarray(out["label"] if isinstance(out, dict) else out)


# --- the tests ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_spec_equals_the_keras_encoder(keras: Any, tmp_path: Path, norm: str) -> None:
    """Copied weights, padded rows: fusec's model and the hand-written Keras encoder give the same outputs."""
    checked = check_spec(SPEC) if norm == "pre" else _variant(tmp_path, norm)
    ours = _fusec(keras, checked)
    theirs = _keras_encoder(keras, norm)
    _copy_weights(ours, theirs)
    tokens = _tokens()
    got, want = _run(ours, tokens), _run(theirs, tokens)
    assert np.abs(got - want).max() <= 1e-5
    assert ours.count_params() == theirs.count_params() == checked.totals.params


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_static_shapes_and_parameters_equal_keras(keras: Any, tmp_path: Path, norm: str) -> None:
    """Each weighted node's static shape and parameter count equal the Keras layer's of that name."""
    checked = check_spec(SPEC) if norm == "pre" else _variant(tmp_path, norm)
    theirs = _keras_encoder(keras, norm)
    compared = 0
    for layer in theirs.layers:
        if layer.name not in checked.info:
            continue
        info = checked.info[layer.name]
        assert info.shape == tuple(layer.output.shape), layer.name
        assert info.trainable + info.non_trainable == layer.count_params(), layer.name
        compared += 1
    assert compared >= 15


def _padding_changes(model: Any, tokens: Any, padded: Any) -> float:
    """The largest change in a sentence's output between its padded row and the same tokens padded less or not."""
    worst = 0.0
    for steps in sorted({*LENGTHS, 11}):  # every sentence that fits, cut to `steps`, in one batch
        rows = [r for r, n in enumerate(LENGTHS) if n <= steps]
        worst = max(worst, float(np.abs(_run(model, tokens[rows, :steps]) - padded[rows]).max()))
    return worst


def _any_length(keras: Any, tmp_path: Path, norm: str, mask: bool = True) -> tuple[Any, Any, Any]:
    """fusec's model on 16 steps, and fusec's and Keras's on any length, all with the same random weights."""
    fixed = _fusec(keras, check_spec(SPEC) if norm == "pre" else _variant(tmp_path, norm))
    ours = _fusec(keras, _variant(tmp_path, norm, None, mask))
    _copy_weights(fixed, ours)
    theirs = _keras_encoder(keras, norm, None)
    _copy_weights(fixed, theirs)
    return fixed, ours, theirs


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")  # a one-token sentence attends to itself
def test_padding_never_changes_a_sentence(keras: Any, tmp_path: Path) -> None:
    """A sentence padded to 16 steps, to 11, or not at all gives one answer, in fusec's model and in Keras's:
    the mask keeps padded steps out of attention and out of the mean. Without the mask, padding changes it."""
    fixed, ours, theirs = _any_length(keras, tmp_path, "pre")
    tokens = _tokens()
    padded = _run(fixed, tokens)
    assert _padding_changes(ours, tokens, padded) <= 1e-5
    assert _padding_changes(theirs, tokens, padded) <= 1e-5
    _, unmasked, _ = _any_length(keras, tmp_path, "pre", mask=False)
    _copy_weights(fixed, unmasked)
    assert _padding_changes(unmasked, tokens, padded) > 1e-3


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")
def test_post_norm_loses_the_mask_as_keras_does(keras: Any, tmp_path: Path) -> None:
    """Keras 3's MultiHeadAttention strips the mask from the tensor it is called on; a post-norm layer adds that
    tensor back, and Keras's merges drop the mask unless every input has one: the next layer attends to padding.

    fusec's model does exactly what the Keras encoder does, padding included (this is why the bundled spec is
    pre-norm). If this starts to fail because padding no longer matters, Keras fixed it: update the spec's doc.
    """
    fixed, ours, theirs = _any_length(keras, tmp_path, "post")
    tokens = _tokens()
    padded = _run(fixed, tokens)
    for r, n in enumerate(LENGTHS):
        np.testing.assert_allclose(_run(ours, tokens[r : r + 1, :n]), _run(theirs, tokens[r : r + 1, :n]), atol=1e-5)
    assert _padding_changes(ours, tokens, padded) > 1e-3
    assert _padding_changes(theirs, tokens, padded) > 1e-3


@pytest.mark.slow
def test_position_embedding_is_keras_hubs(keras: Any) -> None:
    """keras_hub's maths: the first T rows below sequence_length, its hierarchical extension from there."""
    from fusec.keras.text import PositionEmbedding

    layer = PositionEmbedding(4, hierarchical_alpha=0.25)
    layer.build((None, None, 3))
    table = np.arange(12, dtype="float32").reshape(4, 3) / 7.0
    layer.set_weights([table])
    x = np.zeros((2, 3, 3), "float32")
    np.testing.assert_array_equal(np.asarray(layer(x)), np.broadcast_to(table[:3], x.shape))
    a, steps = 0.25, np.arange(10)
    rows = (table - a * table[:1]) / (1 - a)
    want = a * rows[steps // 4] + (1 - a) * rows[steps % 4]
    np.testing.assert_allclose(np.asarray(layer(np.zeros((1, 10, 3), "float32")))[0], want, atol=1e-6)
    past = np.asarray(layer(np.zeros((1, 20, 3), "float32")))[0]  # past 4 x 4 steps: the last coarse row, no failure
    np.testing.assert_allclose(past[19], rows[3], atol=1e-6)
    assert [w.name for w in layer.weights] == ["embeddings"]
    again = PositionEmbedding.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


def test_position_embedding_rule_refuses_what_keras_cannot_run() -> None:
    """Rank 3 with known features; at most sequence_length squared steps (past that keras_hub's lookup fails)."""
    from fusec.errors import RuleError

    rule = LAYERS["PositionEmbedding"]
    config = rule.resolve({"sequence_length": 3})
    assert rule.infer((None, 9, 4), config).trainable == 12
    for shape, match in (((None, 4), "rank 3"), ((None, 5, None), "features"), ((None, 10, 4), "at most 3 x 3")):
        with pytest.raises(RuleError, match=match):
            rule.infer(shape, config)
