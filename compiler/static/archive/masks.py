"""The padding masks Keras saves into a functional graph, recognized and set aside.

Keras 3 computes the mask of an ``Embedding(mask_zero=True)`` (``compute_mask``:
``NotEqual(tokens, 0)``) and of every layer after it (a merge's ``LogicalOr``;
a ``Concatenate``'s ``ExpandDims``, ``ZerosLike``, ``OnesLike``, ``Concatenate``
and ``Any``; an ``Attention``'s ``ConvertToTensor``) as op nodes of the graph
while the model is built, and saves their outputs as the ``mask`` keyword of
the later calls that take one (an RNN, a pooling). Those nodes change no shape
and hold no weight, and Keras computes the very same masks again from
``mask_zero`` whenever the same layers are wired the same way: fusec reads
them here, checks they only carry a mask, and drops them (and the ``mask``
keywords reading them) from the graph, which the rules then run and
``fusec import`` writes as a spec.

A mask op whose output is used as data, a ``NotEqual`` that is not an
Embedding's padding test, or a ``mask`` keyword read from anything but these
ops (a model input, a layer's output) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import show
from .graph import Call, Ctx, Layer, Ref, refs_in

#: The ops Keras writes for masks: module -> class -> the settings (besides ``name``) Keras saves, with their values.
MASK_OPS: dict[str, dict[str, dict[str, Any]]] = {
    "keras.src.ops.numpy": {
        "NotEqual": {}, "LogicalOr": {}, "LogicalAnd": {},
        "ExpandDims": {"axis": -1}, "Any": {"axis": -1, "keepdims": False}, "Concatenate": {"axis": -1},
        "ZerosLike": {"dtype": "bool"}, "OnesLike": {"dtype": "bool"},
    },
    "keras.src.ops.core": {"ConvertToTensor": {"dtype": None, "sparse": None, "ragged": None}},
}  # fmt: skip
#: Call keywords Keras fills with the masks of a layer's tensor arguments (``Layer.__call__``).
MASK_KWARGS = frozenset({"mask", "query_mask", "value_mask", "key_mask"})
_HINT = (
    "only the padding masks Keras computes itself (from an Embedding with `mask_zero`) may ride a sub-model's graph: "
    "re-save the model without hand-made masks"
)


def _one(args: list[Any]) -> bool:
    return len(args) == 1 and isinstance(args[0], Ref)


def _two(args: list[Any]) -> bool:
    return len(args) == 2 and all(isinstance(a, Ref) for a in args)


def _padding_test(args: list[Any]) -> bool:
    zero = args[1] if len(args) == 2 else None
    return isinstance(args[0], Ref) and isinstance(zero, int) and not isinstance(zero, bool) and zero == 0


def _joined(args: list[Any]) -> bool:
    return len(args) == 1 and isinstance(args[0], list) and bool(args[0]) and all(isinstance(a, Ref) for a in args[0])


#: The arguments Keras calls each mask op on.
_ARGS = {
    "NotEqual": _padding_test, "LogicalOr": _two, "LogicalAnd": _two, "Concatenate": _joined,
    "ExpandDims": _one, "Any": _one, "ZerosLike": _one, "OnesLike": _one, "ConvertToTensor": _one,
}  # fmt: skip


def is_mask_op(cls: str, d: dict[str, Any]) -> bool:
    """Whether a layer entry of config.json is one of the ops Keras writes for masks."""
    return cls in MASK_OPS.get(str(d.get("module")), {})


def read_mask_op(layer: Layer, d: dict[str, Any], cfg: Any, ctx: Ctx, depth: int) -> None:
    """A mask op: its settings must be the ones Keras writes; what it reads and feeds is checked with the graph."""
    settings = MASK_OPS[str(d.get("module"))][layer.cls]
    rest = {k: v for k, v in cfg.items() if k != "name"} if isinstance(cfg, dict) else cfg
    if not isinstance(rest, dict) or any(k not in settings or settings[k] != v for k, v in rest.items()):
        raise ctx.fail(f"{layer.what} has settings {show(rest)}, which Keras never writes for a mask", _HINT)
    layer.mask_op = layer.cls


def drop_masks(layers: dict[str, Layer], outputs: Iterable[Ref], ctx: Ctx) -> dict[str, Layer]:
    """The graph's layers without its mask ops, and its calls without the ``mask`` keywords they feed.

    Raises:
        RuleError: a mask op used as data (a layer's argument, a model
            output), called on other arguments than Keras's, or a mask
            keyword read from something other than a mask op.
    """
    masks = {name: layer for name, layer in layers.items() if layer.mask_op is not None}
    if not masks and not any(k in MASK_KWARGS for layer in layers.values() for c in layer.calls for k in c.kwargs):
        return layers
    for ref in outputs:
        if ref.layer in masks:
            raise ctx.fail(f"{masks[ref.layer].what} is a model output: a mask op used as data", _HINT)
    padded = _embedding_inputs(layers)
    for layer in layers.values():
        for call in layer.calls:
            if layer.mask_op is not None:
                _check_mask_call(call, masks, padded, ctx)
            else:
                _strip_masks(call, masks, ctx)
    return {name: layer for name, layer in layers.items() if layer.mask_op is None}


def _embedding_inputs(layers: dict[str, Layer]) -> set[Ref]:
    """The tensors an Embedding with ``mask_zero`` is called on: what Keras's padding test reads."""
    found: set[Ref] = set()
    for layer in layers.values():
        if layer.rule is not None and layer.rule.name == "Embedding" and layer.config.get("mask_zero") is True:
            found.update(c.args[0] for c in layer.calls if c.args and isinstance(c.args[0], Ref))
    return found


def _check_mask_call(call: Call, masks: dict[str, Layer], padded: set[Ref], ctx: Ctx) -> None:
    """A mask op's call: Keras's arguments; a ``NotEqual`` tests an Embedding's (``mask_zero``) input for 0."""
    layer = call.layer
    if call.kwargs or not _ARGS[layer.cls](call.args):
        raise ctx.fail(f"{layer.what} is called on arguments Keras never gives a mask op", _HINT)
    if layer.cls == "NotEqual" and call.args[0] not in padded:
        raise ctx.fail(f"{layer.what} tests a tensor that no Embedding with `mask_zero` reads: a hand-made mask", _HINT)
    if layer.cls == "NotEqual" and call.args[0].layer in masks:
        raise ctx.fail(f"{layer.what} tests a mask for 0, which Keras never does", _HINT)


def _strip_masks(call: Call, masks: dict[str, Layer], ctx: Ctx) -> None:
    """A layer's call: no mask op among its arguments; its mask keywords read only mask ops, and are dropped."""
    layer = call.layer
    for k, v in list(call.kwargs.items()):
        if k not in MASK_KWARGS:
            used = next((r for r in refs_in(v) if r.layer in masks), None)
            if used is not None:
                raise ctx.fail(f"{layer.what} takes {masks[used.layer].what} as its `{k}`: a mask used as data", _HINT)
            continue
        other = next((r for r in refs_in(v) if r.layer not in masks), None)
        if other is not None:
            raise ctx.fail(
                f"{layer.what} is called with a `{k}` read from `{other.layer[:64]}`, not a padding mask Keras "
                "computed (from an Embedding with `mask_zero`)",
                _HINT,
            )
        del call.kwargs[k]
    used = next((r for r in refs_in(call.args) if r.layer in masks), None)
    if used is not None:
        raise ctx.fail(f"{layer.what} is called on {masks[used.layer].what}: a mask used as data", _HINT)
