"""The one binder of a node's references to what its rule is given.

The shapes stage binds shapes, the build stage binds tensors; both go
through these two functions, so a spec's inputs mean the same in ``check``
and in the built model.

- A layer takes one input, or named inputs (``query``, ``value``, ``key``):
  ``{slot: value}``; one unnamed reference fills every required slot (self-attention).
- A merge takes its inputs as a list, in the spec's order; a merge with named
  inputs (``gated``: ``experts``, ``gate``) takes ``{slot: [values]}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..spec.graph import Ref

V = TypeVar("V")


def layer_inputs(rule: Any, refs: Sequence[Ref], value_of: Callable[[Ref], V]) -> V | dict[str, V]:
    """What a layer is called on: one value, or ``{slot: value}`` for a layer with named inputs."""
    if not rule.slots:
        return value_of(refs[0])
    if len(refs) == 1 and refs[0].slot == ():
        value = value_of(refs[0])
        return dict.fromkeys(rule.required_slots, value)
    return {str(r.slot[0]): value_of(r) for r in refs}


def merge_inputs(rule: Any, refs: Sequence[Ref], value_of: Callable[[Ref], V]) -> list[V] | dict[str, list[V]]:
    """What a merge is given: its inputs in order, or ``{slot: [values]}`` for a merge with named inputs."""
    if rule.slots is None:
        return [value_of(r) for r in refs]
    named: dict[str, list[V]] = {name: [] for name in rule.slots}
    for ref in refs:
        named[str(ref.slot[0])].append(value_of(ref))
    return named


def port_index(source: str) -> tuple[str, int | None]:
    """A reference split into its node and output index: ``enc.2`` -> (``enc``, 2), ``enc`` -> (``enc``, 0).

    The rule, the same for every node and input: ``id`` and ``id.0`` are its
    first (for most nodes its only) output, ``id.N`` its output N; the index
    is written in plain decimal (``enc.1``, not ``enc.01``). The index is None
    when what follows the ``.`` is not such a number. The shapes stage, the
    training checks and the build stage all resolve references with this.
    """
    node, dot, port = source.partition(".")
    if not dot:
        return node, 0
    if port.isascii() and port.isdigit() and (port == "0" or not port.startswith("0")):
        return node, int(port)
    return node, None
