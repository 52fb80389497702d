"""A diff as text lines (for terminals and CI logs) and as a stable JSON object.

Text: one line per difference, ``git diff --stat`` meets a changelog. The
interface first (settings, inputs, outputs, training, the parameter totals),
then one line per node that differs, each with a marker: ``+`` added, ``-``
removed, ``~`` changed, ``→`` renamed, ``→~`` renamed and changed; a block
instance renamed is one line (its nodes that also changed follow, ``→~``).
Each line comes with its role so the CLI can colour it on a terminal.
Every string from a spec is made terminal-safe (``errors.printable``).

JSON: ``to_json`` (``schema_version`` 1), documented in docs/render.md.
"""

from __future__ import annotations

from typing import Any

from ..errors import printable
from .compare import Diff, Item, NodeDiff, fmt
from .summary import NodeSummary, SpecSummary

SCHEMA_VERSION = 1
MARKS = {"added": "+", "removed": "-", "changed": "~", "renamed": "→", "reordered": "~", "same": " "}
_ID_WIDTH = 24
Line = tuple[str, str]  # (role: added, removed, changed, renamed, header, plain; text)


def _side(label: str, s: SpecSummary) -> str:
    errors = f", {len(s.problems)} error" + ("s" if len(s.problems) != 1 else "") if s.problems else ""
    return f"{label} {printable(s.file)} ({printable(s.name)}: {len(s.nodes)} nodes, {s.params:,} params{errors})"


def counts_line(diff: Diff) -> str:
    """``2 added, 1 removed, 3 changed, 1 renamed, 120 same``, and the interface items."""
    c = diff.counts
    text = ", ".join(f"{c[k]} {k}" for k in ("added", "removed", "changed", "renamed", "same"))
    n = len(diff.interface)
    return text + (f"; {n} interface change" + ("s" if n != 1 else "") if n else "")


def _what(node: NodeSummary) -> str:
    params = f" · {node.params:,} params" if node.params else ""
    shape = f" {fmt(node.shape)}" if node.shape is not None else ""
    return f"{printable(node.op)}{shape}{params}"


def item_text(item: Item) -> str:
    """One interface item: ``output y: loss mse → mae``, ``input mask (added): shape [4]``."""
    head = f"{item.what} {printable(item.name)}" if item.name and item.what in ("input", "output") else ""
    changes = "; ".join(c.text for c in item.changes)
    if item.status == "renamed":
        return f"{head} → {printable(str(item.changes[0].new))}"
    if item.status in ("added", "removed"):
        body = ", ".join(f"{printable(c.key)} {fmt(c.new if item.status == 'added' else c.old)}" for c in item.changes)
        return f"{head} ({item.status})" + (f": {body}" if body else "")
    if item.what in ("inputs", "outputs"):
        return f"{item.what} reordered: {changes.removeprefix('order ')}"
    return f"{head}: {changes}" if head else changes


def node_text(n: NodeDiff) -> str:
    """One node: ``fc1  Dense: config.units 64 → 128; params 4,160 → 8,320 (+4,160)``."""
    name = printable(n.id) if n.status != "renamed" else f"{printable(str(n.old_id))} → {printable(n.id)}"
    head = name.ljust(_ID_WIDTH)
    if n.status in ("added", "removed"):
        return f"{head} {_what(n.node)}"
    changes = "; ".join(c.text for c in n.changes)
    return f"{head} {printable(n.node.op)}" + (f": {changes}" if changes else "")


def mark(n: NodeDiff) -> str:
    """A node's marker: ``+``, ``-``, ``~``, ``→``, or ``→~`` for a node renamed and changed."""
    return "→~" if n.status == "renamed" and n.changes else MARKS[n.status]


def _in_renamed_instance(n: NodeDiff, diff: Diff) -> bool:
    if n.status != "renamed" or n.changes or n.old_id is None:
        return False
    scopes = {(a, b) for a, b, _, _ in diff.instances}
    before = [i for i, _ in diff.old.nodes[n.old_id].scope]
    return any((a, b) in scopes for a, b in zip(before, [i for i, _ in n.node.scope], strict=False))


def text_lines(diff: Diff, stat: bool = False) -> list[Line]:
    """The report as (role, text) lines: the two files, the interface, the nodes, the counts.

    Args:
        diff: from ``compare``.
        stat: counts only (the two files, the totals, the counts line).
    """
    lines: list[Line] = [("header", _side("---", diff.old)), ("header", _side("+++", diff.new))]
    if not stat:
        if diff.interface:
            lines.append(("header", "interface"))
            lines += [(i.status, f"  {MARKS[i.status]} {item_text(i)}") for i in diff.interface]
        shown = [  # inputs are listed with the interface
            n for n in diff.nodes if n.status != "same" and n.node.kind != "input" and not _in_renamed_instance(n, diff)
        ]
        if shown or diff.instances:
            lines.append(("header", "nodes"))
        lines += [
            ("renamed", f"  → instance {printable(a)} → {printable(b)} ({printable(block)}, {k} nodes)")
            for a, b, block, k in diff.instances
        ]
        lines += [(n.status, f"  {mark(n)} {node_text(n)}") for n in shown]
    delta = diff.new.params - diff.old.params
    totals = f"params {diff.old.params:,} → {diff.new.params:,} ({delta:+,})"
    lines.append(("plain", "no differences" if diff.equal else f"{counts_line(diff)}; {totals}"))
    return lines


def _spec_json(s: SpecSummary) -> dict[str, Any]:
    return {
        "file": s.file,
        "name": s.name,
        "nodes": len(s.nodes),
        "params": {"total": s.params, "trainable": s.trainable, "non_trainable": s.non_trainable},
        "errors": [p.to_json(s.file) for p in s.problems],
    }


def _node_json(n: NodeDiff) -> dict[str, Any]:
    return {
        "status": n.status,
        "id": n.id,
        "old_id": n.old_id,
        "kind": n.node.kind,
        "op": n.node.op,
        "shape": None if n.node.shape is None else list(n.node.shape),
        "params": n.node.params,
        "changes": [c.to_json() for c in n.changes],
    }


def to_json(diff: Diff) -> dict[str, Any]:
    """The stable JSON report (``schema_version`` 1; fields in docs/render.md)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "equal": diff.equal,
        "ok": not diff.old.problems and not diff.new.problems,
        "old": _spec_json(diff.old),
        "new": _spec_json(diff.new),
        "summary": {**diff.counts, "interface": len(diff.interface)},
        "params": {"old": diff.old.params, "new": diff.new.params, "delta": diff.new.params - diff.old.params},
        "interface": [
            {"what": i.what, "name": i.name, "status": i.status, "changes": [c.to_json() for c in i.changes]}
            for i in diff.interface
        ],
        "nodes": [_node_json(n) for n in diff.nodes if n.status != "same"],
        "renamed_instances": [{"old": a, "new": b, "block": blk, "nodes": k} for a, b, blk, k in diff.instances],
    }
