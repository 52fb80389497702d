"""DOT text of one view: nodes, folded boxes, frames, edges and ties, with their DOM ids and titles.

Every drawn element gets a DOT ``id`` (its DOM id, ``plan.py``), and every
string from the spec reaches Graphviz only inside an escaped HTML-like label.
``titles`` holds each element's real (escaped) name, which ``svg.py`` writes
into the SVG's ``<title>`` elements after layout.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..spec.graph import BROKEN
from ..vocab.merges import BROADCASTING, broadcasts
from .faults import LABEL_CHARS, Faults
from .plan import EdgeRef, Layout, Scope, is_broken, raw_entry, shape_of
from .style import (
    BROADCAST_NOTE,
    CLUSTER,
    ERROR,
    INPUT,
    LAYER,
    OUTPUT,
    REPEAT,
    Look,
    broadcast_text,
    edge_label,
    esc,
    fmt_dims,
    merge_look,
    node_label,
    output_label,
    params_text,
    shared_look,
    small,
    table,
)

RED = ERROR.border
#: Rows of a ×N box listing its branch's nodes before "…".
REPEAT_ROWS = 6
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Drawing:
    """The DOT statements of one view, and what the legend and the SVG titles need."""

    items: list[tuple[tuple[str, ...], str]] = field(default_factory=list)  # (cluster chain, node statement)
    edges: list[str] = field(default_factory=list)
    looks: dict[str, Look] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # legend notes, keyed for order
    frames: dict[str, str] = field(default_factory=dict)  # cluster dom -> its graph attributes
    titles: dict[str, str] = field(default_factory=dict)  # dom -> escaped title

    def add_node(self, chain: tuple[str, ...], dom: str, look: Look, label: str, title: str) -> None:
        attrs = " ".join(f"{k}={v}" for k, v in look.attrs().items())
        self.items.append((chain, f'{dom} [id="{dom}" {attrs} label={label}];'))
        self.looks.setdefault(look.name, look)
        self.titles[dom] = title


def local(name: str, scope: Scope) -> str:
    """A node or instance id without its enclosing instance's prefix (``tower_a__conv`` -> ``conv``)."""
    prefix = f"{scope[-1]}__" if scope else ""
    return name[len(prefix) :] if prefix and name.startswith(prefix) and len(name) > len(prefix) else name


def red(look: Look) -> Look:
    """A look in the error colours, keeping its shape."""
    style = look.style if "bold" in look.style.split(",") else f"{look.style},bold"
    return replace(look, name=ERROR.name, fill=ERROR.fill, border=ERROR.border, style=style)


def _messages(messages: list[str]) -> list[str]:
    return [small(esc(m, LABEL_CHARS), RED) for m in messages[:2]]


#: The keys naming what a node is, in the order a broken entry's label looks for one.
_OP_KEYS = ("layer", "merge", "shared", "block", "model")


def _broken_label(lay: Layout, nid: str, name: str, messages: list[str]) -> str:
    """A node whose entry failed (or whose shape is unknown): id, op if readable, ``?``, messages."""
    raw = raw_entry(lay.checked, nid)
    info = lay.checked.info.get(nid)
    if info is not None:
        op = esc(info.op, 40)
    elif any(isinstance(raw.get(k), str) for k in _OP_KEYS):  # the entry failed: only its op's name is trusted
        key = next(k for k in _OP_KEYS if isinstance(raw.get(k), str))
        op = esc(raw[key], 40) if key in ("layer", "merge") else f"{key} {esc(raw[key], 40)}"
    else:
        op = "input" if (lay.checked.graph.nodes[nid].get("path") or ("",))[0] == "inputs" else "?"
    shape = esc(fmt_dims(info.shape)) if info is not None else "?"
    return table([f"<B>{esc(name)}</B>", op, shape, *_messages(messages)])


def _unknown_look(lay: Layout, nid: str) -> Look:
    """The look of a node whose shape is unknown but whose entry is fine: its kind's, from the entry."""
    raw = raw_entry(lay.checked, nid)
    if isinstance(raw.get("merge"), str):
        return merge_look(raw["merge"])
    return INPUT if (lay.checked.graph.nodes[nid].get("path") or ("",))[0] == "inputs" else LAYER


