"""Scaling and element-wise layers: Rescaling, Normalization, LayerScale, StochasticDepth, ScalarOp.

LayerScale, StochasticDepth and ScalarOp are fusec's own Keras layers
(``fusec.keras.fusion``): what Keras applications write as a private class
(ConvNeXt's LayerScale), a Dropout with a noise shape, or a raw ``x + 3.0``
in the functional graph.
"""

from __future__ import annotations

from typing import Any

from ...errors import RuleError
from ..rule import (
    LayerRule,
    Out,
    Param,
    Shape,
    fmt_shape,
    need_axis,
    need_known,
    need_rank,
    p_bool,
    p_enum,
    p_float,
    p_int,
)


def _channels(shape: Shape, c: Any, what: str) -> int:
    axis = need_axis(shape, c.get("axis", -1), what)
    return need_known(shape[axis], f"{what}'s normalised axis", shape)


def _per_channel(shape: Shape, c: Any, what: str, keys: tuple[str, ...]) -> None:
    """Each key's list (one value per channel of the last axis) has 1 value or one per channel."""
    for key in keys:
        value = c[key]
        if not isinstance(value, list) or len(value) == 1:
            continue
        ch = need_known(shape[-1], f"{what}'s last dimension (with a {key} per channel)", shape)
        if len(value) != ch:
            raise RuleError(
                f"{what}'s {key} needs one value or {ch} (one per channel of {fmt_shape(shape)}). "
                f"Received: {len(value)}",
                key,
            )


def _rescaling(shape: Shape, c: Any) -> Out:
    need_rank(shape, (2, 8), "Rescaling")
    _per_channel(shape, c, "Rescaling", ("scale", "offset"))
    return Out(shape)


def _normalization(shape: Shape, c: Any) -> Out:
    need_rank(shape, (2, 8), "Normalization")
    ch = _channels(shape, c, "Normalization")
    if c["mean"] is None and c["variance"] is None:
        # Keras keeps mean and variance (one per channel) and a count as non-trainable weights.
        return Out(shape, 0, 2 * ch + 1)
    if c["mean"] is None or c["variance"] is None:
        given, missing = ("mean", "variance") if c["variance"] is None else ("variance", "mean")
        raise RuleError(
            f"Normalization needs mean and variance both given or both null. Received: {given} without {missing}",
            missing,
            f"give {missing} too, or neither (the weights then hold both)",
        )
    for key in ("mean", "variance"):
        value = c[key]
        if isinstance(value, list) and len(value) not in (1, ch):
            raise RuleError(
                f"Normalization's {key} needs one value or {ch} (one per channel). Received: {len(value)}",
                key,
            )
    mean, variance = c["mean"], c["variance"]
    sizes = [len(v) if isinstance(v, list) else None for v in (mean, variance)]
    if sizes[0] != sizes[1]:
        shown = ["one number" if n is None else f"a list of {n}" for n in sizes]
        raise RuleError(
            f"Normalization needs mean and variance of one shape. Received: mean {shown[0]}, variance {shown[1]}",
            "variance",
            "give both as one number, or both as lists of the same length",
        )
    # Inline values are constants, not weights: Keras counts no parameters.
    return Out(shape, 0, 0)


def _layer_scale(shape: Shape, c: Any) -> Out:
    need_rank(shape, (2, 8), "LayerScale")
    ch = need_known(shape[-1], "LayerScale's last dimension", shape)
    if c["projection_dim"] not in (None, ch):
        raise RuleError(
            f"LayerScale's projection_dim {c['projection_dim']} differs from the input's channels {ch} "
            f"({fmt_shape(shape)})",
            "projection_dim",
            "leave it out (null: the input's last axis)",
        )
    return Out(shape, ch)


def _same(what: str):  # type: ignore[no-untyped-def]
    def infer(shape: Shape, c: Any) -> Out:
        need_rank(shape, (2, 8), what)
        return Out(shape)

    return infer


_NUMBER_OR_LIST = {
    "oneOf": [
        {"type": "number"},
        {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 1 << 16},
    ]
}


_AXIS = p_int("axis", "The axis to normalise (channels-last: -1).", -1, minimum=-8, maximum=8)

#: ScalarOp's operations, by name: what Keras applications write as ``x + 3.0``, ``x * (1 / 6)``...
SCALAR_OPS = ("add", "subtract", "multiply", "divide", "power", "maximum", "minimum")

