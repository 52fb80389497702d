"""What changed between two specs: per node and in the model's interface.

``compare(old, new)`` reads two ``SpecSummary`` records (``summary.py``),
matches their nodes (``match.py``) and lists every difference as ``Change``
items: a key of a node's JSON (``config.units``), its inputs (rewired), its
output shape and parameters; the inputs, outputs, training section and other
top-level settings; the parameter totals. Deterministic: the same two specs
give the same ``Diff``, in the new spec's order (removed nodes after the node
they followed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import printable
from .match import match
from .summary import NodeSummary, SpecSummary

#: A key present on one side only: its value on the other.
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()
STATUSES = ("added", "removed", "changed", "renamed", "same")
_VALUE_LIMIT = 60


def fmt(value: Any) -> str:
    """A value as a reviewer reads it, on one terminal-safe line: ``64``, ``relu``, ``[3, 3]``, ``(None, 64)``."""
    if value is UNSET:
        return "(unset)"
    if isinstance(value, tuple):  # a shape
        inner = ", ".join("None" if d is None else str(d) for d in value)
        text = f"({inner},)" if len(value) == 1 else f"({inner})"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    return printable(text, _VALUE_LIMIT)


@dataclass(frozen=True)
class Change:
    """One difference: ``key`` went from ``old`` to ``new`` (UNSET where a side lacks it)."""

    key: str
    old: Any
    new: Any

    @property
    def text(self) -> str:
        if self.key == "params" and isinstance(self.old, int) and isinstance(self.new, int):
            return f"params {self.old:,} → {self.new:,} ({self.new - self.old:+,})"
        return f"{printable(self.key, _VALUE_LIMIT)} {fmt(self.old)} → {fmt(self.new)}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "text": self.text}
        for side in ("old", "new"):
            value = getattr(self, side)
            if value is not UNSET:
                out[side] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class NodeDiff:
    """One node of the union of both graphs, and what happened to it.

    Attributes:
        status: added, removed, changed, renamed or same.
        id: its id in NEW (in OLD for a removed node).
        old_id: its id in OLD (None for an added node).
        node: its summary in NEW (in OLD for a removed node).
        changes: what differs (a renamed node may also be rewired).
    """

    status: str
    id: str
    old_id: str | None
    node: NodeSummary
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class Item:
    """A difference in the model's interface: an input, an output, the training section, a setting, the totals.

    Attributes:
        what: input, output, outputs, inputs, training, setting or params.
        name: the input's or output's name ("" for the others).
        status: added, removed, changed, renamed or reordered.
        changes: the keys that differ.
    """

    what: str
    name: str
    status: str
    changes: tuple[Change, ...] = ()


@dataclass
class Diff:
    """Everything ``fusec diff`` reports about two specs."""

    old: SpecSummary
    new: SpecSummary
    mapping: dict[str, str]
    nodes: list[NodeDiff]
    interface: list[Item]
    instances: list[tuple[str, str, str, int]] = field(default_factory=list)  # renamed (old, new, block, nodes)
    renamed_instances: dict[str, str] = field(default_factory=dict)  # every old instance id -> new, nested too

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for n in self.nodes:
            out[n.status] += 1
        return out

    @property
    def equal(self) -> bool:
        """No difference at all (node, interface or setting)."""
        return not self.interface and all(n.status == "same" for n in self.nodes)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys (``config.units``); lists and scalars are leaves; ``{}`` adds none."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def key_changes(old: Any, new: Any, prefix: str = "") -> list[Change]:
    """Per dotted key, what differs between two JSON objects (old's key order, then new's new keys)."""
    a, b = flatten(old, prefix), flatten(new, prefix)
    return [Change(k, a.get(k, UNSET), b.get(k, UNSET)) for k in {**a, **b} if a.get(k, UNSET) != b.get(k, UNSET)]


def _mapped_refs(node: NodeSummary, mapping: Mapping[str, str]) -> list[tuple[str, str]]:
    """An old node's references in NEW's names (a source NEW lacks keeps its old name)."""
    out = []
    for slot, source in node.refs:
        head, dot, port = source.partition(".")
        out.append((slot, f"{mapping[head]}{dot}{port}" if head in mapping else source))
    return out


def refs_value(refs: Sequence[tuple[str, str]]) -> Any:
    """References as ``inputs`` is written: one name, a list, or an object of slots (``experts[1]`` keys)."""
    if len(refs) == 1 and refs[0][0] == "":
        return refs[0][1]
    if all(slot.isdigit() for slot, _ in refs):
        return [source for _, source in refs]
    return dict(refs)


def node_changes(a: NodeSummary, b: NodeSummary, mapping: Mapping[str, str]) -> tuple[Change, ...]:
    """What differs between one node's old and new versions.

    Inputs are compared through ``mapping``: a source renamed is the same
    input. When they differ, both sides are shown in NEW's names.
    """
    out = [Change("kind", a.kind, b.kind)] if a.kind != b.kind else []
    out += key_changes(a.body, b.body)
    before = _mapped_refs(a, mapping)
    if before != list(b.refs):
        out.append(Change("inputs", refs_value(before), refs_value(b.refs)))
    if a.shape != b.shape:
        out.append(Change("shape", UNSET if a.shape is None else a.shape, UNSET if b.shape is None else b.shape))
    if a.kind == b.kind == "shared":  # one layer's weights, counted on its first call: compared as the layer
        return tuple(out)
    if a.params != b.params:
        out.append(Change("params", a.params, b.params))
    elif a.trainable != b.trainable:
        out.append(Change("trainable params", a.trainable, b.trainable))
    return tuple(out)


def _node_diffs(old: SpecSummary, new: SpecSummary, mapping: Mapping[str, str]) -> list[NodeDiff]:
    """The union of both graphs: NEW's nodes in order, each removed node after the node it followed."""
    back = {n: o for o, n in mapping.items()}
    after: dict[str | None, list[str]] = {}
    anchor: str | None = None
    for oid in old.nodes:
        if oid in mapping:
            anchor = mapping[oid]
        else:
            after.setdefault(anchor, []).append(oid)
    out = [NodeDiff("removed", o, o, old.nodes[o]) for o in after.get(None, [])]
    for nid, node in new.nodes.items():
        was = back.get(nid)
        if was is None:
            out.append(NodeDiff("added", nid, None, node))
        else:
            changes = node_changes(old.nodes[was], node, mapping)
            status = "renamed" if was != nid else "changed" if changes else "same"
            out.append(NodeDiff(status, nid, was, node, changes))
        out += [NodeDiff("removed", o, o, old.nodes[o]) for o in after.get(nid, [])]
    return out


