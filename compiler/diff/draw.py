"""The diff drawn: the union of both graphs, each node marked with what happened to it.

NEW's nodes plus OLD's removed nodes and their edges: added nodes green,
removed ones red and dashed, changed ones orange (their changes listed in the
node), renamed ones blue (``old → new``), the rest plain grey. Edges follow
the same colours: an input added in NEW is green, one only in OLD red and
dashed. DOT ids are the page's DOM ids (``n<k>`` nodes, ``o<k>`` outputs,
``e<k>`` edges); the SVG's ``<title>`` elements get the real (escaped) ids.
Every string from a spec reaches Graphviz only inside an escaped label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..render import run_dot
from ..render.style import FONT, Look, esc, fmt_dims, merge_look, small, table, wrap
from ..spec.graph import ref_node
from .compare import Diff, NodeDiff
from .frames import Frame, frame_dot, frames, members
from .report import counts_line, item_text

#: One look per status: each node's colours (and the legend's swatches, one per status drawn).
LOOKS: Mapping[str, Look] = {
    "added": Look("added", "box", "#e5f5e0", "rounded,filled,bold", "#238b45"),
    "removed": Look("removed", "box", "#fee0d2", "rounded,filled,dashed", "#cb181d"),
    "changed": Look("changed", "box", "#fdd49e", "rounded,filled,bold", "#d94801"),
    "renamed": Look("renamed (old → new)", "box", "#deebf7", "rounded,filled,bold", "#2171b5"),
    "same": Look("same", "box", "#ffffff", "rounded,filled", "#969696"),
}
EDGE_COLOURS = {"added": "#238b45", "removed": "#cb181d", "same": "#969696"}
MAX_CHANGES = 3  # change lines shown in a node (the rest: "+k more")
MAX_ITEMS = 8  # interface lines in the title
_TITLE = re.compile(r'(<g id="([^"]+)" class="(?:node|edge|cluster)">\s*<title>)[^<]*(</title>)')


@dataclass
class Union:
    """The union graph's DOT statements and the DOM ids of its elements."""

    dom: dict[str, str] = field(default_factory=dict)  # new id -> dom
    old_dom: dict[str, str] = field(default_factory=dict)  # removed old id -> dom
    out_dom: dict[str, str] = field(default_factory=dict)  # output name -> dom
    nodes: dict[str, str] = field(default_factory=dict)  # dom -> its DOT statement
    frames: dict[str, Frame] = field(default_factory=dict)  # block-instance clusters, by instance key
    edges: list[str] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)
    edge_ends: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # dom -> (from, to, status)

    def source(self, diff: Diff, old_source: str) -> str | None:
        """The dom of an OLD reference's node in the union (None: it names no node, in a broken spec)."""
        head = ref_node(old_source)
        return self.dom.get(diff.mapping[head]) if head in diff.mapping else self.old_dom.get(head)

    def edge(self, src: str | None, dst: str | None, status: str) -> None:
        if src is None or dst is None:
            return
        dom = f"e{len(self.edge_ends)}"
        style = ", style=dashed" if status == "removed" else ", penwidth=2" if status == "added" else ""
        self.edges.append(f'{src} -> {dst} [id="{dom}", color="{EDGE_COLOURS[status]}"{style}];')
        self.edge_ends[dom] = (src, dst, status)
        self.titles[dom] = f"{self.titles.get(src, src)} → {self.titles.get(dst, dst)}"


def _look(n: NodeDiff) -> Look:
    look = LOOKS[n.status]
    if n.node.kind == "input":
        return replace(look, shape="ellipse")
    if n.node.kind == "merge":
        return replace(look, shape=merge_look(n.node.op).shape)
    return look


def _label(n: NodeDiff) -> str:
    name = esc(n.id) if n.status != "renamed" else f"{esc(n.old_id)} → {esc(n.id)}"
    node = n.node
    shape = esc(fmt_dims(node.shape)) if node.shape is not None else ""
    params = f"{node.params:,} params" if node.params else ""
    rows = [f"<B>{name}</B>", esc(node.op, 40), small(" · ".join(x for x in (shape, params) if x))]
    colour = LOOKS[n.status].border
    rows += [small(esc(c.text, 60), colour) for c in n.changes[:MAX_CHANGES]]
    if len(n.changes) > MAX_CHANGES:
        rows.append(small(f"+{len(n.changes) - MAX_CHANGES} more", colour))
    return table(rows)


def _nodes(diff: Diff, u: Union) -> None:
    for k, n in enumerate(diff.nodes):
        dom = f"n{k}"
        (u.old_dom if n.status == "removed" else u.dom)[n.id] = dom
        look = _look(n)
        attrs = " ".join(f"{a}={v}" for a, v in look.attrs().items())
        u.nodes[dom] = f'{dom} [id="{dom}" {attrs} label={_label(n)}];'
        u.titles[dom] = esc(n.id)


def _edges(diff: Diff, u: Union) -> None:
    """NEW's edges (green where OLD lacked them), then OLD's edges NEW lacks (red, dashed)."""
    for n in diff.nodes:
        if n.status == "removed":
            for _, source in n.node.refs:
                u.edge(u.source(diff, source), u.old_dom[n.id], "removed")
            continue
        before = set()
        if n.old_id is not None:
            before = {(slot, u.source(diff, src)) for slot, src in diff.old.nodes[n.old_id].refs}
        now = set()
        for slot, source in n.node.refs:
            src = u.dom.get(ref_node(source))
            now.add((slot, src))
            u.edge(src, u.dom[n.id], "same" if (slot, src) in before else "added")
        for _, gone in sorted(before - now, key=str):
            u.edge(gone, u.dom[n.id], "removed")


