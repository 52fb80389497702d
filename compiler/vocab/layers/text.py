"""Text-encoder layers that Keras itself does not ship: learned position embeddings.

``PositionEmbedding`` follows keras_hub's layer of that name (weights, maths
and config keys), so a keras_hub model maps onto it: its output is the
position table's rows for positions 0..T-1, shaped like its input (batch,
T, C), and a spec adds it to the token embeddings with an ``add`` merge. The
Keras class lives in ``fusec.keras.text``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...errors import RuleError
from ..rule import LayerRule, Out, Shape, fmt_shape, need_known, need_rank, p_float, p_initializer, p_int


def _position_embedding(shape: Shape, c: Any) -> Out:
    """One learned row per position: a (sequence_length, C) table, the output shaped like the input."""
    try:
        need_rank(shape, 3, "PositionEmbedding")
    except RuleError as exc:
        raise RuleError(exc.message + " (batch, steps, features)") from None
    features = need_known(shape[2], "PositionEmbedding's features", shape)
    length, steps = c["sequence_length"], shape[1]
    if steps is not None and steps > length * length:
        raise RuleError(
            f"PositionEmbedding learns {length} positions and extends them to at most {length} x {length} = "
            f"{length * length}; its input has {steps} steps. Received: {fmt_shape(shape)}",
            "sequence_length",
            f"set sequence_length to at least {steps}",
        )
    return Out(shape, length * features)


_INITIALIZER = dataclasses.replace(
    p_initializer("initializer", "glorot_uniform"),
    doc="Initializer for the (sequence_length, features) position table.",
)

LAYERS = (
    LayerRule(
        "PositionEmbedding",
        "Learned position embeddings (keras_hub's PositionEmbedding): rows 0..T-1 of a "
        "(sequence_length, features) table, shaped like its (batch, T, features) input, "
        "to `add` to the token embeddings; passes the padding mask on.",
        (
            p_int("sequence_length", "Positions learned: the longest sequence it embeds without extension."),
            _INITIALIZER,
            p_float(
                "hierarchical_alpha",
                "Longer inputs (up to sequence_length squared steps) mix two learned rows, weighted by this "
                "(keras_hub's hierarchical extension).",
                0.4,
                minimum=0,
                exclusive_max=1,
            ),
        ),
        _position_embedding,
        (
            ((8, 4), {"sequence_length": 8}),
            ((None, 6), {"sequence_length": 10}),
            ((5, 3), {"sequence_length": 3, "initializer": "zeros"}),
            ((4, 2), {"sequence_length": 4, "hierarchical_alpha": 0.2}),
        ),
        ("sequence_length",),
        keras_home="fusec.keras.text",
        dtypes="number",
    ),
)
