"""Keras's broadcasting rule for the element-wise merges, statically and exactly.

``add``, ``subtract``, ``multiply``, ``average``, ``maximum`` and ``minimum``
broadcast their inputs as Keras 3's merge layers do
(``keras/src/layers/merging/base_merge.py``): shapes aligned at their last
axis, the batch axis apart; a size of 1 stretches to any size; an unknown
size (None) gives None. ``broadcast`` gives the result or a ``BroadcastError``
naming both inputs, the axis (counted as Keras prints shapes, batch axis 0)
and why, for every axis that clashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import RuleError
from .rule import Dim, Shape, fmt_shape

Sources = Sequence[tuple[str, Shape]]  # (node id, shape) per input, in order


def received(sources: Sources) -> str:
    """``(None, 8) from `a`, (None, 8) from `b```: the inputs as a message shows them."""
    return ", ".join(f"{fmt_shape(s)} from `{src}`" for src, s in sources)


#: The element-wise merges: they broadcast their inputs by Keras's rule (``broadcast``).
BROADCASTING = frozenset({"add", "subtract", "multiply", "average", "maximum", "minimum"})

_RULE = "shapes aligned at their last axis, a size of 1 stretching to any size"


class BroadcastError(RuleError):
    """Inputs whose shapes do not broadcast to one.

    Attributes:
        fallback: a shape the nodes downstream can be checked with (at each
            clashing axis, the first input's size there), so one bad merge
            does not hide the next.
    """

    def __init__(self, message: str, hint: str, fallback: Shape) -> None:
        super().__init__(message, hint=hint)
        self.fallback = fallback


@dataclass(frozen=True)
class _Clash:
    """Two inputs whose sizes on one axis of the result differ, neither being 1 (or two batch sizes)."""

    axis: int  # the result's axis, batch axis 0, as Keras prints shapes
    first: tuple[str, int, Dim]  # (node id, its own axis, its size)
    second: tuple[str, int, Dim]

    def text(self) -> str:
        (a, ia, da), (b, ib, db) = self.first, self.second
        where_a = f"`{a}`" if ia == self.axis else f"`{a}`, its axis {ia}"
        where_b = f"`{b}`" if ib == self.axis else f"`{b}`, its axis {ib}"
        if self.axis == 0:
            return f"on axis 0 (the batch axis), {da} ({where_a}) and {db} ({where_b}) differ"
        return f"on axis {self.axis}, {da} ({where_a}) and {db} ({where_b}) differ and neither is 1"


def _aligned(sources: Sources, rank: int, axis: int) -> list[tuple[str, int, Dim]]:
    """(node id, its own axis, size) of each input that has the result's ``axis`` (batch axis 0)."""
    out = []
    for src, shape in sources:
        own = 0 if axis == 0 else axis - (rank - len(shape))
        if axis == 0 or own >= 1:
            out.append((src, own, shape[own]))
    return out


def _axis(sources: Sources, rank: int, axis: int) -> tuple[Dim, _Clash | None]:
    """The result's size on one axis, and the clash there if any.

    Keras (``Merge._compute_elemwise_op_output_shape``): a None anywhere
    gives None, else a 1 stretches to the other size. Keras folds the inputs
    left to right and lets a None hide a clash between the sizes around it
    ((7,), (None,), (5,) passes its check and fails when run); fusec refuses
    every pair of known sizes that differ, neither being 1. On the batch
    axis Keras keeps a known batch size (a None there does not win).
    """
    dims = _aligned(sources, rank, axis)
    ignore = (None,) if axis == 0 else (None, 1)
    known = [d for d in dims if d[2] not in ignore]
    clash = next((_Clash(axis, known[0], d) for d in known if d[2] != known[0][2]), None)
    if axis == 0:
        return (known[0][2] if known else None), clash
    if any(d is None for _, _, d in dims):
        return None, clash
    return (known[0][2] if known else 1), clash


def broadcast(sources: Sources) -> Shape:
    """The shape of an element-wise merge of ``sources``, by Keras's broadcasting rule.

    Shapes (batch axis first) are aligned at their last axis; an input of
    lower rank has leading axes of size 1 (Keras adds them after the batch
    axis). On each axis a 1 stretches to the other size and a None (unknown
    size) gives None, as in Keras, so later layers see what Keras will see.

    Raises:
        BroadcastError: two known sizes on one axis differ and neither is 1;
            the message names both inputs, the axis and why, for every axis.
    """
    rank = max(len(s) for _, s in sources)
    found = [_axis(sources, rank, axis) for axis in range(rank)]
    clashes = [c for _, c in found if c is not None]
    if not clashes:
        return tuple(d for d, _ in found)
    first = clashes[0]
    fallback = tuple(c.first[2] if c else d for d, c in found)
    raise BroadcastError(
        f"needs inputs of one shape, or of shapes that broadcast to one ({_RULE}). "
        f"Received: {received(sources)}: {'; '.join(c.text() for c in clashes)}",
        _broadcast_hint(first, any(len(s) != rank for _, s in sources)),
        fallback,
    )


def _broadcast_hint(clash: _Clash, ranks_differ: bool) -> str:
    (a, _, da), (b, _, db) = clash.first, clash.second
    if clash.axis == 0:
        return "give every input the same batch size, or leave it unknown"
    hint = (
        f"make `{b}` {da} or 1 on axis {clash.axis}, or `{a}` {db} or 1 there: "
        "the units or filters of the layer that makes it, or the input's shape"
    )
    if ranks_differ:
        hint += "; inputs of different ranks align at their last axis: Reshape the shorter one to place its axes"
    return hint


def broadcasts(shape: Shape, result: Shape) -> bool:
    """Whether an input of ``shape`` is stretched to make ``result``: fewer axes, or a 1 where the result is not."""
    if len(shape) < len(result):
        return True
    return any(d == 1 and r != 1 for d, r in zip(shape[1:], result[1:], strict=True))
