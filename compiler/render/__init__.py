"""Render stage: a checked spec becomes a Graphviz diagram (DOT, SVG, PNG or PDF).

``to_dot`` writes the DOT text itself, node by node in the checker's
topological order, so the same spec always gives the same bytes; ``render``
pipes that text through Graphviz's ``dot`` program with a time limit. Node
names in the DOT text are synthetic (``n0``, ``o0``...), and every string from
the spec reaches Graphviz only inside an escaped HTML-like label: no id, name
or doc string can inject DOT, HTML, URLs, images or tooltips. Never imports
TensorFlow.

Clusters: every node expanded from a block instance is drawn inside a dashed
frame per enclosing instance (``Checked.scopes``), nested as the blocks are;
``depth`` and ``collapse`` fold deeper instances into one node each.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import FusecError
from ..spec.graph import ref_node
from ..static.check import Checked
from ..vocab.merges import BROADCASTING, broadcasts
from .style import (
    BROADCAST_NOTE,
    CLUSTER,
    FONT,
    FROZEN,
    INPUT,
    LAYER,
    OUTPUT,
    SUBMODEL,
    SUBMODEL_FROZEN,
    Look,
    broadcast_text,
    edge_label,
    esc,
    fmt_dims,
    legend,
    merge_look,
    node_label,
    output_label,
    params_text,
    shared_look,
    small,
    table,
    wrap,
)

FORMATS = ("svg", "png", "pdf", "dot")
#: Above this many drawn nodes, layout effort is bounded (see docs/render.md).
LARGE = 150
LARGE_PNG_DPI = 64
_LARGE_ATTRS = {"nslimit": "0.3", "nslimit1": "1", "mclimit": "0.5", "searchsize": "20"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # fullmatch: a trailing new line is not an identifier
_PDF_DATE = re.compile(rb"(/(?:CreationDate|ModDate) \(D:)[0-9]{14}")
_INSTALL = "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS)"


Scope = tuple[str, ...]  # the block instance ids around a node, outermost first


@dataclass
class _Drawing:
    """The DOT statements of one diagram, grouped by cluster path."""

    nodes: dict[Scope, list[str]] = field(default_factory=dict)
    edges: list[str] = field(default_factory=list)
    looks: dict[str, Look] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # legend notes, keyed for order
    frames: dict[Scope, str] = field(default_factory=dict)  # cluster path -> its graph attributes

    def add_node(self, scope: Scope, name: str, look: Look, label: str) -> None:
        attrs = " ".join(f"{k}={v}" for k, v in look.attrs().items())
        self.nodes.setdefault(scope, []).append(f"{name} [{attrs} label={label}];")
        self.looks.setdefault(look.name, look)


def _scopes(checked: Checked, depth: int | None) -> dict[str, tuple[Scope, Scope | None]]:
    """Per node: (the frame it is drawn in, the folded instance it is part of or None)."""
    chains = checked.scopes
    out: dict[str, tuple[Scope, Scope | None]] = {}
    for nid in checked.order:
        scope = tuple(str(inst) for inst, _ in chains.get(nid, ()))
        if depth is not None and len(scope) > depth:
            out[nid] = (scope[:depth], scope[: depth + 1])
        else:
            out[nid] = (scope, None)
    return out


def _local(name: str, scope: Scope) -> str:
    """A node or instance id without its enclosing instance's prefix (``tower_a__conv`` -> ``conv``)."""
    prefix = f"{scope[-1]}__" if scope else ""
    return name[len(prefix) :] if prefix and name.startswith(prefix) and len(name) > len(prefix) else name


def _instances(checked: Checked) -> dict[Scope, tuple[str, int, int]]:
    """Per instance path: (block name, index among that block's instances, their count)."""
    blocks: dict[Scope, str] = {}
    for nid in checked.order:
        chain = checked.scopes.get(nid, ())
        for k in range(1, len(chain) + 1):
            blocks.setdefault(tuple(str(i) for i, _ in chain[:k]), str(chain[k - 1][1]))
    by_block: dict[str, list[Scope]] = {}
    for path, block in blocks.items():
        by_block.setdefault(block, []).append(path)
    return {p: (b, by_block[b].index(p) + 1, len(by_block[b])) for p, b in blocks.items()}


