"""Core, reshaping, regularisation and normalisation layers."""

from __future__ import annotations

from typing import Any

from ...errors import RuleError
from ..rule import (
    MAX_DIM,
    LayerRule,
    Out,
    Param,
    Shape,
    dense_weights_params,
    fmt_shape,
    need_axis,
    need_known,
    need_rank,
    p_activation,
    p_bool,
    p_constraint,
    p_float,
    p_initializer,
    p_int,
    p_regularizer,
    prod,
)
from .scale import LAYERS as _SCALE_LAYERS


def _dense(shape: Shape, c: Any) -> Out:
    need_rank(shape, (2, 8), "Dense")
    n_in = need_known(shape[-1], "Dense's input last dimension", shape)
    units = c["units"]
    return Out(shape[:-1] + (units,), n_in * units + (units if c["use_bias"] else 0))


def _embedding(shape: Shape, c: Any) -> Out:
    need_rank(shape, (1, 7), "Embedding")
    return Out(shape + (c["output_dim"],), c["input_dim"] * c["output_dim"])


def _flatten(shape: Shape, c: Any) -> Out:
    need_rank(shape, (2, 8), "Flatten")
    rest = shape[1:]
    size = None if any(d is None for d in rest) else prod([d for d in rest if d is not None])
    return Out((shape[0], size))


def _reshape(shape: Shape, c: Any) -> Out:
    target = list(c["target_shape"])
    if 0 in target:
        raise RuleError(
            f"Reshape's target_shape holds 0 at position {target.index(0)}: a tensor with an empty axis holds "
            f"nothing. Received: {target}",
            "target_shape",
            "give every axis a positive size, or -1 once for the size to be inferred",
        )
    if target.count(-1) > 1:
        raise RuleError(
            f"Reshape's target_shape may hold -1 at most once. Received: {target}",
            "target_shape",
            "give all but one axis its size",
        )
    rest = shape[1:]
    if any(d is None for d in rest):
        if -1 in target:
            raise RuleError(
                f"Reshape cannot infer -1 from an input with unknown dimensions. Received: {fmt_shape(shape)}",
                "target_shape",
            )
        return Out((shape[0], *target))
    size = prod([d for d in rest if d is not None])
    known = prod([d for d in target if d != -1])
    if -1 in target:
        if size % known:
            raise RuleError(
                f"Reshape cannot fit {size} values from {fmt_shape(shape)} into {tuple(target)}",
                "target_shape",
            )
        target[target.index(-1)] = size // known
    elif known != size:
        raise RuleError(
            f"Reshape needs target_shape to hold as many values as the input. Received: "
            f"{fmt_shape(shape)} ({size} values) into {tuple(target)} ({known} values)",
            "target_shape",
        )
    return Out((shape[0], *target))


def _permute(shape: Shape, c: Any) -> Out:
    dims = list(c["dims"])
    if sorted(dims) != list(range(1, len(shape))):
        raise RuleError(
            f"Permute's dims must order 1..{len(shape) - 1} for an input of shape {fmt_shape(shape)}. Received: {dims}",
            "dims",
        )
    return Out((shape[0], *(shape[d] for d in dims)))


def _repeat_vector(shape: Shape, c: Any) -> Out:
    need_rank(shape, 2, "RepeatVector")
    return Out((shape[0], c["n"], shape[1]))


def _identity(rank: tuple[int, int] | int, what: str):  # type: ignore[no-untyped-def]
    def infer(shape: Shape, c: Any) -> Out:
        need_rank(shape, rank, what)
        return Out(shape)

    return infer


def _channels(shape: Shape, c: Any, what: str) -> int:
    axis = need_axis(shape, c.get("axis", -1), what)
    return need_known(shape[axis], f"{what}'s normalised axis", shape)


def _softmax(shape: Shape, c: Any) -> Out:
    need_rank(shape, (2, 8), "Softmax")
    need_axis(shape, c["axis"], "Softmax")
    return Out(shape)


def _batch_norm(shape: Shape, c: Any) -> Out:
    need_rank(shape, (2, 8), "BatchNormalization")
    ch = _channels(shape, c, "BatchNormalization")
    return Out(shape, ch * (int(c["center"]) + int(c["scale"])), 2 * ch)


def _layer_norm(shape: Shape, c: Any) -> Out:
    need_rank(shape, (2, 8), "LayerNormalization")
    ch = _channels(shape, c, "LayerNormalization")
    return Out(shape, ch * (int(c["center"]) + int(c["scale"])))


