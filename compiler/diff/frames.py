"""The block-instance frames of the drawn diff: one dashed cluster per instance, nested as written.

Each node of the union graph sits in the frames of its block instances (NEW's
scope; a removed node's OLD scope, through the instances renamed, so it sits
in the same frame as its old neighbours). A frame is labelled
``instance · block``; a renamed instance ``old → new · block``, an instance
only in NEW ``(added)``, one only in OLD ``(removed)``. Frames get the DOM ids
``c<k>`` of the page contract, in order of first appearance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..render.style import FONT, esc
from .compare import Diff

#: Each frame status's (label colour, border colour).
COLOURS = {
    "same": ("#525252", "#969696"),
    "renamed": ("#2171b5", "#6baed6"),
    "added": ("#238b45", "#74c476"),
    "removed": ("#cb181d", "#fb6a4a"),
}


@dataclass
class Frame:
    """One block instance of the union graph.

    Attributes:
        dom: its DOM id (``c<k>``).
        key: the instance id in NEW's names (OLD's for an instance only in OLD).
        block: the block it instantiates.
        status: same, renamed, added or removed.
        label: plain text (``tower_a → left · tower``); escape before drawing.
        parent: the key of the frame around it (None at the top).
        nodes: the DOM ids of the nodes directly inside.
        inner: the keys of the frames directly inside, in order.
    """

    dom: str
    key: str
    block: str
    status: str
    label: str
    parent: str | None
    nodes: list[str] = field(default_factory=list)
    inner: list[str] = field(default_factory=list)


def _chain(diff: Diff, k: int) -> list[tuple[str, str, str | None]]:
    """Node ``k``'s instances as (key, block, old id), outermost first.

    The old id is None for an instance of NEW that was not renamed; a
    removed node's instance that NEW reuses for another one is keyed apart.
    """
    n = diff.nodes[k]
    if n.status != "removed":
        back = {b: a for a, b in diff.renamed_instances.items()}
        return [(i, block, back.get(i)) for i, block in n.node.scope]
    taken = set(diff.renamed_instances.values())
    out: list[tuple[str, str, str | None]] = []
    for i, block in n.node.scope:
        moved = diff.renamed_instances.get(i)
        out.append((moved if moved is not None else f"{i}\0old" if i in taken else i, block, i))
    return out


def frames(diff: Diff) -> dict[str, Frame]:
    """Every instance frame of the union graph, by key, in order of first appearance."""
    old_inst = {i for n in diff.old.nodes.values() for i, _ in n.scope}
    new_inst = {i for n in diff.new.nodes.values() for i, _ in n.scope}
    out: dict[str, Frame] = {}
    for k in range(len(diff.nodes)):
        parent: str | None = None
        for key, block, was in _chain(diff, k):
            frame = out.get(key)
            if frame is None:
                shown = key if was is None else was
                status = (
                    "removed" if key not in new_inst
                    else "renamed" if shown != key
                    else "added" if key not in old_inst
                    else "same"
                )  # fmt: skip
                name = f"{was} → {key}" if status == "renamed" else shown
                suffix = f" ({status})" if status in ("added", "removed") else ""
                frame = out[key] = Frame(f"c{len(out)}", key, block, status, f"{name} · {block}{suffix}", parent)
                if parent is not None:
                    out[parent].inner.append(key)
            parent = key
        if parent is not None:
            out[parent].nodes.append(f"n{k}")
    return out


def members(all_frames: dict[str, Frame], key: str) -> list[str]:
    """The DOM ids of every node inside a frame, nested frames included."""
    frame = all_frames[key]
    out = list(frame.nodes)
    for inner in frame.inner:
        out += members(all_frames, inner)
    return out


def frame_dot(all_frames: dict[str, Frame], key: str, statements: dict[str, str], indent: str = "  ") -> Iterator[str]:
    """A frame as a DOT cluster: its attributes, its nodes' statements, its inner frames."""
    f = all_frames[key]
    text, border = COLOURS[f.status]
    yield f"{indent}subgraph cluster_{f.dom} {{"
    yield (
        f'{indent}  id="{f.dom}"; style="dashed,rounded"; color="{border}"; fontname="{FONT}"; fontsize=10;'
        f' fontcolor="{text}"; labeljust="l"; margin=10; label=<{esc(f.label, 80)}>;'
    )
    for dom in f.nodes:
        yield f"{indent}  {statements.pop(dom)}"
    for inner in f.inner:
        yield from frame_dot(all_frames, inner, statements, indent + "  ")
    yield f"{indent}}}"