def draw_node(lay: Layout, nid: str, faults: Faults, drawing: Drawing) -> None:
    """One spec node in its frame; in red when a problem names it."""
    c = lay.checked
    dom = lay.dom[nid]
    name = local(nid, tuple(str(i) for i, _ in c.scopes.get(nid, ())))
    messages = faults.nodes.get(nid, [])
    if is_broken(c, nid):  # failed, or its shape could not be inferred (an input failed): "?"
        failed = c.graph.nodes[nid].get("kind") == BROKEN or messages
        look, label = red(ERROR) if failed else _unknown_look(lay, nid), _broken_label(lay, nid, name, messages)
    else:
        spec = c.graph.nodes[nid]["spec"]
        look, label = node_label(name, c.info[nid], spec, c.graph.graph["shared"], lay.calls, _messages(messages))
        look = red(look) if messages else look
    if messages:
        drawing.notes["8"] = "red: a node or edge a problem names (its message in the label)"
    drawing.add_node(lay.node_chain(nid), dom, look, label, esc(nid))


def block_colour(lay: Layout, block: str) -> str:
    """The colour of a shared-weights block (its frames, folded boxes and ties)."""
    tied = sorted({i.block for i in lay.instances.values() if i.shared})
    return shared_look(tied.index(block), block, False).border


def draw_block_box(lay: Layout, dom: str, drawing: Drawing) -> None:
    """A folded block instance: its id, block, node count and parameters (weights of instance 1 when shared)."""
    members = lay.folded[dom]
    path = next(p for p, i in lay.instances.items() if f"b{i.index}" == dom)
    inst = lay.instances[path]
    params = sum(lay.checked.info[m].params for m in members if m in lay.checked.info)
    weights = params_text(params, 0)
    if inst.shared and inst.k > 1 and not params:
        weights = "weights of instance 1"
    rows = [
        f"<B>{esc(local(path[-1], path[:-1]))}</B>",
        f"{esc(inst.block)} · {len(members)} node" + ("s" if len(members) > 1 else ""),
        esc(weights),
    ]
    look = CLUSTER
    if inst.shared:
        rows.append(small(f"<I>shared weights: instance {inst.k} of {inst.n}</I>"))
        look = replace(CLUSTER, border=block_colour(lay, inst.block), style="filled,bold")
    drawing.add_node(lay.chain(path[:-1]), dom, look, table(rows), esc(path[-1]))


def draw_repeat_box(lay: Layout, dom: str, drawing: Drawing) -> None:
    """N repeated branches as one box: ×N, the first branch's nodes, the parameters of all of them."""
    k = int(dom[1:])
    repeat = lay.repeats[k]
    c = lay.checked
    first = repeat.branches[0]
    rows = [f"<B>×{len(repeat.branches)}</B> {small(esc(f'{first[0]} … {repeat.branches[-1][0]}', 60))}"]
    for nid in first[:REPEAT_ROWS]:
        info = c.info[nid]
        rows.append(small(f"{esc(info.op, 30)} · {esc(fmt_dims(info.shape))}", "#000000"))
    if len(first) > REPEAT_ROWS:
        rows.append(small(f"… {len(first) - REPEAT_ROWS} more"))
    one = sum(c.info[n].params for n in first)
    total = sum(c.info[n].params for branch in repeat.branches for n in branch)
    if total:
        rows.append(esc(f"{len(repeat.branches)} × {one:,} = {params_text(total, 0)}"))
    drawing.notes["9"] = "×N box: N identical parallel branches drawn once (--unfold draws them all)"
    title = esc(f"×{len(repeat.branches)}: {first[0]} … {repeat.branches[-1][0]}")
    drawing.add_node(lay.chain(lay.repeat_scope[k]), dom, REPEAT, table(rows), title)


