"""Convolution, pooling, padding, cropping and upsampling layers (channels-last only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import RuleError
from ..rule import (
    MAX_DIM,
    REQUIRED,
    Dim,
    Infer,
    LayerRule,
    Out,
    Param,
    Shape,
    as_tuple,
    conv_length,
    deconv_length,
    fmt_shape,
    need_known,
    need_rank,
    p_activation,
    p_bool,
    p_constraint,
    p_enum,
    p_initializer,
    p_int,
    p_ints,
    p_regularizer,
    prod,
)


def _ints(c: Any, key: str, n: int, what: str) -> tuple[int, ...]:
    """A config value that is an int or ``n`` ints, as an ``n``-tuple."""
    value = as_tuple(c[key], n)
    if len(value) != n:
        raise RuleError(f"{what}'s {key} needs one int or a list of {n}. Received: {list(value)}", key)
    return value


def _window(
    shape: Shape, c: Any, what: str, key: str, transpose: bool = False, dilated_strides: bool = True
) -> tuple[Dim, ...]:
    """Spatial output dims (None where the input's is) of a window over a channels-last input ``shape``.

    ``c`` is the resolved config (``strides`` None: the window size, as in pooling), ``key`` the
    window's config key (``kernel_size``, ``pool_size``), ``what`` the layer for messages;
    ``transpose``: the output grows with the strides; ``dilated_strides``: strides > 1 may
    combine with dilation_rate > 1.
    """
    spatial = shape[1:-1]
    n = len(spatial)
    window = _ints(c, key, n, what)
    strides = window if c["strides"] is None else _ints(c, "strides", n, what)
    dilation = _ints(c, "dilation_rate", n, what) if "dilation_rate" in c else (1,) * n
    if not dilated_strides and max(strides) > 1 and max(dilation) > 1:
        raise RuleError(
            f"{what} cannot combine strides > 1 with dilation_rate > 1. "
            f"Received: strides={list(strides)}, dilation_rate={list(dilation)}",
            "dilation_rate",
        )
    length = deconv_length if transpose else conv_length
    out = tuple(length(d, k, s, c["padding"], r) for d, k, s, r in zip(spatial, window, strides, dilation, strict=True))
    if any(d is not None and d <= 0 for d in out):
        span = [(k - 1) * r + 1 for k, r in zip(window, dilation, strict=True)]
        dilated = f" (spanning {span} with dilation_rate {list(dilation)})" if max(dilation) > 1 else ""
        raise RuleError(
            f"{what}'s {key} {list(window)}{dilated} is larger than the input {fmt_shape(shape)} with padding 'valid'",
            key,
            f'use padding "same" or a smaller {key}',
        )
    return out


def _groups(cin: int, c: Any, what: str) -> int:
    """The channel groups of a grouped convolution: both channel counts must divide by them."""
    groups = c.get("groups", 1)
    for count, which in ((cin, "input channels"), (c["filters"], "filters")):
        if count % groups:
            raise RuleError(
                f"{what}'s groups {groups} does not divide its {which} ({count})",
                "groups",
                "each group convolves input channels / groups into filters / groups; pick a common divisor",
            )
    return groups


def _conv(what: str, rank: int, transpose: bool = False) -> Infer:
    def infer(shape: Shape, c: Any) -> Out:
        need_rank(shape, rank + 2, what)
        cin = need_known(shape[-1], f"{what}'s input channels", shape)
        groups = _groups(cin, c, what)
        spatial = _window(shape, c, what, "kernel_size", transpose, dilated_strides=False)
        filters = c["filters"]
        weights = prod(_ints(c, "kernel_size", rank, what)) * (cin // groups) * filters
        return Out((shape[0], *spatial, filters), weights + (filters if c["use_bias"] else 0))

    return infer


def _equal_strides(c: Any, what: str) -> None:
    """TensorFlow's depthwise kernel (CPU and GPU) takes one stride for rows and columns; Keras builds any."""
    s = _ints(c, "strides", 2, what)
    if s[0] != s[1]:
        why = "TensorFlow's depthwise convolution refuses others when the model runs"
        raise RuleError(f"{what} needs one stride for both spatial axes: {why}. Received: strides={list(s)}",
                        "strides", f"use strides {s[0]} or {s[1]} on both axes")  # fmt: skip


def _separable(shape: Shape, c: Any) -> Out:
    need_rank(shape, 4, "SeparableConv2D")
    _equal_strides(c, "SeparableConv2D")
    cin = need_known(shape[-1], "SeparableConv2D's input channels", shape)
    spatial = _window(shape, c, "SeparableConv2D", "kernel_size")
    mid, filters = cin * c["depth_multiplier"], c["filters"]
    depthwise = prod(_ints(c, "kernel_size", 2, "SeparableConv2D")) * mid
    bias = filters if c["use_bias"] else 0
    return Out((shape[0], *spatial, filters), depthwise + mid * filters + bias)


def _depthwise(shape: Shape, c: Any) -> Out:
    need_rank(shape, 4, "DepthwiseConv2D")
    _equal_strides(c, "DepthwiseConv2D")
    cin = need_known(shape[-1], "DepthwiseConv2D's input channels", shape)
    spatial = _window(shape, c, "DepthwiseConv2D", "kernel_size")
    out = cin * c["depth_multiplier"]
    depthwise = prod(_ints(c, "kernel_size", 2, "DepthwiseConv2D")) * out
    return Out((shape[0], *spatial, out), depthwise + (out if c["use_bias"] else 0))


def _pool(what: str, rank: int) -> Infer:
    def infer(shape: Shape, c: Any) -> Out:
        need_rank(shape, rank + 2, what)
        return Out((shape[0], *_window(shape, c, what, "pool_size"), shape[-1]))

    return infer


def _global_pool(what: str, rank: int) -> Infer:
    def infer(shape: Shape, c: Any) -> Out:
        need_rank(shape, rank + 2, what)
        return Out((shape[0], *((1,) * rank), shape[-1]) if c["keepdims"] else (shape[0], shape[-1]))

    return infer


def _pairs(value: int | Sequence[Any], key: str, what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``p``, ``[rows, cols]`` or ``[[top, bottom], [left, right]]`` as two (before, after) pairs."""
    if isinstance(value, int):
        return (value, value), (value, value)
    if len(value) == 2:
        rows, cols = value
        if isinstance(rows, int) and isinstance(cols, int):
            return (rows, rows), (cols, cols)
        if all(not isinstance(v, int) and len(v) == 2 for v in (rows, cols)):
            return (rows[0], rows[1]), (cols[0], cols[1])
    raise RuleError(
        f"{what}'s {key} needs an int, [rows, cols] or [[top, bottom], [left, right]]. Received: {value!r}",
        key,
    )


def _zero_padding(shape: Shape, c: Any) -> Out:
    need_rank(shape, 4, "ZeroPadding2D")
    rows, cols = _pairs(c["padding"], "padding", "ZeroPadding2D")
    dims = [None if d is None else d + sum(p) for d, p in ((shape[1], rows), (shape[2], cols))]
    return Out((shape[0], *dims, shape[3]))


def _cropping(shape: Shape, c: Any) -> Out:
    need_rank(shape, 4, "Cropping2D")
    rows, cols = _pairs(c["cropping"], "cropping", "Cropping2D")
    dims: list[Dim] = []
    for d, crop in ((shape[1], rows), (shape[2], cols)):
        if d is not None and sum(crop) >= d:
            raise RuleError(
                f"Cropping2D's cropping {[list(rows), list(cols)]} leaves no rows or no columns of the input "
                f"{fmt_shape(shape)}",
                "cropping",
            )
        dims.append(None if d is None else d - sum(crop))
    return Out((shape[0], *dims, shape[3]))


def _upsampling(shape: Shape, c: Any) -> Out:
    need_rank(shape, 4, "UpSampling2D")
    size = _ints(c, "size", 2, "UpSampling2D")
    dims = [None if d is None else d * s for d, s in zip(shape[1:3], size, strict=True)]
    return Out((shape[0], *dims, shape[3]))


def _conv_params(rank: int, causal: bool = False, dilated_strides: bool = True) -> tuple[Param, ...]:
    """kernel_size, strides, padding, dilation_rate, activation and use_bias of a convolution."""
    one: Any = 1 if rank == 1 else (1,) * rank
    return (
        p_ints("kernel_size", "Window size: one int or one per spatial axis.", rank),
        p_ints("strides", "Step of the window: one int or one per spatial axis.", rank, one),
        p_enum(
            "padding",
            '"valid" (no padding), "same" (output size = ceil(input / strides))'
            + (', or "causal" (left padding only)' if causal else "")
            + ".",
            ("valid", "same", "causal") if causal else ("valid", "same"),
            "valid",
        ),
        p_ints(
            "dilation_rate",
            "Spacing of the kernel taps" + ("." if dilated_strides else " (1 when strides > 1)."),
            rank,
            one,
        ),
        p_activation(),
        p_bool("use_bias", "Whether the layer adds a bias vector.", True),
    )


_FILTERS = p_int("filters", "Number of output channels.")

_KERNEL_WEIGHTS = (
    p_initializer("kernel_initializer", "glorot_uniform"),
    p_initializer("bias_initializer", "zeros"),
    p_regularizer("kernel_regularizer"),
    p_regularizer("bias_regularizer"),
    p_regularizer("activity_regularizer"),
    p_constraint("kernel_constraint"),
    p_constraint("bias_constraint"),
)

_GROUPS = p_int(
    "groups",
    "Channel groups: each convolves input channels / groups into filters / groups (both divisible).",
    1,
    maximum=1 << 16,
)

_DEPTHWISE_WEIGHTS = (
    p_initializer("depthwise_initializer", "glorot_uniform"),
    p_initializer("bias_initializer", "zeros"),
    p_regularizer("depthwise_regularizer"),
    p_regularizer("bias_regularizer"),
    p_regularizer("activity_regularizer"),
    p_constraint("depthwise_constraint"),
    p_constraint("bias_constraint"),
)

_DEPTH_MULTIPLIER = Param(
    "depth_multiplier",
    {"type": "integer", "minimum": 1, "maximum": 1 << 12},
    "Output channels per input channel of the depthwise step.",
    1,
)

_CONV_KEYS = ("filters", "kernel_size", "strides", "padding", "activation")


def _pool_params(rank: int, default: Any) -> tuple[Param, ...]:
    return (
        p_ints("pool_size", "Window size: one int or one per spatial axis.", rank, default),
        p_ints("strides", "Step of the window (default: pool_size).", rank, None),
        p_enum("padding", '"valid" (no padding) or "same" (ceil(input / strides)).', ("valid", "same"), "valid"),
    )


_KEEPDIMS = (p_bool("keepdims", "Keep the pooled spatial axes with length 1.", False),)

_PAIRS_ONE = {"type": "integer", "minimum": 0, "maximum": MAX_DIM}
_PAIRS_TWO = {"type": "array", "items": _PAIRS_ONE, "minItems": 2, "maxItems": 2}
_PAIRS = {"oneOf": [_PAIRS_ONE, _PAIRS_TWO, {"type": "array", "items": _PAIRS_TWO, "minItems": 2, "maxItems": 2}]}

_POOL_EXAMPLES_1D: Any = (
    ((8, 3), {"pool_size": 2}),
    ((9, 4), {"pool_size": 3, "strides": 2, "padding": "same"}),
    ((None, 2), {"pool_size": [2], "strides": 1}),
)
_POOL_EXAMPLES_2D: Any = (
    ((8, 8, 3), {"pool_size": 2}),
    ((7, 9, 2), {"pool_size": [3, 2], "strides": [2, 1], "padding": "same"}),
    ((None, 6, 4), {"pool_size": 3, "strides": 1}),
)
_GLOBAL_EXAMPLES_1D: Any = (((8, 3), {}), ((None, 5), {"keepdims": True}), ((1, 1), {}))
_GLOBAL_EXAMPLES_2D: Any = (((4, 4, 3), {}), ((None, None, 5), {"keepdims": True}), ((2, 7, 1), {}))


def _pooling(name: str, doc: str, rank: int, default: Any, examples: Any) -> LayerRule:
    return LayerRule(name, doc, _pool_params(rank, default), _pool(name, rank), examples, ("pool_size", "strides"))


def _global(name: str, doc: str, rank: int, examples: Any) -> LayerRule:
    # A mean is computed in float32 whatever the input; a max keeps (and mis-declares) an integer type.
    dtypes = "number" if "Average" in name else "float"
    return LayerRule(name, doc, _KEEPDIMS, _global_pool(name, rank), examples, dtypes=dtypes)


LAYERS = (
    LayerRule(
        "Conv1D",
        "1-D convolution over (batch, steps, channels).",
        (_FILTERS, *_conv_params(1, causal=True, dilated_strides=False), _GROUPS, *_KERNEL_WEIGHTS),
        _conv("Conv1D", 1),
        (
            ((10, 4), {"filters": 6, "kernel_size": 3, "groups": 2}),
            ((10, 3), {"filters": 4, "kernel_size": 3}),
            ((None, 8), {"filters": 2, "kernel_size": [5], "padding": "causal", "dilation_rate": 2}),
            ((9, 2), {"filters": 6, "kernel_size": 4, "strides": 2, "padding": "same", "use_bias": False}),
            ((7, 1), {"filters": 1, "kernel_size": 3, "strides": 3, "activation": "relu"}),
        ),
        _CONV_KEYS,
    ),
    LayerRule(
        "Conv2D",
        "2-D convolution over (batch, rows, cols, channels).",
        (_FILTERS, *_conv_params(2, dilated_strides=False), _GROUPS, *_KERNEL_WEIGHTS),
        _conv("Conv2D", 2),
        (
            ((6, 6, 8), {"filters": 4, "kernel_size": 3, "groups": 4, "padding": "same"}),
            (
                (5, 5, 6),
                {
                    "filters": 6,
                    "kernel_size": 1,
                    "groups": 3,
                    "kernel_initializer": {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"},
                    "kernel_constraint": {"name": "max_norm", "max_value": 3.0, "axis": [0, 1, 2]},
                    "kernel_regularizer": {"name": "l2", "l2": 1e-4},
                },
            ),
            ((8, 8, 3), {"filters": 16, "kernel_size": 3}),
            ((9, 7, 2), {"filters": 4, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same"}),
            ((10, 10, 1), {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "use_bias": False}),
            ((None, None, 3), {"filters": 8, "kernel_size": 5, "strides": 2, "activation": "relu"}),
        ),
        _CONV_KEYS,
    ),
    LayerRule(
        "Conv2DTranspose",
        "Transposed 2-D convolution (learned upsampling) over (batch, rows, cols, channels).",
        (_FILTERS, *_conv_params(2, dilated_strides=False), *_KERNEL_WEIGHTS),
        _conv("Conv2DTranspose", 2, transpose=True),
        (
            ((4, 4, 8), {"filters": 4, "kernel_size": 3}),
            ((5, 3, 2), {"filters": 3, "kernel_size": [3, 2], "strides": 2, "padding": "same"}),
            ((4, 4, 3), {"filters": 2, "kernel_size": 1, "strides": 3, "use_bias": False}),
            ((None, 6, 1), {"filters": 5, "kernel_size": 3, "dilation_rate": 2}),
        ),
        _CONV_KEYS,
    ),
    LayerRule(
        "SeparableConv2D",
        "Depthwise 2-D convolution per channel followed by a 1x1 pointwise convolution.",
        (
            _FILTERS,
            *_conv_params(2),
            _DEPTH_MULTIPLIER,
            p_initializer("depthwise_initializer", "glorot_uniform"),
            p_initializer("pointwise_initializer", "glorot_uniform"),
            p_initializer("bias_initializer", "zeros"),
            p_regularizer("depthwise_regularizer"),
            p_regularizer("pointwise_regularizer"),
            p_regularizer("bias_regularizer"),
            p_regularizer("activity_regularizer"),
            p_constraint("depthwise_constraint"),
            p_constraint("pointwise_constraint"),
            p_constraint("bias_constraint"),
        ),
        _separable,
        (
            ((8, 8, 3), {"filters": 16, "kernel_size": 3}),
            (
                (9, 9, 4),
                {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2},
            ),
            ((10, 10, 2), {"filters": 5, "kernel_size": [3, 1], "dilation_rate": 2, "use_bias": False}),
        ),
        (*_CONV_KEYS, "depth_multiplier"),
    ),
    LayerRule(
        "DepthwiseConv2D",
        "2-D convolution of each input channel on its own (depth_multiplier outputs per channel).",
        (*_conv_params(2), _DEPTH_MULTIPLIER, *_DEPTHWISE_WEIGHTS),
        _depthwise,
        (
            ((8, 8, 3), {"kernel_size": 3}),
            ((9, 7, 4), {"kernel_size": [3, 2], "strides": 2, "padding": "same", "depth_multiplier": 3}),
            ((10, 10, 2), {"kernel_size": 3, "dilation_rate": 2, "use_bias": False}),
        ),
        ("kernel_size", "strides", "padding", "depth_multiplier", "activation"),
    ),
    _pooling("MaxPooling1D", "Max over windows of the steps axis.", 1, 2, _POOL_EXAMPLES_1D),
    _pooling("MaxPooling2D", "Max over windows of the rows and cols axes.", 2, (2, 2), _POOL_EXAMPLES_2D),
    _pooling("AveragePooling1D", "Mean over windows of the steps axis.", 1, REQUIRED, _POOL_EXAMPLES_1D),
    _pooling("AveragePooling2D", "Mean over windows of the rows and cols axes.", 2, REQUIRED, _POOL_EXAMPLES_2D),
    _global("GlobalAveragePooling1D", "Mean over the steps axis.", 1, _GLOBAL_EXAMPLES_1D),
    _global("GlobalAveragePooling2D", "Mean over the rows and cols axes.", 2, _GLOBAL_EXAMPLES_2D),
    _global("GlobalMaxPooling1D", "Max over the steps axis.", 1, _GLOBAL_EXAMPLES_1D),
    _global("GlobalMaxPooling2D", "Max over the rows and cols axes.", 2, _GLOBAL_EXAMPLES_2D),
    LayerRule(
        "ZeroPadding2D",
        "Pads rows and cols with zeros.",
        (Param("padding", _PAIRS, "p, [rows, cols] or [[top, bottom], [left, right]] zeros to add.", (1, 1)),),
        _zero_padding,
        (
            ((4, 4, 3), {}),
            ((5, 6, 2), {"padding": 2}),
            ((None, 3, 1), {"padding": [[1, 0], [2, 3]]}),
            ((3, 3, 4), {"padding": [0, 1]}),
        ),
        ("padding",),
    ),
    LayerRule(
        "Cropping2D",
        "Crops rows and cols off the edges.",
        (
            Param(
                "cropping",
                _PAIRS,
                "p, [rows, cols] or [[top, bottom], [left, right]] rows and cols to remove.",
                ((0, 0), (0, 0)),
            ),
        ),
        _cropping,
        (
            ((8, 8, 3), {}),
            ((8, 6, 2), {"cropping": 2}),
            ((None, 5, 1), {"cropping": [[1, 0], [2, 2]]}),
            ((4, 7, 3), {"cropping": [1, 3]}),
        ),
        ("cropping",),
    ),
    LayerRule(
        "UpSampling2D",
        "Repeats rows and cols by size (nearest) or resizes bilinearly.",
        (
            p_ints("size", "Upsampling factor: one int or [rows, cols].", 2, (2, 2)),
            p_enum("interpolation", "How new pixels are filled.", ("nearest", "bilinear"), "nearest"),
        ),
        _upsampling,
        (
            ((4, 4, 3), {}),
            ((3, 5, 2), {"size": [2, 3], "interpolation": "bilinear"}),
            ((None, 2, 1), {"size": 4}),
        ),
        ("size", "interpolation"),
    ),
)