def _frames(checked: Checked, drawing: _Drawing) -> None:
    """The label and outline of every block instance frame; tied (shared-weight) blocks in colour."""
    defs = checked.spec.doc.get("blocks", {}) if isinstance(checked.spec.doc, Mapping) else {}  # as written
    instances = _instances(checked)
    tied = sorted({b for b, _, _ in instances.values() if (defs.get(b) or {}).get("shared_weights")})
    for path, (block, k, n) in instances.items():
        head = f"<B>{esc(_local(path[-1], path[:-1]))}</B> · {esc(block)}"
        if block in tied:
            colour = shared_look(tied.index(block), block, False).border
            label = f"<{head} <I>(shared weights: instance {k} of {n})</I>>"
            drawing.frames[path] = f'label={label}, style="rounded,bold", color="{colour}", penwidth=2'
            drawing.notes["6"] = "coloured frame: an instance of a block with shared weights"
        else:
            drawing.frames[path] = f'label=<{head}>, style="rounded,dashed", color="#8c6d31"'
            drawing.notes["5"] = "dashed frame: a block instance (instance id · block name)"


def _title(checked: Checked, looks: list[Look], notes: Mapping[str, str]) -> str:
    t = checked.totals
    rows = [
        f'<TR><TD><FONT POINT-SIZE="18"><B>{esc(checked.name)}</B></FONT></TD></TR>',
        f"<TR><TD>{t.params:,} params · {t.trainable:,} trainable · {t.non_trainable:,} non-trainable"
        f" · {len(checked.order)} nodes</TD></TR>",
    ]
    doc = checked.doc.get("doc") if isinstance(checked.doc, Mapping) else None
    if isinstance(doc, str) and doc.strip():
        rows += [f"<TR><TD>{small(f'<I>{line}</I>')}</TD></TR>" for line in wrap(doc, 100, 3)]
    rows.append(legend(looks, [esc(notes[k]) for k in sorted(notes)]))
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">{"".join(rows)}</TABLE>>'


def to_dot(checked: Checked, rankdir: str = "TB", collapse: bool = False, depth: int | None = None) -> str:
    """Write the diagram of a checked spec as DOT text.

    Args:
        checked: the spec, from ``check_spec``.
        rankdir: ``TB`` (top to bottom) or ``LR`` (left to right).
        collapse: draw every block or sub-model as one node (same as depth 0).
        depth: expand nested blocks to this depth; deeper ones are one node.

    Returns:
        DOT text, identical for identical specs.

    Raises:
        ValueError: rankdir is not TB or LR, or depth is negative.

    Example:
        >>> to_dot(check_spec("specs/image_tag.json"))[:16]  # doctest: +SKIP
        'digraph "image_t'
    """
    return _diagram(checked, rankdir, collapse, depth)[0]


def _diagram(checked: Checked, rankdir: str, collapse: bool, depth: int | None) -> tuple[str, bool]:
    """(DOT text, whether the diagram is large) for ``to_dot`` and ``render``."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be TB or LR, not {rankdir!r}")
    if depth is not None and depth < 0:
        raise ValueError("depth must be 0 or more")
    calls: dict[str, int] = {}
    for nid in checked.order:
        sid = checked.info[nid].shared
        if sid is not None:
            calls[sid] = calls.get(sid, 0) + 1
    scopes = _scopes(checked, 0 if collapse else depth)
    drawing = _Drawing()
    rep = _draw_nodes(checked, scopes, calls, drawing)
    _frames(checked, drawing)
    large = len(rep) > LARGE
    key = "xlabel" if large else "label"  # an xlabel is placed after layout: no extra ranks to lay out
    drawing.notes["0"] = "node: id / op / key config / output shape · parameters"
    drawing.notes["1"] = "edge label: the tensor's shape (None = batch axis or unknown size)"
    _draw_edges(checked, rep, key, drawing)
    if not large:
        _draw_ties(checked, scopes, calls, rep, drawing)
    outputs = checked.doc.get("outputs", {}) if isinstance(checked.doc, Mapping) else {}
    for i, (name, ref) in enumerate(checked.graph.graph["outputs"].items()):
        drawing.add_node((), f"o{i}", OUTPUT, output_label(name, outputs.get(name) or {}))
        drawing.edges.append(f"{rep[ref_node(ref.source)]} -> o{i} [{key}=<{_ref_shape(checked, ref.source)}>];")
    return _emit(checked, drawing, rankdir, large), large


def _draw_nodes(checked: Checked, scopes: Any, calls: Mapping[str, int], drawing: _Drawing) -> dict[str, str]:
    """Every node drawn, or folded into its block instance's box; returns node id -> the DOT node drawing it."""
    rep: dict[str, str] = {}
    folded: dict[Scope, list[str]] = {}  # folded instance -> its node ids
    for i, nid in enumerate(checked.order):
        cluster, block = scopes[nid]
        if block is None:
            rep[nid] = f"n{i}"
            name = _local(nid, tuple(str(inst) for inst, _ in checked.scopes.get(nid, ())))
            spec = checked.graph.nodes[nid]["spec"]
            look, label = node_label(name, checked.info[nid], spec, checked.graph.graph["shared"], calls)
            drawing.add_node(cluster, rep[nid], look, label)
        else:
            folded.setdefault(block, []).append(nid)
            rep[nid] = f"b{list(folded).index(block)}"
    instances = _instances(checked)
    for path, members in folded.items():
        params = sum(checked.info[m].params for m in members)
        rows = [
            f"<B>{esc(_local(path[-1], path[:-1]))}</B>",
            f"{esc(instances[path][0])} · {len(members)} node" + ("s" if len(members) > 1 else ""),
            esc(params_text(params, 0)),
        ]
        drawing.add_node(path[:-1], rep[members[0]], CLUSTER, table(rows))
    return rep