def _order_item(what: str, old: list[str], new: list[str]) -> Iterator[Item]:
    kept = [n for n in old if n in new]
    if kept != [n for n in new if n in old]:
        yield Item(what, "", "reordered", (Change("order", ", ".join(old), ", ".join(new)),))


def _inputs(old: SpecSummary, new: SpecSummary, mapping: Mapping[str, str]) -> Iterator[Item]:
    renamed = {o: mapping[o] for o in old.inputs if o in mapping and mapping[o] != o and mapping[o] in new.inputs}
    for name, body in old.inputs.items():
        if name in renamed:
            yield Item("input", name, "renamed", (Change("name", name, renamed[name]),))
        elif name not in new.inputs:
            yield Item("input", name, "removed", tuple(key_changes(body, {})))
    taken = set(renamed.values())
    for name, body in new.inputs.items():
        if name in old.inputs:
            changes = key_changes(old.inputs[name], body)
            if changes:
                yield Item("input", name, "changed", tuple(changes))
        elif name not in taken:
            yield Item("input", name, "added", tuple(key_changes({}, body)))
    yield from _order_item("inputs", [renamed.get(n, n) for n in old.inputs], list(new.inputs))


def _source(old: SpecSummary, name: str, mapping: Mapping[str, str]) -> str:
    head, dot, port = old.sources.get(name, "").partition(".")
    return f"{mapping.get(head, head)}{dot}{port}"