def _outputs(diff: Diff, u: Union) -> None:
    changed = {i.name: i.status for i in diff.interface if i.what == "output"}
    names = [*diff.new.outputs, *(o for o in diff.old.outputs if o not in diff.new.outputs)]
    for k, name in enumerate(names):
        dom = f"o{k}"
        u.out_dom[name] = dom
        status = changed.get(name, "same")
        look = replace(LOOKS[status], peripheries=2)
        attrs = " ".join(f"{a}={v}" for a, v in look.attrs().items())
        u.nodes[dom] = f'{dom} [id="{dom}" {attrs} label={table([f"<B>{esc(name)}</B>", "output"])}];'
        u.titles[dom] = esc(name)
        if name in diff.new.sources:
            old_src = diff.old.sources.get(name)
            src = u.dom.get(ref_node(diff.new.sources[name]))
            same = old_src is not None and u.source(diff, old_src) == src
            u.edge(src, dom, "same" if same else "added")
            if old_src is not None and not same:
                u.edge(u.source(diff, old_src), dom, "removed")
        elif name in diff.old.sources:
            u.edge(u.source(diff, diff.old.sources[name]), dom, "removed")


def _title(diff: Diff, frames: bool) -> str:
    old, new = diff.old, diff.new
    head = esc(old.name) if old.name == new.name else f"{esc(old.name)} → {esc(new.name)}"
    delta = new.params - old.params
    rows = [
        f'<FONT POINT-SIZE="18"><B>diff: {head}</B></FONT>',
        small(f"{esc(old.file, 60)} → {esc(new.file, 60)}"),
        f"{old.params:,} → {new.params:,} params ({delta:+,}) · {esc(counts_line(diff))}",
    ]
    rows += [small(line) for i in diff.interface[:MAX_ITEMS] for line in wrap(item_text(i), 100, 1)]
    if len(diff.interface) > MAX_ITEMS:
        rows.append(small(f"… {len(diff.interface) - MAX_ITEMS} more interface changes"))
    cells = "".join(f"<TR><TD>{r}</TD></TR>" for r in rows)
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">{cells}{_legend(diff, bool(frames))}</TABLE>>'


def _legend(diff: Diff, framed: bool) -> str:
    """One swatch per status drawn (nodes and outputs), then what edges and frames mean."""
    present = {n.status for n in diff.nodes} | {i.status for i in diff.interface if i.what == "output"}
    swatches = []
    for status, look in LOOKS.items():
        if status in present:
            style = "dashed" if "dashed" in look.style else "rounded"
            swatches.append(
                f'<TD BGCOLOR="{look.fill}" COLOR="{look.border}" BORDER="1" STYLE="{style}">'
                f"{small(esc(look.name), '#000000')}</TD>"
            )
    notes = ["edge: green added in NEW, red dashed only in OLD, grey in both"]
    if framed:
        notes.append("dashed frame: a block instance (instance · block; renamed: old → new)")
    cells = "".join(swatches)
    row = f'<TR><TD><TABLE BORDER="0" CELLSPACING="4" CELLPADDING="3"><TR>{cells}</TR></TABLE></TD></TR>'
    return (row if swatches else "") + "".join(f"<TR><TD>{small(esc(n))}</TD></TR>" for n in notes)


def to_dot(diff: Diff, rankdir: str = "TB") -> tuple[str, dict[str, str], Union]:
    """The union graph as DOT text, the escaped SVG title of each DOM id, and the union's ids."""
    u = Union()
    _nodes(diff, u)
    _edges(diff, u)
    _outputs(diff, u)
    u.frames = frames(diff)
    statements = dict(u.nodes)
    top = {dom: key for key, f in u.frames.items() if f.parent is None for dom in members(u.frames, key)}
    body: list[str] = []
    for dom in u.nodes:  # in the union's order: a frame where its first node is
        if dom in statements and dom in top:
            body += frame_dot(u.frames, top[dom], statements)
        elif dom in statements:
            body.append(f"  {statements.pop(dom)}")
    u.titles.update({f.dom: esc(f.label) for f in u.frames.values()})
    lines = [
        'digraph "diff" {',
        f'  graph [rankdir={rankdir}, fontname="{FONT}", labelloc="t", nodesep="0.3", ranksep="0.35",'
        f" label={_title(diff, bool(u.frames))}];",
        f'  node [fontname="{FONT}", fontsize=11, margin="0.1,0.04"];',
        f'  edge [fontname="{FONT}", fontsize=9, arrowsize=0.7];',
        *body,
        *(f"  {s}" for s in u.edges),
        "}",
    ]
    return "\n".join(lines) + "\n", u.titles, u


def set_titles(svg: bytes, titles: Mapping[str, str]) -> bytes:
    """Graphviz's ``<title>`` of each node and edge replaced by its real, escaped name."""
    text = svg.decode("utf-8")
    text = _TITLE.sub(lambda m: m[1] + titles.get(m[2], esc(m[2])) + m[3], text)
    return text.encode("utf-8")


def draw(diff: Diff, fmt: str = "svg", rankdir: str = "TB", timeout: float = 30.0) -> bytes:
    """The drawn diff: ``dot`` text, or an svg/png/pdf from Graphviz (the HTML page: ``page.diff_page``).

    Raises:
        FusecError: Graphviz is missing, failed or ran past ``timeout``.
        ValueError: an unknown format.
    """
    text, titles, _ = to_dot(diff, rankdir)
    if fmt == "dot":
        return text.encode("utf-8")
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"unknown diff format {fmt!r}")
    out = run_dot(text.encode("utf-8"), fmt, timeout)
    return set_titles(out, titles) if fmt == "svg" else out