def _dropout(shape: Shape, c: Any) -> Out:
    need_rank(shape, (2, 8), "Dropout")
    noise = c["noise_shape"]
    if noise is None:
        return Out(shape)
    if len(noise) != len(shape):
        raise RuleError(
            f"Dropout's noise_shape needs one entry per axis of the input {fmt_shape(shape)}, batch axis "
            f"included. Received: {noise}",
            "noise_shape",
            f"give {len(shape)} entries, e.g. {[None, *[1] * (len(shape) - 1)]}",
        )
    for i, (n, d) in enumerate(zip(noise, shape, strict=True)):
        if n not in (None, 1) and d is not None and n != d:
            raise RuleError(
                f"Dropout's noise_shape {noise} does not broadcast to the input {fmt_shape(shape)}: axis {i} "
                f"is {n}, the input's is {d}",
                "noise_shape",
                "use 1 (one draw along the axis), null or the input's size",
            )
    return Out(shape)


_DIMS = {
    "type": "array",
    "items": {"type": "integer", "minimum": -1, "maximum": 1 << 24},
    "minItems": 1,
    "maxItems": 8,
}

_NOISE_SHAPE = {
    "type": "array",
    "items": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_DIM},
    "minItems": 2,
    "maxItems": 8,
}

_NORM_WEIGHTS = (
    p_initializer("beta_initializer", "zeros"),
    p_initializer("gamma_initializer", "ones"),
    p_regularizer("beta_regularizer"),
    p_regularizer("gamma_regularizer"),
    p_constraint("beta_constraint"),
    p_constraint("gamma_constraint"),
)

_AXIS = p_int("axis", "The axis to normalise (channels-last: -1).", -1, minimum=-8, maximum=8)