def _draw_edges(checked: Checked, rep: Mapping[str, str], key: str, drawing: _Drawing) -> None:
    """One edge per reference (once between folded boxes), labelled with its shape; a broadcast input dashed."""
    seen: set[tuple[str, str, str]] = set()
    for nid in checked.order:
        attrs = checked.graph.nodes[nid]
        mode = attrs["spec"].get("merge") if attrs["kind"] == "merge" else None
        for ref in attrs["refs"]:
            src, dst = rep[ref_node(ref.source)], rep[nid]
            shape, out = _ref_shape(checked, ref.source), checked.info[nid].shape
            wide = mode in BROADCASTING and broadcasts(checked.shapes.of(ref.source), out)
            label = edge_label(ref, broadcast_text(shape, out) if wide else shape, mode)
            if src == dst or ((src[0] == "b" or dst[0] == "b") and (src, dst, label) in seen):
                continue
            seen.add((src, dst, label))
            extra = ""
            if label.startswith("<#"):
                drawing.notes["2"] = "#k on an edge: the input's position in an order-sensitive merge"
            elif mode is not None and len(ref.slot) == 1 and isinstance(ref.slot[0], str):
                colour = merge_look(mode).border  # a single named input steers the merge: the gate
                extra = f', penwidth=2, color="{colour}", fontcolor="{colour}"'
                drawing.notes["4"] = "bold coloured edge: a merge's control input (the gate of a gated merge)"
            if wide:
                extra += ", style=dashed"
                drawing.notes["7"] = BROADCAST_NOTE
            drawing.edges.append(f"{src} -> {dst} [{key}={label}{extra}];")


def _draw_ties(
    checked: Checked, scopes: Any, calls: Mapping[str, int], rep: Mapping[str, str], drawing: _Drawing
) -> None:
    """A dotted line through the drawn calls of each shared layer, in call order."""
    for sid in sorted(calls):
        sites = [n for n in checked.order if checked.info[n].shared == sid and scopes[n][1] is None]
        colour = shared_look(sorted(calls).index(sid), sid, False).border
        tie = f'style=dotted, dir=none, constraint=false, penwidth=2, color="{colour}"'
        for a, b in itertools.pairwise(sites):
            drawing.notes["3"] = "dotted line: calls of one shared layer, in call order (same weights)"
            drawing.edges.append(f"{rep[a]} -> {rep[b]} [{tie}];")


def _ref_shape(checked: Checked, source: str) -> str:
    """The escaped shape of what a reference carries, after its port (``.2 ``) when it names one.

    ``lstm.2`` is output 2 of ``lstm`` (an LSTM's cell state); ``lstm`` and
    ``lstm.0`` are its first output.
    """
    info = checked.info.get(source)
    shape = esc(fmt_dims(info.shape if info is not None else checked.shapes.of(source)))
    _, dot, port = source.partition(".")
    return f".{esc(port)} {shape}" if dot else shape


