"""One view, start to end: lay it out (``plan.py``), draw it (``dot.py``) and write the DOT text.

Nodes are written in spec order (inputs, then nodes as written, blocks
expanded in place), frames in the order their first node is written, so
block instances and the edges into a merge keep the order of the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..static.check import Checked
from .dot import (
    RED,
    Drawing,
    draw_block_box,
    draw_edges,
    draw_frames,
    draw_node,
    draw_outputs,
    draw_repeat_box,
    draw_ties,
    ident,
)
from .faults import TITLE_PROBLEMS, Faults, find_faults, first_line
from .plan import Layout, layout
from .style import FONT, FROZEN, INPUT, LAYER, OUTPUT, SUBMODEL, SUBMODEL_FROZEN, Look, esc, legend, small, wrap

#: Above this many drawn nodes, layout effort is bounded (see docs/render.md).
LARGE = 150
_LARGE_ATTRS = {"nslimit": "0.3", "nslimit1": "1", "mclimit": "0.5", "searchsize": "20"}


@dataclass
class View:
    """A drawn view: its DOT text, the titles ``svg.py`` writes, and what it was drawn from."""

    dot: str
    titles: dict[str, str]
    large: bool
    layout: Layout
    faults: Faults


def view(
    checked: Checked, rankdir: str = "TB", collapse: bool = False, depth: int | None = None, unfold: bool = False
) -> View:
    """Draw one view of a checked spec (see ``fusec.render.to_dot`` for the arguments)."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be TB or LR, not {rankdir!r}")
    if depth is not None and depth < 0:
        raise ValueError("depth must be 0 or more")
    lay = layout(checked, collapse, depth, unfold)
    faults = find_faults(lay, lay.problems)
    drawing = Drawing()
    drawn: set[str] = set()
    for nid in lay.order:
        dom = lay.rep[nid]
        if dom in drawn:
            continue
        drawn.add(dom)
        {"n": draw_node, "b": _box, "r": _box}[dom[0]](lay, nid, faults, drawing)
    draw_frames(lay, drawing)
    large = len(drawn) > LARGE
    key = "xlabel" if large else "label"  # an xlabel is placed after layout: no extra ranks to lay out
    drawing.notes["0"] = "node: id / op / key config / output shape · parameters"
    draw_outputs(lay, faults, drawing)
    draw_edges(lay, faults, key, drawing)
    if not large:
        draw_ties(lay, drawing)
    return View(_emit(checked, drawing, rankdir, large, faults), drawing.titles, large, lay, faults)


def _box(lay: Layout, nid: str, faults: Faults, drawing: Drawing) -> None:
    dom = lay.rep[nid]
    (draw_block_box if dom[0] == "b" else draw_repeat_box)(lay, dom, drawing)


def _problem_rows(faults: Faults) -> list[str]:
    """The title's red rows: "N errors", then the first few messages."""
    n = len(faults.items)
    if not n:
        return []
    rows = [f'<TR><TD><FONT COLOR="{RED}"><B>{n} error{"s" if n > 1 else ""}</B></FONT></TD></TR>']
    for fault in faults.items[:TITLE_PROBLEMS]:
        where = esc(fault.problem.jsonpath, 60)
        rows.append(f"<TR><TD>{small(f'{where}: {esc(first_line(fault.problem), 100)}', RED)}</TD></TR>")
    if n > TITLE_PROBLEMS:
        rows.append(f"<TR><TD>{small(f'and {n - TITLE_PROBLEMS} more', RED)}</TD></TR>")
    return rows


def _title(checked: Checked, looks: list[Look], notes: Mapping[str, str], faults: Faults) -> str:
    t = checked.totals
    rows = [
        f'<TR><TD><FONT POINT-SIZE="18"><B>{esc(checked.name)}</B></FONT></TD></TR>',
        f"<TR><TD>{t.params:,} params · {t.trainable:,} trainable · {t.non_trainable:,} non-trainable"
        f" · {len(checked.order)} nodes</TD></TR>",
        *_problem_rows(faults),
    ]
    doc = checked.doc.get("doc") if isinstance(checked.doc, Mapping) else None
    if isinstance(doc, str) and doc.strip():
        rows += [f"<TR><TD>{small(f'<I>{line}</I>')}</TD></TR>" for line in wrap(doc, 100, 3)]
    rows.append(legend(looks, [esc(notes[k]) for k in sorted(notes)]))
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">{"".join(rows)}</TABLE>>'


def _look_key(look: Look) -> tuple[int, str]:
    return (1 if look.name.startswith("shared ") else 0, look.name)


def _emit(checked: Checked, drawing: Drawing, rankdir: str, large: bool, faults: Faults) -> str:
    order = [INPUT.name, LAYER.name, FROZEN.name, SUBMODEL.name, SUBMODEL_FROZEN.name]
    first = [drawing.looks[n] for n in order if n in drawing.looks]
    rest = sorted((lk for n, lk in drawing.looks.items() if n not in order and n != OUTPUT.name), key=_look_key)
    looks = first + rest + ([OUTPUT] if OUTPUT.name in drawing.looks else [])
    graph_attrs = {
        "rankdir": rankdir,
        "fontname": f'"{FONT}"',
        "labelloc": "t",
        "nodesep": "0.3",
        "ranksep": "0.35",
        "label": _title(checked, looks, drawing.notes, faults),
        **(_LARGE_ATTRS if large else {}),
    }
    lines = [f'digraph "{ident(checked.name)}" {{']
    lines += [f"  graph [{k}={v}];" for k, v in graph_attrs.items()]
    lines.append(f'  node [fontname="{FONT}", fontsize=11, margin="0.1,0.04"];')
    lines.append(f'  edge [fontname="{FONT}", fontsize=9, fontcolor="#555555", color="#666666", arrowsize=0.7];')
    lines += emit_clusters(drawing.items, drawing.frames)
    lines += [f"  {e}" for e in drawing.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def emit_clusters(items: Sequence[tuple[tuple[str, ...], str]], frames: Mapping[str, str]) -> list[str]:
    """Node statements nested in one ``subgraph cluster_<dom>`` per frame, frames in order of first use."""
    here: dict[tuple[str, ...], list[str]] = {}
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for chain, statement in items:
        here.setdefault(chain, []).append(statement)
        for k in range(1, len(chain) + 1):
            if chain[:k] not in children:
                children[chain[:k]] = []
                children.setdefault(chain[: k - 1], []).append(chain[:k])

    def emit(path: tuple[str, ...], pad: str) -> list[str]:
        lines = [pad + s for s in here.get(path, [])]
        for child in children.get(path, []):
            dom = child[-1]
            lines.append(f"{pad}subgraph cluster_{dom} {{")
            lines.append(f'{pad}  graph [id="{dom}", {frames[dom]}, fontsize=12];')
            lines += emit(child, pad + "  ")
            lines.append(f"{pad}}}")
        return lines

    return emit((), "  ")
