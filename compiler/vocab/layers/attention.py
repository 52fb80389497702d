"""Attention layers: layers called on named inputs (``query``, ``value``, ``key``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import RuleError
from ..rule import (
    LayerRule,
    Out,
    Shape,
    dense_weights_params,
    fmt_shape,
    need_known,
    need_rank,
    p_bool,
    p_enum,
    p_float,
    p_int,
)


def _qkv(shapes: Mapping[str, Shape], what: str) -> tuple[Shape, Shape, Shape]:
    q, v = shapes["query"], shapes["value"]
    k = shapes.get("key", v)
    for slot, shape in (("query", q), ("value", v), ("key", k)):
        try:
            need_rank(shape, 3, f"{what} {slot}")
        except RuleError as exc:
            raise RuleError(exc.message + " (batch, steps, features)") from None
    if v[1] is not None and k[1] is not None and v[1] != k[1]:
        raise RuleError(f"{what} needs key and value of one length. Received: key {fmt_shape(k)}, value {fmt_shape(v)}")
    return q, v, k


def _mha(shapes: Mapping[str, Shape], c: Any) -> Out:
    q, v, k = _qkv(shapes, "MultiHeadAttention")
    if v[1] != k[1]:  # Keras's build compares the declared lengths: an unknown one equals only an unknown one
        raise RuleError(
            f"MultiHeadAttention needs key and value of one declared length (Keras compares them as declared, "
            f"so an unknown length matches only an unknown length). Received: key {fmt_shape(k)}, value {fmt_shape(v)}",
            hint="give key and value inputs of the same declared sequence length",
        )
    dq = need_known(q[-1], "MultiHeadAttention's query features", q)
    dv = need_known(v[-1], "MultiHeadAttention's value features", v)
    dk = need_known(k[-1], "MultiHeadAttention's key features", k)
    heads, key_dim = c["num_heads"], c["key_dim"]
    value_dim = c["value_dim"] or key_dim
    out_dim = c["output_shape"] or dq
    bias = int(c["use_bias"])
    params = (
        dq * heads * key_dim + bias * heads * key_dim
        + dk * heads * key_dim + bias * heads * key_dim
        + dv * heads * value_dim + bias * heads * value_dim
        + heads * value_dim * out_dim + bias * out_dim
    )  # fmt: skip
    return Out((q[0], q[1], out_dim), params)


def _attention(shapes: Mapping[str, Shape], c: Any) -> Out:
    q, v, k = _qkv(shapes, "Attention")
    if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:  # concat adds them too: q + k
        raise RuleError(
            f"Attention ({c['score_mode']} score) needs query and key of one feature size. "
            f"Received: query {fmt_shape(q)}, key {fmt_shape(k)}",
            hint="project one with a Dense layer, or use MultiHeadAttention",
        )
    params = int(c["use_scale"]) + int(c["score_mode"] == "concat")
    return Out((q[0], q[1], v[-1]), params)


_MHA_EXAMPLES: tuple[Any, ...] = (
    ({"query": (5, 8), "value": (5, 8)}, {"num_heads": 2, "key_dim": 4}),
    ({"query": (3, 6), "value": (7, 4)}, {"num_heads": 1, "key_dim": 5, "value_dim": 3, "use_bias": False}),
    ({"query": (None, 8), "value": (6, 4), "key": (6, 2)}, {"num_heads": 3, "key_dim": 2, "output_shape": 5}),
)

LAYERS = (
    LayerRule(
        "MultiHeadAttention",
        "Multi-head attention of a query sequence over a value (and key) sequence; one id means self-attention.",
        (
            p_int("num_heads", "Number of attention heads."),
            p_int("key_dim", "Size of each head for query and key."),
            p_int("value_dim", "Size of each head for value. Default: key_dim.", None),
            p_float("dropout", "Dropout on the attention weights, in [0, 1).", 0.0, minimum=0, exclusive_max=1),
            p_int("output_shape", "Output features. Default: the query's features.", None),
            *dense_weights_params(),
        ),
        _mha,
        _MHA_EXAMPLES,
        ("num_heads", "key_dim"),
        slots=("query", "value", "key"),
        required_slots=("query", "value"),
        dtypes="number",
    ),
    LayerRule(
        "Attention",
        "Dot-product (Luong) attention of a query sequence over a value (and key) sequence.",
        (
            p_bool("use_scale", "Learn a scalar that scales the scores.", False),
            p_enum("score_mode", "How scores are computed.", ("dot", "concat"), "dot"),
            p_float("dropout", "Dropout on the attention weights, in [0, 1).", 0.0, minimum=0, exclusive_max=1),
        ),
        _attention,
        (
            ({"query": (5, 8), "value": (7, 8)}, {}),
            ({"query": (3, 4), "value": (6, 5), "key": (6, 4)}, {"use_scale": True}),
            ({"query": (None, 4), "value": (None, 4)}, {"score_mode": "concat"}),
        ),
        ("score_mode",),
        slots=("query", "value", "key"),
        required_slots=("query", "value"),
        call_style="list",
    ),
)
