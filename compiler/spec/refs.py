"""References between nodes: how a node's ``inputs`` names what feeds it, and each node's kind.

A node's ``inputs`` is one id, a list of ids (merges), or an object of named
inputs; an id may name an output port (``enc.1``: output 1 of ``enc``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PathPart

Slot = tuple[str | int, ...]


@dataclass(frozen=True)
class Ref:
    """One reference from a node to the node (or input) that feeds it.

    Attributes:
        slot: where it stands in ``inputs``: () for a single id, (i,) in a
            list, (name,) or (name, i) in an object of named inputs.
        source: the referenced id.
        path: the JSON path of the reference.
    """

    slot: Slot
    source: str
    path: tuple[PathPart, ...]


def iter_refs(inputs: Any, base: tuple[PathPart, ...]) -> Iterator[Ref]:
    """Every reference in a node's ``inputs`` value, in order."""
    if isinstance(inputs, str):
        yield Ref((), inputs, base)
    elif isinstance(inputs, list):
        for i, ref in enumerate(inputs):
            yield Ref((i,), ref, (*base, i))
    elif isinstance(inputs, dict):
        for name, value in inputs.items():
            if isinstance(value, str):
                yield Ref((name,), value, (*base, name))
            else:
                for i, ref in enumerate(value):
                    yield Ref((name, i), ref, (*base, name, i))


def flat_refs(inputs: Any) -> list[str]:
    """Every id in an ``inputs`` value of any form, in order; anything else in it is skipped.

    For placeholders of nodes that failed the schema: their edges still count.
    """
    if isinstance(inputs, str):
        return [inputs]
    if isinstance(inputs, list):
        return [r for r in inputs if isinstance(r, str)]
    if isinstance(inputs, dict):
        return [r for v in inputs.values() for r in flat_refs(v)]
    return []


def ref_node(source: str) -> str:
    """The node a reference points at: ``enc`` for ``enc.1`` (output 1 of ``enc``)."""
    return source.partition(".")[0]


#: The kind of a placeholder for a node (or input, or block instance) whose own
#: definition failed the schema: kept so references to it resolve and other
#: nodes are still checked, skipped by the shapes stage (see check.py).
BROKEN = "broken"


def node_kind(node: Mapping[str, Any]) -> str:
    """``layer``, ``merge``, ``shared``, ``model``, ``broken`` (or ``block``, before expansion) for a spec node."""
    for kind in (BROKEN, "layer", "merge", "shared", "model", "block"):
        if kind in node:
            return kind
    raise ValueError("schema-valid nodes have a kind")