def _outputs(old: SpecSummary, new: SpecSummary, mapping: Mapping[str, str]) -> Iterator[Item]:
    for name, body in old.outputs.items():
        if name not in new.outputs:
            yield Item("output", name, "removed", tuple(key_changes(body, {})))
    for name, body in new.outputs.items():
        if name not in old.outputs:
            yield Item("output", name, "added", tuple(key_changes({}, body)))
            continue
        a, b = dict(old.outputs[name]) if isinstance(old.outputs[name], Mapping) else {}, body
        b = dict(b) if isinstance(b, Mapping) else {}
        changes = key_changes({k: v for k, v in a.items() if k != "from"}, {k: v for k, v in b.items() if k != "from"})
        if _source(old, name, mapping) != new.sources.get(name, ""):
            changes.insert(0, Change("from", a.get("from", UNSET), b.get("from", UNSET)))
        before, after = old.output_shapes.get(name), new.output_shapes.get(name)
        if before != after:
            changes.append(Change("shape", UNSET if before is None else before, UNSET if after is None else after))
        if changes:
            yield Item("output", name, "changed", tuple(changes))
    yield from _order_item("outputs", list(old.outputs), list(new.outputs))


def interface_items(old: SpecSummary, new: SpecSummary, mapping: Mapping[str, str]) -> list[Item]:
    """The model's contract first: settings, inputs, outputs, training, the parameter totals."""
    items = [Item("setting", c.key, "changed", (c,)) for c in key_changes(old.settings, new.settings)]
    items += _inputs(old, new, mapping)
    items += _outputs(old, new, mapping)
    items += [Item("training", c.key, "changed", (c,)) for c in key_changes(old.training, new.training, "training")]
    if (old.trainable, old.non_trainable) != (new.trainable, new.non_trainable):
        changes = [Change("params", old.params, new.params)]
        if old.trainable != new.trainable and old.params == new.params:
            changes.append(Change("trainable params", old.trainable, new.trainable))
        items.append(Item("params", "", "changed", tuple(changes)))
    return items


def _renamed_instances(inst: Mapping[str, str], old: SpecSummary, new: SpecSummary) -> list[tuple[str, str, str, int]]:
    """Block instances renamed (not those renamed only with the one around them): (old, new, block, nodes in NEW)."""
    block: dict[str, str] = {}
    parent: dict[str, str | None] = {}
    count: dict[str, int] = {}
    for node in old.nodes.values():
        outer: str | None = None
        for i, name in node.scope:
            block.setdefault(i, name)
            parent.setdefault(i, outer)
            outer = i
    for node in new.nodes.values():
        for i, _ in node.scope:
            count[i] = count.get(i, 0) + 1
    out = []
    for a, b in inst.items():
        up = parent.get(a)
        if up is not None and up in inst and a.startswith(up + "__") and b == inst[up] + a[len(up) :]:
            continue  # moved with its outer instance
        out.append((a, b, block.get(a, "?"), count.get(b, 0)))
    return out


def compare(old: SpecSummary, new: SpecSummary) -> Diff:
    """Every difference between two specs.

    Args:
        old: the spec before (``summarize(check_spec(path, lenient=True))``).
        new: the spec after.

    Returns:
        The ``Diff``: nodes of the union graph with their status and changes,
        the interface items, renamed block instances.

    Example:
        >>> compare(summarize(check_spec("a.json")), summarize(check_spec("a.json"))).equal  # doctest: +SKIP
        True
    """
    found = match(old, new)
    mapping = found.nodes
    nodes = _node_diffs(old, new, mapping)
    instances = _renamed_instances(found.instances, old, new)
    return Diff(old, new, mapping, nodes, interface_items(old, new, mapping), instances, dict(found.instances))