def draw_frames(lay: Layout, drawing: Drawing) -> None:
    """The label and outline of every drawn block frame (tied blocks in colour) and ×N cluster."""
    drawn = {dom for chain, _ in drawing.items for dom in chain}
    for path, inst in lay.instances.items():
        dom = f"c{inst.index}"
        if dom not in drawn:
            continue
        head = f"<B>{esc(local(path[-1], path[:-1]))}</B> · {esc(inst.block)}"
        drawing.titles[dom] = esc(f"{path[-1]} · {inst.block}")
        if inst.shared:
            label = f"<{head} <I>(shared weights: instance {inst.k} of {inst.n})</I>>"
            colour = block_colour(lay, inst.block)
            drawing.frames[dom] = f'label={label}, style="rounded,bold", color="{colour}", penwidth=2'
            drawing.notes["6"] = "coloured frame: an instance of a block with shared weights"
        else:
            drawing.frames[dom] = f'label=<{head}>, style="rounded,dashed", color="#8c6d31"'
            drawing.notes["5"] = "dashed frame: a block instance (instance id · block name)"
    for k, repeat in enumerate(lay.repeats):
        if f"r{k}" in drawn:
            n = len(repeat.branches)
            drawing.titles[f"r{k}"] = f"×{n}"
            sig = small(esc(repeat.signature, 60))
            drawing.frames[f"r{k}"] = f'label=<<B>×{n}</B> {sig}>, style="rounded,dashed", color="{REPEAT.border}"'
            drawing.notes["9"] = "green frame ×N: N identical parallel branches (drawn folded unless --unfold)"


def _edge_text(lay: Layout, ref_source: str, dst: str | None) -> tuple[str, bool, str | None]:
    """(escaped shape text, whether a broadcast, the merge mode) of one reference into ``dst``."""
    c = lay.checked
    attrs = c.graph.nodes[dst] if dst is not None else None
    mode = attrs["spec"].get("merge") if attrs is not None and attrs["kind"] == "merge" else None
    dims = shape_of(c, ref_source)
    shape = esc(fmt_dims(dims)) if dims is not None else "?"
    if "." in ref_source:
        shape = f".{esc(ref_source.partition('.')[2])} {shape}"
    out = c.info[dst].shape if dst is not None and dst in c.info else None
    wide = bool(mode in BROADCASTING and out is not None and dims is not None and broadcasts(dims, out))
    return shape if not wide else broadcast_text(shape, out or ()), wide, mode


@dataclass
class _Line:
    """One drawn edge: the first reference it draws and what the others between the same boxes add."""

    dom: str
    src: str
    dst: str
    extra: str
    labels: set[str] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)
    count: int = 1
    quiet: bool = False  # red, but its message is on the node it enters

    def statement(self, key: str) -> str:
        label = next(iter(self.labels)) if len(self.labels) == 1 else ""
        if self.count > 1 and (self.src[0] == "r" or self.dst[0] == "r" or len(self.labels) > 1):
            label = f"×{self.count}"
        extra = self.extra
        if self.messages:
            extra += f', penwidth=2, color="{RED}", fontcolor="{RED}"'
        if self.messages and not self.quiet:
            note = f'<FONT COLOR="{RED}">{esc(self.messages[0], LABEL_CHARS)}</FONT>'
            label = f"{label}<BR/>{note}" if label else note
        text = f" {key}=<{label}>" if label else ""
        return f'{self.src} -> {self.dst} [id="{self.dom}"{text}{extra}];'


def _edge_look(lay: Layout, e: EdgeRef, drawing: Drawing) -> tuple[str, str]:
    """(label inner text, extra DOT attributes) of one reference; the legend notes it needs."""
    shape, wide, mode = _edge_text(lay, e.ref.source, None if e.output else e.dst)
    label = edge_label(e.ref, shape, mode, port="." in e.ref.source)[1:-1]
    extra = ""
    if label.startswith("#"):
        drawing.notes["2"] = "#k on an edge: the input's position in an order-sensitive merge"
    elif mode is not None and len(e.ref.slot) == 1 and isinstance(e.ref.slot[0], str):
        colour = merge_look(mode).border  # a single named input steers the merge: the gate
        extra = f', penwidth=2, color="{colour}", fontcolor="{colour}"'
        drawing.notes["4"] = "bold coloured edge: a merge's control input (the gate of a gated merge)"
    if wide:
        extra += ", style=dashed"
        drawing.notes["7"] = BROADCAST_NOTE
    return label, extra


