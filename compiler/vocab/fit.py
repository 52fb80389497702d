"""Which losses fit which outputs: static checks of an output's loss against what produces it.

``output_problems`` finds the combinations of loss, output width and final
activation that make a model train wrong. Each check is one small handler
over a ``_Case`` (what the output is and what its loss reads); the table
order is the order problems are reported in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import Problem
from .layers import LAYERS
from .loss_table import BINARY, CATEGORICAL, CROSS_ENTROPIES, LOSS_RULES, SPARSE
from .objective import objective_args, objective_name
from .rule import fmt_shape

_PROBABILITY = {"softmax": "softmax", "sigmoid": "sigmoid", "hard_sigmoid": "sigmoid"}
# Layers without an ``activation`` key whose output is never probabilities.
_UNBOUNDED = ("BatchNormalization", "LayerNormalization", "Normalization", "MultiHeadAttention", "Embedding")
#: Layers whose output ends in a known activation without an ``activation`` key.
_FIXED_ACTIVATION = {"Softmax": "softmax", "ReLU": "relu", **dict.fromkeys(_UNBOUNDED, "linear")}


def final_activation(layer: str | None, config: Mapping[str, Any] | None) -> str | None:
    """The activation a layer's output ends in, when it is known statically.

    Args:
        layer: the layer type (a key of ``LAYERS``), or None for a merge,
            a sub-model or an input.
        config: the layer's config as written (defaults are filled in here).

    Returns:
        An activation name (``"linear"`` for none); ``"softmax"`` for a
        ``Softmax`` layer and the named activation for an ``Activation``
        layer; None when the output could be anything (a merge, a
        sub-model, a Dropout or Reshape that may follow a softmax...).
    """
    if layer is None or layer not in LAYERS:
        return None
    if layer in _FIXED_ACTIVATION:
        return _FIXED_ACTIVATION[layer]
    param = LAYERS[layer].param_index.get("activation")
    if param is None:
        return None
    value = (config or {}).get("activation", None if param.required else param.default)
    if value is None and param.required:
        return None
    return str(value) if value is not None else "linear"


def _width(shape: Sequence[int | None], axis: int) -> tuple[int | None, bool]:
    """(size of ``axis``, whether it names a non-batch axis of ``shape``)."""
    rank = len(shape)
    index = axis + rank if axis < 0 else axis
    if not 1 <= index < rank:
        return None, False
    return shape[index], True


@dataclass(frozen=True)
class _Case:
    """One output and its loss, as every handler reads them."""

    at: tuple[str | int, ...]  # the loss's path
    loss: str
    args: Mapping[str, Any]
    shape: Sequence[int | None]
    node: str  # the node the output reads
    shown: str  # "shape (None, 3) from `x`", for messages
    act: str | None  # the final activation, None when unknown
    width: int | None  # the size of the class axis
    softmax_width: int | None  # the size of the axis a Softmax layer normalises


def _case(name: str, output: Mapping[str, Any], shape: Sequence[int | None], layer: Any, config: Any) -> _Case | None:
    value = output.get("loss")
    if value is None or not isinstance(value, (str, Mapping)):
        return None
    loss, args = objective_name(value), objective_args(value)
    source = str(output.get("from", name))
    node, _, port = source.partition(".")
    # Output N > 0 of a recurrent layer is a state, not its activation's output.
    act = None if port.isdigit() and port != "0" else final_activation(layer, config)
    axis = args.get("axis", -1)
    takes_axis = loss in LOSS_RULES and "axis" in LOSS_RULES[loss].param_index and isinstance(axis, int)
    width = _width(shape, axis)[0] if takes_axis else shape[-1] if shape else None
    # A Softmax layer may normalise another axis than the last.
    softmax_axis = (config or {}).get("axis", -1) if layer == "Softmax" else -1
    softmax_width = _width(shape, softmax_axis)[0] if isinstance(softmax_axis, int) else None
    shown = f"shape {fmt_shape(shape)} from `{source}`"
    return _Case(("outputs", name, "loss"), loss, args, shape, node, shown, act, width, softmax_width)


def _bad_axis(c: _Case) -> Problem | None:
    axis = c.args.get("axis", -1)
    if c.loss not in LOSS_RULES or "axis" not in LOSS_RULES[c.loss].param_index or not isinstance(axis, int):
        return None
    if _width(c.shape, axis)[1]:
        return None
    return Problem(
        (*c.at, "axis"),
        f"the loss's `axis` must name an axis of the output other than the batch axis. "
        f"Received: axis {axis} on {c.shown}",
        "use -1 (the last axis)" + (f" or 1 to {len(c.shape) - 1}" if len(c.shape) > 2 else ""),
        "loss",
    )


def _softmax_over_one_unit(c: _Case) -> Problem | None:
    if c.act != "softmax" or c.softmax_width != 1:
        return None
    # An error under a cross-entropy (the classic Dense(1, softmax) classifier); under
    # another loss the output may be meant as a constant, so a warning.
    return Problem(
        c.at,
        f"a softmax over one unit is always 1, so `{c.node}` cannot learn. Received: {c.shown}, activation softmax",
        "use a sigmoid for one yes/no unit, or one unit per class with softmax",
        "loss",
        "error" if c.loss in CROSS_ENTROPIES else "warning",
    )


def _classes_on_one_unit(c: _Case) -> Problem | None:
    if c.loss not in SPARSE + CATEGORICAL or c.width != 1:
        return None
    return Problem(
        c.at,
        f"{c.loss} needs one output unit per class (on one unit it is constant). Received: {c.shown}",
        f"give `{c.node}` one unit per class and a softmax, "
        "or use binary_crossentropy with one sigmoid unit for two classes",
        "loss",
    )


def _binary_on_softmax(c: _Case) -> Problem | None:
    if c.loss not in BINARY or c.act != "softmax" or c.width is None or c.width <= 1:
        return None
    return Problem(
        c.at,
        f"{c.loss} scores each unit as its own yes/no probability, but a softmax makes the units compete. "
        f"Received: {c.shown}, activation softmax",
        "for one class per example use categorical_crossentropy (one-hot labels) or "
        "sparse_categorical_crossentropy (class ids); for several labels per example, a sigmoid activation",
        "loss",
    )


def _probabilities_or_logits(c: _Case) -> Problem | None:
    if c.loss not in CROSS_ENTROPIES or c.act is None:
        return None
    logits = c.args.get("from_logits") is True
    if not logits and c.act not in _PROBABILITY:
        want = "sigmoid" if c.loss in BINARY else "softmax"
        return Problem(
            c.at,
            f"{c.loss} reads the output as probabilities (from a {want}) unless `from_logits` is true. "
            f"Received: `{c.node}` ends in activation {c.act}, {c.shown}",
            f'write the loss as {{"name": "{c.loss}", "from_logits": true}}, or end `{c.node}` in a {want} activation',
            "loss",
            "warning",
        )
    if logits and c.act in _PROBABILITY:
        return Problem(
            (*c.at, "from_logits"),
            f"`from_logits: true` makes the loss apply a {_PROBABILITY[c.act]} itself, so an output that "
            f"already ends in one has its probabilities treated as logits. Received: `{c.node}` ends in "
            f"activation {c.act}",
            f"drop `from_logits`, or drop the {c.act} activation so `{c.node}` outputs logits",
            "loss",
            "warning",
        )
    return None


Handler = Callable[[_Case], Problem | None]
#: Checks that each stand alone, in report order.
_ALWAYS: tuple[Handler, ...] = (_bad_axis,)
#: Shape-and-activation checks: the first that finds something is the one reported.
_FIRST_OF: tuple[Handler, ...] = (_softmax_over_one_unit, _classes_on_one_unit, _binary_on_softmax)
#: Warnings, reported only when the output has no error.
_WARNINGS: tuple[Handler, ...] = (_probabilities_or_logits,)


def output_problems(
    name: str,
    output: Mapping[str, Any],
    shape: Sequence[int | None],
    layer: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """Static checks of an output's loss against what produces it: what would train wrong.

    Errors (the loss cannot train this output): a sparse or categorical
    cross-entropy on an output of width 1; a binary cross-entropy on a softmax
    over several units; a cross-entropy on a softmax over one unit; an
    ``axis`` that is not an axis of the output. Warnings (probably wrong,
    ``--strict`` refuses them): another loss on a softmax over one unit; a
    cross-entropy whose output ends in neither softmax nor sigmoid and has no
    ``"from_logits": true``; ``"from_logits": true`` on a softmax or sigmoid
    output. Where an output has an error, its warnings are left out.

    Args:
        name: the output's name (a key of the spec's ``outputs``).
        output: its spec object (``from``, ``loss``...).
        shape: the static shape of the tensor it reads, batch axis first.
        layer: the type of the layer that produces it (a ``layer`` node's
            ``layer``, a shared call's shared layer's), None when unknown (a
            merge, a block's or sub-model's output, an input).
        config: that layer's config as written.

    Returns:
        Problems with code ``loss``; paths ``("outputs", name, "loss")`` or,
        for one key of an object loss, ``("outputs", name, "loss", key)``.
    """
    case = _case(name, output, shape, layer, config)
    if case is None:
        return []
    found = [p for handler in _ALWAYS if (p := handler(case)) is not None]
    found += next(([p] for handler in _FIRST_OF if (p := handler(case)) is not None), [])
    errors = [p for p in found if p.severity == "error"]
    if errors:
        return errors
    return found + [p for handler in _WARNINGS if (p := handler(case)) is not None]