LAYERS = (
    LayerRule(
        "Dense",
        "Fully connected layer: activation(x @ kernel + bias) on the last axis.",
        (p_int("units", "Output width."), p_activation(), *dense_weights_params()),
        _dense,
        (
            ((8,), {"units": 4}),
            ((5, 8), {"units": 3, "use_bias": False}),
            ((16,), {"units": 1, "activation": "sigmoid"}),
            (
                (6,),
                {
                    "units": 3,
                    "kernel_initializer": {"name": "truncated_normal", "stddev": 0.02, "seed": 1},
                    "bias_initializer": {"name": "constant", "value": 0.1},
                    "kernel_constraint": "unit_norm",
                    "bias_regularizer": {"name": "l1_l2", "l1": 0.01},
                },
            ),
            ((4,), {"units": 4, "kernel_initializer": "variance_scaling", "activation": "hard_swish"}),
        ),
        ("units", "activation"),
        dtypes="number",
    ),
    LayerRule(
        "Embedding",
        "Maps integer ids in [0, input_dim) to dense vectors of size output_dim.",
        (
            p_int("input_dim", "Vocabulary size: ids run from 0 to input_dim - 1.", maximum=1 << 31),
            p_int("output_dim", "Size of each embedding vector."),
            p_initializer("embeddings_initializer", "uniform"),
            p_regularizer("embeddings_regularizer"),
            p_constraint("embeddings_constraint"),
            p_bool("mask_zero", "Treat id 0 as padding and propagate a mask.", False),
        ),
        _embedding,
        (
            ((1,), {"input_dim": 100, "output_dim": 8}),
            ((12,), {"input_dim": 50, "output_dim": 4}),
            ((None,), {"input_dim": 20, "output_dim": 3, "mask_zero": True}),
        ),
        ("input_dim", "output_dim"),
        dtypes="ids",
    ),
    LayerRule(
        "Flatten",
        "Flattens every axis but the batch axis.",
        (),
        _flatten,
        (((4, 4, 3), {}), ((7,), {}), ((2, 3, 4, 5), {})),
        dtypes="keep",
    ),
    LayerRule(
        "Reshape",
        "Reshapes to target_shape (batch axis excluded; one -1 is inferred).",
        (Param("target_shape", _DIMS, "Target shape without the batch axis; -1 once at most."),),
        _reshape,
        (
            ((12,), {"target_shape": [3, 4]}),
            ((2, 6), {"target_shape": [-1]}),
            ((4, 4, 2), {"target_shape": [8, -1]}),
        ),
        ("target_shape",),
        dtypes="keep",
    ),
    LayerRule(
        "Permute",
        "Reorders the non-batch axes (1-based, like Keras).",
        (
            Param(
                "dims",
                {**_DIMS, "items": {"type": "integer", "minimum": 1, "maximum": 8}},
                "A permutation of 1..rank-1.",
            ),
        ),
        _permute,
        (((2, 3), {"dims": [2, 1]}), ((2, 3, 4), {"dims": [3, 1, 2]}), ((5, 6), {"dims": [1, 2]})),
        ("dims",),
        dtypes="keep",
    ),
    LayerRule(
        "RepeatVector",
        "Repeats a (batch, features) input n times: (batch, n, features).",
        (p_int("n", "Number of repetitions."),),
        _repeat_vector,
        (((4,), {"n": 3}), ((1,), {"n": 10}), ((7,), {"n": 1})),
        ("n",),
    ),
    LayerRule(
        "Dropout",
        "Randomly zeroes a fraction `rate` of inputs during training.",
        (
            p_float("rate", "Fraction of the inputs to drop, in [0, 1).", minimum=0, exclusive_max=1),
            Param(
                "noise_shape",
                _NOISE_SHAPE,
                "Shape of the dropout mask, batch axis included (null: the input's); 1 shares one draw along "
                "an axis, null takes the input's size. [null, 1, 1, 1] drops whole examples (training only).",
                None,
            ),
            p_int("seed", "Seed of the dropout mask.", None, minimum=0, maximum=(1 << 31) - 1),
        ),
        _dropout,
        (
            ((8,), {"rate": 0.5}),
            ((3, 4), {"rate": 0.1}),
            ((2, 2, 2), {"rate": 0.0, "seed": 3}),
            ((4, 4, 3), {"rate": 0.2, "noise_shape": [None, 1, 1, 1]}),
            ((5, 6), {"rate": 0.3, "noise_shape": [None, 1, 6]}),
        ),
        ("rate",),
    ),
    LayerRule(
        "SpatialDropout1D",
        "Dropout of whole feature maps of a (batch, steps, channels) input.",
        (p_float("rate", "Fraction of the channels to drop, in [0, 1).", minimum=0, exclusive_max=1),),
        _identity(3, "SpatialDropout1D"),
        (((5, 4), {"rate": 0.2}), ((None, 8), {"rate": 0.5}), ((3, 1), {"rate": 0.0})),
        ("rate",),
    ),
    LayerRule(
        "SpatialDropout2D",
        "Dropout of whole feature maps of a (batch, rows, cols, channels) input.",
        (p_float("rate", "Fraction of the channels to drop, in [0, 1).", minimum=0, exclusive_max=1),),
        _identity(4, "SpatialDropout2D"),
        (((5, 5, 4), {"rate": 0.2}), ((8, 8, 1), {"rate": 0.5}), ((2, 3, 6), {"rate": 0.0})),
        ("rate",),
    ),
    LayerRule(
        "BatchNormalization",
        "Normalises with batch statistics while training, moving averages at inference.",
        (
            _AXIS,
            p_float("momentum", "Momentum of the moving averages.", 0.99, minimum=0, maximum=1),
            p_float("epsilon", "Added to the variance for stability.", 1e-3, minimum=0),
            p_bool("center", "Learn an offset (beta).", True),
            p_bool("scale", "Learn a scale (gamma).", True),
            *_NORM_WEIGHTS,
            p_initializer("moving_mean_initializer", "zeros"),
            p_initializer("moving_variance_initializer", "ones"),
        ),
        _batch_norm,
        (
            ((8,), {}),
            ((4, 4, 3), {"center": False}),
            ((5, 6), {"axis": 1, "scale": False}),
            ((3, 3, 4), {"gamma_regularizer": {"name": "l2", "l2": 1e-4}, "beta_constraint": "non_neg"}),
        ),
        (),
        dtypes="number",
    ),
    LayerRule(
        "LayerNormalization",
        "Normalises each example over its last axis.",
        (
            _AXIS,
            p_float("epsilon", "Added to the variance for stability.", 1e-3, minimum=0),
            p_bool("center", "Learn an offset (beta).", True),
            p_bool("scale", "Learn a scale (gamma).", True),
            *_NORM_WEIGHTS,
        ),
        _layer_norm,
        (((8,), {}), ((4, 6), {"center": False}), ((3, 3, 5), {"epsilon": 1e-5})),
        (),
        dtypes="number",
    ),
    LayerRule(
        "Activation",
        "Applies an activation function by name.",
        (Param("activation", p_activation().schema, "The activation, by name."),),
        _identity((2, 8), "Activation"),
        (
            ((8,), {"activation": "relu"}),
            ((3, 4), {"activation": "softmax"}),
            ((2, 2, 2), {"activation": "tanh"}),
        ),
        ("activation",),
    ),
    LayerRule(
        "ReLU",
        "Rectified linear unit with optional cap, slope and threshold.",
        (
            p_float("max_value", "Upper cap of the output (none when absent).", None, minimum=0),
            p_float("negative_slope", "Slope below the threshold.", 0.0, minimum=0),
            p_float("threshold", "Values below it are damped.", 0.0, minimum=0),
        ),
        _identity((2, 8), "ReLU"),
        (
            ((8,), {}),
            ((3, 4), {"max_value": 6.0}),
            ((2, 2, 2), {"negative_slope": 0.1}),
            ((5,), {"max_value": 1.0, "negative_slope": 0.2, "threshold": 0.5}),
        ),
        ("max_value",),
    ),
    LayerRule(
        "Softmax",
        "Softmax over an axis.",
        (p_int("axis", "The axis to normalise.", -1, minimum=-8, maximum=8),),
        _softmax,
        (((8,), {}), ((3, 4), {"axis": 1}), ((2, 2, 2), {})),
        ("axis",),
    ),
    *_SCALE_LAYERS,
)