LAYERS = (
    LayerRule(
        "Normalization",
        "Standardises features: (x - mean) / sqrt(variance), with mean and variance given inline, "
        "or (both null) kept as the layer's weights (mean, variance, count), as an adapted Keras layer.",
        (
            Param(
                "mean",
                _NUMBER_OR_LIST,
                "Mean: one number, or one per channel; null: a weight (a weights file fills it).",
                None,
            ),
            Param(
                "variance",
                _NUMBER_OR_LIST,
                "Variance: one number, or one per channel; null: a weight (a weights file fills it).",
                None,
            ),
            _AXIS,
        ),
        _normalization,
        (
            ((3,), {"mean": [1.0, 2.0, 3.0], "variance": [1.0, 4.0, 9.0]}),
            ((4, 2), {"mean": 0.5, "variance": 2.0}),
            ((2, 2, 1), {"mean": [0.0], "variance": [1.0]}),
            ((4, 4, 3), {}),
            ((5, 6), {"axis": 1}),
        ),
        (),
        dtypes="number",
    ),
    LayerRule(
        "Rescaling",
        "Computes x * scale + offset (for example 1/255 for pixels); a list gives one value per channel.",
        (
            Param("scale", _NUMBER_OR_LIST, "Multiplier: one number, or one per channel (the last axis)."),
            Param("offset", _NUMBER_OR_LIST, "Added after scaling: one number, or one per channel.", 0.0),
        ),
        _rescaling,
        (
            ((4, 4, 3), {"scale": 0.00392156862745098}),
            ((5,), {"scale": 2.0, "offset": -1.0}),
            ((2, 3), {"scale": 1.0}),
            ((4, 4, 3), {"scale": [4.0, 2.0, 1.0], "offset": [-0.5, 0.0, 0.5]}),
            ((2, 3), {"scale": [0.5], "offset": [1.0, 2.0, 3.0]}),
        ),
        ("scale",),
        dtypes="number",
    ),
    LayerRule(
        "LayerScale",
        "Per-channel learned scale: x * gamma, gamma (one per channel of the last axis) starting at init_values "
        "(ConvNeXt's LayerScale).",
        (
            p_float("init_values", "Initial value of every gamma.", 1e-6),
            p_int("projection_dim", "Channels of the input's last axis (null: read from the input).", None),
        ),
        _layer_scale,
        (((4, 4, 8), {}), ((5, 3), {"init_values": 0.1}), ((2, 2, 6), {"init_values": 1.0, "projection_dim": 6})),
        ("init_values",),
        keras_home="fusec.keras.fusion",
    ),
    LayerRule(
        "StochasticDepth",
        "Drops each example's whole input (a residual branch) with probability rate while training, "
        "scaling the kept ones by 1 / (1 - rate); the identity at inference.",
        (
            p_float("rate", "Probability of dropping an example's branch, in [0, 1).", minimum=0, exclusive_max=1),
            p_int("seed", "Seed of the drops.", None, minimum=0, maximum=(1 << 31) - 1),
        ),
        _same("StochasticDepth"),
        (((4, 4, 8), {"rate": 0.2}), ((5,), {"rate": 0.0}), ((3, 6), {"rate": 0.5, "seed": 7})),
        ("rate",),
        keras_home="fusec.keras.fusion",
    ),
    LayerRule(
        "ScalarOp",
        "Element-wise operation with a constant: x op value, or value op x with reverse "
        "(Keras applications' raw x + 3.0, x * (1 / 6)).",
        (
            p_enum("op", "The operation.", SCALAR_OPS),
            p_float("value", "The constant."),
            p_bool("reverse", "Compute value op x instead of x op value.", False),
        ),
        _same("ScalarOp"),
        (
            ((4, 4, 3), {"op": "add", "value": 3.0}),
            ((5,), {"op": "multiply", "value": 0.16666666666666666}),
            ((2, 3), {"op": "subtract", "value": 1.0, "reverse": True}),
            ((6,), {"op": "divide", "value": 6.0}),
            ((3, 2), {"op": "maximum", "value": 0.0}),
        ),
        ("op", "value"),
        keras_home="fusec.keras.fusion",
        dtypes="number",
    ),
)