def _emit(checked: Checked, drawing: _Drawing, rankdir: str, large: bool) -> str:
    order = [INPUT.name, LAYER.name, FROZEN.name, SUBMODEL.name, SUBMODEL_FROZEN.name, CLUSTER.name]
    first = [drawing.looks[n] for n in order if n in drawing.looks]
    rest = sorted((lk for n, lk in drawing.looks.items() if n not in order and n != OUTPUT.name), key=_look_key)
    looks = first + rest + ([OUTPUT] if OUTPUT.name in drawing.looks else [])
    name = checked.name if _IDENT.fullmatch(checked.name) else "model"
    graph_attrs = {
        "rankdir": rankdir,
        "fontname": f'"{FONT}"',
        "labelloc": "t",
        "nodesep": "0.3",
        "ranksep": "0.35",
        "label": _title(checked, looks, drawing.notes),
        **(_LARGE_ATTRS if large else {}),
    }
    lines = [f'digraph "{name}" {{']
    lines += [f"  graph [{k}={v}];" for k, v in graph_attrs.items()]
    lines.append(f'  node [fontname="{FONT}", fontsize=11, margin="0.1,0.04"];')
    lines.append(f'  edge [fontname="{FONT}", fontsize=9, fontcolor="#555555", color="#666666", arrowsize=0.7];')
    lines += _emit_clusters(drawing.nodes, drawing.frames)
    lines += [f"  {e}" for e in drawing.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _look_key(look: Look) -> tuple[int, str]:
    return (1 if look.name.startswith("shared ") else 0, look.name)


def _emit_clusters(nodes: Mapping[Scope, list[str]], frames: Mapping[Scope, str]) -> list[str]:
    """Node statements nested in one ``subgraph cluster_k`` per block instance."""
    paths = sorted({p[:k] for p in nodes for k in range(1, len(p) + 1)})

    def emit(path: Scope, pad: str) -> list[str]:
        lines = [pad + s for s in nodes.get(path, [])]
        for child in (p for p in paths if len(p) == len(path) + 1 and p[: len(path)] == path):
            lines.append(f"{pad}subgraph cluster_{paths.index(child)} {{")
            lines.append(f"{pad}  graph [{frames[child]}, fontsize=12];")
            lines += emit(child, pad + "  ")
            lines.append(f"{pad}}}")
        return lines

    return emit((), "  ")


def find_dot() -> str:
    """The path of Graphviz's ``dot`` program.

    Raises:
        FusecError: ``dot`` is not on PATH (the message says how to install it).
    """
    path = shutil.which("dot")
    if path is None:
        raise FusecError.single((), "Graphviz's `dot` program was not found on PATH", _INSTALL, code="render")
    return path


def render(
    checked: Checked,
    fmt: str = "svg",
    rankdir: str = "TB",
    collapse: bool = False,
    depth: int | None = None,
    timeout: float = 30.0,
) -> bytes:
    """Draw a checked spec.

    Args:
        checked: the spec, from ``check_spec``.
        fmt: ``svg``, ``png``, ``pdf`` or ``dot`` (DOT text; needs no Graphviz).
        rankdir: ``TB`` or ``LR``.
        collapse: draw every block or sub-model as one node.
        depth: expand nested blocks to this depth.
        timeout: seconds ``dot`` may take before it is stopped.

    Returns:
        The file's bytes (identical for identical specs, PDF included).

    Raises:
        FusecError: ``dot`` is missing, failed, or ran past ``timeout``.
        ValueError: an unknown format or rankdir.

    Example:
        >>> svg = render(check_spec("specs/image_tag.json"), "svg")  # doctest: +SKIP
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    text, large = _diagram(checked, rankdir, collapse, depth)
    if fmt == "dot":
        return text.encode("utf-8")
    # A large PNG at 96 dpi is ~100 Mpx, and cairo takes seconds to compress it; 64 dpi keeps
    # 11-point text legible at less than half the pixels. (Vector formats do not depend on dpi.)
    return run_dot(text.encode("utf-8"), fmt, timeout, dpi=LARGE_PNG_DPI if large and fmt == "png" else None)


def run_dot(text: bytes, fmt: str, timeout: float = 30.0, dpi: int | None = None) -> bytes:
    """Lay out DOT text with Graphviz's ``dot`` and return the ``fmt`` output.

    Args:
        text: DOT text, UTF-8.
        fmt: a Graphviz output format (``svg``, ``png``, ``pdf``).
        timeout: seconds before ``dot`` is stopped.
        dpi: raster resolution for PNG (None: Graphviz's 96).

    Returns:
        The output file's bytes.

    Raises:
        FusecError: ``dot`` is missing, failed, or ran past ``timeout``.
    """
    cmd = [find_dot(), f"-T{fmt}", *([f"-Gdpi={dpi}"] if dpi else [])]
    try:
        proc = subprocess.run(cmd, input=text, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise FusecError.single((), "Graphviz's `dot` program was not found", _INSTALL, code="render") from None
    except subprocess.TimeoutExpired:
        raise FusecError.single(
            (),
            f"Graphviz's `dot` took longer than {timeout:g} s to lay out the diagram and was stopped",
            "raise --timeout, draw blocks collapsed with --collapse, or write --format dot to lay out later",
            code="render",
        ) from None
    if proc.returncode != 0 or not proc.stdout:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[0] if lines else f"exit code {proc.returncode}"
        raise FusecError.single(
            (),
            f"Graphviz's `dot` failed: {detail}",
            "check the Graphviz install (`dot -V`); if it works, write --format dot and report the bug",
            code="render",
        )
    if fmt == "pdf":  # cairo stamps the time; a fixed date of the same length keeps offsets valid
        return _PDF_DATE.sub(lambda m: m.group(1) + b"19700101000000", proc.stdout)
    return proc.stdout
