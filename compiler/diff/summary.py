"""A compact, picklable record of one checked spec: what ``fusec diff`` compares.

``summarize`` reads a ``Checked`` (strict or lenient) once and keeps, per
node of the expanded graph, what a reviewer compares: its kind and op, its
JSON as written (without ``inputs``), its references, its output shape and
parameters, the block instances around it. The record holds only plain data,
so a forked worker can send it back through a pipe (``diff/load.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import PathPart, Problem
from ..spec.graph import BROKEN, ref_node
from ..static.check import Checked

Shape = tuple[int | None, ...]
#: Top-level keys compared as the model's "spec" settings (sections have their own comparisons).
_SECTIONS = frozenset({"$schema", "inputs", "outputs", "nodes", "blocks", "shared", "training"})


@dataclass(frozen=True)
class NodeSummary:
    """One node (or graph input) of the expanded graph.

    Attributes:
        id: its id in the expanded graph (``tower_a__conv``).
        kind: input, layer, merge, shared, model or broken.
        op: the layer type, merge mode, shared layer's type, sub-model, or (inputs) the dtype.
        body: its JSON as written, without ``inputs`` (a shared call also holds the
            shared layer's definition under ``shared_layer``).
        refs: its references in order: (slot, source), slot ``""``, ``"0"``, ``"query"``, ``"experts[1]"``.
        inputs: its ``inputs`` value as written.
        shape: its output shape (None: unknown, as in a broken spec).
        trainable: trainable parameters it adds.
        non_trainable: non-trainable parameters it adds.
        scope: the (instance id, block name) chain around it, outermost first.
        shared: the shared layer's id for a shared call.
        call: 1-based call index of a shared call (0 otherwise).
        path: the JSON path where it is written (``("blocks", "tower", "nodes", "conv")``).
        line: the line its entry starts on (only when summarized with ``lines=True``).
    """

    id: str
    kind: str
    op: str
    body: dict[str, Any]
    refs: tuple[tuple[str, str], ...]
    inputs: Any
    shape: Shape | None
    trainable: int = 0
    non_trainable: int = 0
    scope: tuple[tuple[str, str], ...] = ()
    shared: str | None = None
    call: int = 0
    path: tuple[PathPart, ...] = ()
    line: int | None = None

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def signature(self) -> str:
        """What two nodes must share to be one node renamed: kind, op, body and shape."""
        shape = None if self.shape is None else list(self.shape)
        return json.dumps([self.kind, self.op, self.body, shape], sort_keys=True, default=str)


@dataclass(frozen=True)
class SpecSummary:
    """One spec, as ``fusec diff`` compares it.

    Attributes:
        file: the spec's path as given.
        name: the model's name.
        nodes: every node and graph input, in the checker's order.
        inputs: the ``inputs`` section as written, in order.
        outputs: the ``outputs`` section as written, in order.
        output_shapes: each output's shape (None: unknown).
        sources: each output's source reference (``from``).
        training: the ``training`` section as written.
        settings: the other top-level keys (``name``, ``doc``, ``seed``, ``weights``...).
        trainable: total trainable parameters.
        non_trainable: total non-trainable parameters.
        problems: the errors a lenient check found (empty for a clean spec).
        warnings: the check's warnings.
        consumers: each node's consumers (``@name`` for an output), built from the references.
        shared_blocks: the blocks whose instances share one set of weights.
    """

    file: str
    name: str
    nodes: dict[str, NodeSummary]
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    output_shapes: dict[str, Shape | None]
    sources: dict[str, str]
    training: dict[str, Any]
    settings: dict[str, Any]
    trainable: int
    non_trainable: int
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    consumers: dict[str, list[str]] = field(default_factory=dict)
    shared_blocks: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.consumers:
            return
        for nid, node in self.nodes.items():
            for _, source in node.refs:
                self.consumers.setdefault(ref_node(source), []).append(nid)
        for name, source in self.sources.items():
            self.consumers.setdefault(ref_node(source), []).append(f"@{name}")

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


def slot_text(slot: tuple[str | int, ...]) -> str:
    """A reference's place in ``inputs``: ``""``, ``"1"``, ``"query"``, ``"experts[1]"``."""
    if not slot:
        return ""
    if len(slot) == 1:
        return str(slot[0])
    return f"{slot[0]}[{slot[1]}]"


def _op(kind: str, spec: Mapping[str, Any], info: Any, shared: Mapping[str, Any]) -> str:
    if info is not None and kind != "model":
        return str(info.op)
    if kind == "shared":
        return str((shared.get(str(spec.get("shared"))) or {}).get("layer", "?"))
    for key in ("layer", "merge", "model"):
        if isinstance(spec.get(key), str):
            return str(spec[key])
    return str(spec.get("dtype", "float32")) if kind == "input" else kind


def _body(checked: Checked, nid: str, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The node's JSON as written, without ``inputs`` (a broken node: the raw entry, when top-level)."""
    if kind == BROKEN:
        path = checked.graph.nodes[nid].get("path", ())
        raw: Any = checked.spec.doc
        for part in path:
            raw = raw.get(part) if isinstance(raw, dict) else None
        spec = raw if isinstance(raw, dict) else {}
    body = {k: v for k, v in spec.items() if k != "inputs"}
    if kind == "shared":
        body["shared_layer"] = checked.graph.graph["shared"].get(spec.get("shared"))
    return body


def _node(checked: Checked, nid: str, lines: Mapping[tuple[PathPart, ...], int]) -> NodeSummary:
    attrs = checked.graph.nodes[nid]
    kind, spec = str(attrs.get("kind", BROKEN)), attrs.get("spec") or {}
    info = checked.info.get(nid)
    return NodeSummary(
        id=nid,
        kind=kind,
        op=_op(kind, spec, info, checked.graph.graph["shared"]),
        body=_body(checked, nid, kind, spec),
        refs=tuple((slot_text(r.slot), r.source) for r in attrs.get("refs", ())),
        inputs=spec.get("inputs"),
        shape=tuple(info.shape) if info is not None else None,
        trainable=info.trainable if info is not None else 0,
        non_trainable=info.non_trainable if info is not None else 0,
        scope=tuple(checked.scopes.get(nid, ())),
        shared=info.shared if info is not None else spec.get("shared"),
        call=info.call if info is not None else 0,
        path=tuple(attrs.get("path", ())),
        line=lines.get(tuple(attrs.get("path", ()))),
    )


def _shape_of(checked: Checked, source: str) -> Shape | None:
    try:
        return tuple(checked.shapes.of(source))
    except (KeyError, IndexError):
        return None


def _section(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _lines(checked: Checked) -> dict[tuple[PathPart, ...], int]:
    """The line each node's entry starts on: one scan of the file, along those paths only."""
    return checked.spec.key_lines(tuple(checked.graph.nodes[n].get("path", ())) for n in checked.order)


def _shared_blocks(doc: Mapping[str, Any]) -> frozenset[str]:
    blocks = doc.get("blocks")
    if not isinstance(blocks, Mapping):
        return frozenset()
    return frozenset(str(k) for k, v in blocks.items() if isinstance(v, Mapping) and v.get("shared_weights") is True)


def summarize(checked: Checked, lines: bool = False) -> SpecSummary:
    """The record ``fusec diff`` compares, from a (possibly lenient) check result.

    Args:
        checked: the check's result.
        lines: also find the line each node is written on (a scan of the
            file; only the HTML page shows them).
    """
    doc = checked.spec.doc if isinstance(checked.spec.doc, Mapping) else {}  # the sections as written
    where = _lines(checked) if lines else {}
    nodes = {nid: _node(checked, nid, where) for nid in checked.order}
    sources = {name: ref.source for name, ref in checked.graph.graph["outputs"].items()}
    return SpecSummary(
        file=checked.spec.file,
        name=checked.name,
        nodes=nodes,
        inputs=_section(doc, "inputs"),
        outputs=_section(doc, "outputs"),
        output_shapes={name: _shape_of(checked, src) for name, src in sources.items()},
        sources=sources,
        training=_section(doc, "training"),
        settings={k: v for k, v in doc.items() if k not in _SECTIONS},
        trainable=checked.totals.trainable,
        non_trainable=checked.totals.non_trainable,
        problems=tuple(getattr(checked, "problems", ())),
        warnings=tuple(checked.warnings),
        shared_blocks=_shared_blocks(doc),
    )