def draw_edges(lay: Layout, faults: Faults, key: str, drawing: Drawing) -> None:
    """One edge per reference (once per pair of folded boxes), labelled only with what the nodes do not say."""
    merged: dict[tuple[str, str], _Line] = {}
    lines: list[_Line] = []
    for e in lay.edges:
        src = lay.rep[e.src]
        dst = lay.out_dom[e.dst] if e.output else lay.rep[e.dst]
        if src == dst:
            continue
        label, extra = _edge_look(lay, e, drawing)
        messages = faults.edges.get(e.dom, [])
        line = merged.get((src, dst)) if src[0] in "br" or dst[0] in "br" else None
        if line is not None:
            line.labels.add(label)
            line.messages.extend(messages)
            line.count += 1
            continue
        line = _Line(e.dom, src, dst, extra, {label}, list(messages), quiet=e.dom in faults.quiet)
        merged[(src, dst)] = line
        lines.append(line)
        drawing.titles[e.dom] = f"{drawing.titles.get(src, esc(e.src))} → {drawing.titles.get(dst, esc(e.dst))}"
    for line in lines:
        drawing.edges.append(line.statement(key))
        if any(line.labels) or line.count > 1:
            drawing.notes["1"] = (
                "edge label: only what the source node does not show: an output port and its shape (.2), "
                "a named input (gate), a position (#k), a broadcast, a count (×N)"
            )


def draw_ties(lay: Layout, drawing: Drawing) -> None:
    """A dotted line through the drawn calls of each shared layer, in call order (folded boxes included)."""
    seen: set[tuple[str, str]] = set()
    c = lay.checked
    for sid in sorted(lay.calls):
        sites = [lay.rep[n] for n in c.order if n in c.info and c.info[n].shared == sid]
        sites = [s for s, _ in itertools.groupby(sites)]
        colour = shared_look(sorted(lay.calls).index(sid), sid, False).border
        for a, b in itertools.pairwise(sites):
            if (a, b) in seen or a == b:
                continue
            seen.add((a, b))
            block = _common_block(lay, a, b)
            tint = block_colour(lay, block) if block else colour
            tie = f'style=dotted, dir=none, constraint=false, penwidth=2, color="{tint}"'
            dom = f"t{len(seen) - 1}"
            drawing.notes["3"] = "dotted line: calls of one shared layer, in call order (same weights)"
            drawing.edges.append(f'{a} -> {b} [id="{dom}", {tie}];')
            drawing.titles[dom] = f"{esc(sid)}: {drawing.titles.get(a, a)} → {drawing.titles.get(b, b)}"


def _common_block(lay: Layout, a: str, b: str) -> str | None:
    """The shared-weights block both folded boxes are instances of, or None."""
    blocks = {i.block for i in lay.instances.values() if f"b{i.index}" in (a, b) and i.shared}
    return blocks.pop() if len(blocks) == 1 and a[0] == b[0] == "b" else None


def draw_outputs(lay: Layout, faults: Faults, drawing: Drawing) -> None:
    """Every output as a node (in red when a problem names it)."""
    outputs = lay.checked.doc.get("outputs", {}) if isinstance(lay.checked.doc, Mapping) else {}
    for name, dom in lay.out_dom.items():
        out = outputs.get(name) if isinstance(outputs, Mapping) else None
        messages = faults.outputs.get(dom, [])
        look = red(OUTPUT) if messages else OUTPUT
        label = output_label(name, out if isinstance(out, Mapping) else {}, _messages(messages))
        drawing.add_node((), dom, look, label, esc(name))


def ident(name: str) -> str:
    """A model name usable as the DOT graph's name, else ``model``."""
    return name if _IDENT.fullmatch(name) else "model"
