"""The diagram's visual language: escaping, colours, shapes, labels and the legend.

Everything a reader decodes (which shape means what, which colour a shared
layer gets) is decided here, in tables, so ``docs/render.md`` and the legend
drawn on every diagram can never disagree with the nodes themselves. This
module labels one node or edge at a time; ``plan.py`` walks the graph and
``dot.py`` draws frames and writes the DOT text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..spec.graph import Ref
from ..static.shapes import NodeInfo
from ..vocab.layers import LAYERS
from ..vocab.losses import objective_text
from ..vocab.merges import MERGES
from ..vocab.rule import MergeLook, Param
from .text import unsafe_char as unsafe_char  # re-exported: older imports
from .text import visible as visible

FONT = "Helvetica"
_SPACE = re.compile(r"\s+")


def esc(text: object, limit: int = 0) -> str:
    """Make any user string safe inside an HTML-like DOT label, shown literally.

    Args:
        text: the string (or value) to show.
        limit: cut to this many characters (with an ellipsis); 0 keeps all.

    Returns:
        Text with unsafe characters (control, bidirectional, zero-width...)
        as visible escapes (``\\x0a``, ``\\u202e``), runs of spaces as one
        space, and ``& < > " '`` as entities.

    Example:
        >>> esc('a<b> & "c"')
        'a&lt;b&gt; &amp; &quot;c&quot;'
    """
    s = _SPACE.sub(" ", visible(str(text))).strip()
    if limit and len(s) > limit:
        s = s[: limit - 1].rstrip() + "…"
    return (
        s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#39;")
    )


def wrap(text: str, width: int, lines: int) -> list[str]:
    """Greedy word wrap of free text (a ``doc``) into at most ``lines`` lines, escaped.

    White space of any kind, new lines included, separates words; other
    unsafe characters are shown escaped (see ``esc``).
    """
    words = _SPACE.sub(" ", text).strip().split(" ")
    out: list[str] = []
    cur = ""
    for word in words:
        if cur and len(cur) + 1 + len(word) > width:
            out.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        out.append(cur)
    if len(out) > lines:
        out = [*out[: lines - 1], " ".join(out[lines - 1 :])]
    return [esc(line, width) for line in out]


@dataclass(frozen=True)
class Look:
    """How one kind of node is drawn.

    Attributes:
        name: the legend's wording.
        shape: a Graphviz node shape.
        fill: background colour.
        style: Graphviz style list (``filled`` always included).
        border: outline colour.
        glyph: a symbol shown before the op name (merges).
        peripheries: outline count (2 for outputs).
    """

    name: str
    shape: str
    fill: str
    style: str = "filled"
    border: str = "#444444"
    glyph: str = ""
    peripheries: int = 1
    margin: str = ""

    def attrs(self) -> dict[str, str]:
        out = {"shape": self.shape, "style": f'"{self.style}"', "fillcolor": f'"{self.fill}"'}
        out["color"] = f'"{self.border}"'
        if self.peripheries != 1:
            out["peripheries"] = str(self.peripheries)
        if self.margin:
            out["margin"] = f'"{self.margin}"'
        return out


INPUT = Look("input", "ellipse", "#c7e9c0", border="#238b45")
LAYER = Look("layer", "box", "#ffffff", "rounded,filled")
FROZEN = Look("frozen (trainable: false)", "box", "#e0e0e0", "rounded,filled,dashed", "#888888")
OUTPUT = Look("output (loss × weight)", "box", "#dadaeb", "rounded,filled,bold", "#54278f", peripheries=2)
CLUSTER = Look("block instance (folded)", "box3d", "#fff7bc", "filled", "#8c6d31")
SUBMODEL = Look("sub-model (model node)", "component", "#deebf7", "filled", "#3f5f8f")
#: A node or edge named by a problem of a spec drawn with errors (``render`` of a broken spec).
ERROR = Look("error (its message in the node)", "box", "#fee0d2", "rounded,filled,bold", "#cb181d")
#: N repeated parallel branches drawn as one box (``--unfold`` draws them all).
REPEAT = Look("×N repeated branches (folded)", "box3d", "#e5f5e0", "filled", "#31a354")
SUBMODEL_FROZEN = Look("frozen sub-model", "component", "#e0e0e0", "filled,dashed", "#888888")

#: Merge modes without a look of their own (``MergeRule.look``) get this one.
MERGE_DEFAULT = Look("merge", "parallelogram", "#f0f0f0", border="#525252", glyph="⊛")


def _merge_look(mode: str, look: MergeLook) -> Look:
    return Look(mode, look.shape, look.fill, look.style, look.border, look.glyph, margin=look.margin)


#: One look per merge mode, from its rule (``vocab/merges.py``): a distinct shape, colour and glyph each.
MERGE_LOOKS: Mapping[str, Look] = {
    mode: _merge_look(mode, rule.look) for mode, rule in MERGES.items() if rule.look is not None
}
#: Merges whose result depends on the order of their inputs (``ordered_inputs``): edges get #1, #2...
ORDERED_MERGES = frozenset(mode for mode, rule in MERGES.items() if rule.ordered_inputs)

#: Shared layers take these (fill, line) pairs in order of their sorted ids (then repeat).
SHARED_PALETTE = (
    ("#8dd3c7", "#1b7e6f"), ("#fb8072", "#b2182b"), ("#80b1d3", "#2166ac"),
    ("#fdb462", "#b35806"), ("#b3de69", "#4d9221"), ("#bc80bd", "#762a83"),
    ("#ffed6f", "#8c7a00"), ("#fccde5", "#c51b7d"), ("#a6cee3", "#1f78b4"),
    ("#ccebc5", "#35978f"), ("#e5c494", "#8c510a"), ("#ff9da7", "#d6604d"),
)  # fmt: skip

#: Config keys shown when a layer rule names none (first ones win).
FALLBACK_KEYS = (
    "units", "filters", "kernel_size", "strides", "pool_size", "size", "output_dim",
    "target_shape", "dims", "n", "rate", "axis", "num_heads", "key_dim", "layer",
    "return_sequences", "activation",
)  # fmt: skip
MAX_KEYS = 5


def merge_look(mode: str) -> Look:
    """The look of a merge node of ``mode`` (MERGE_DEFAULT for a mode without one)."""
    return MERGE_LOOKS.get(mode, MERGE_DEFAULT)


def shared_look(index: int, name: str, frozen: bool) -> Look:
    """The look of every call of the ``index``-th shared layer (sorted by id)."""
    fill, line = SHARED_PALETTE[index % len(SHARED_PALETTE)]
    style = "filled,bold,dashed" if frozen else "filled,bold"
    return Look(name, "box", fill, style, line)


def fmt_value(value: Any) -> str:
    """A config value as a reader expects it: ``3``, ``relu``, ``(3, 3)``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(fmt_value(v) for v in value) + ")"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def key_config(config: Mapping[str, Any], keys: Sequence[str], params: Mapping[str, Param]) -> str:
    """``filters=16, kernel_size=3, activation=relu, padding=same`` for the keys worth showing.

    The rule's summary keys come first; then every other key written with a
    value that differs from its default (``padding="same"`` on a pooling
    layer, ``dilation_rate=2``), so nothing that changes the layer is hidden
    because its rule did not name it.

    Args:
        config: the node's config as written in the spec.
        keys: the rule's summary keys (empty: FALLBACK_KEYS).
        params: the rule's parameters, to hide values equal to their default.

    Returns:
        The escaped line ("" when nothing is worth showing).
    """
    shown = []
    first = tuple(keys or FALLBACK_KEYS)
    for key in (*first, *(k for k in config if k not in first)):
        if key not in config:
            continue
        value = config[key]
        param = params.get(key)
        if param is not None and not param.required and value == param.default:
            continue
        if param is None and key not in first:
            continue  # an unknown key: the check reported it; not the reader's concern here
        shown.append(f"{esc(key)}={esc(fmt_value(value), 32)}")
        if len(shown) == MAX_KEYS:
            break
    return ", ".join(shown)


def fmt_dims(shape: Sequence[int | None]) -> str:
    """``(None, 30, 30, 16)``: batch and unknown axes as None, as Keras prints them."""
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def table(rows: Sequence[str], border: str = "0") -> str:
    """An HTML-like label from already-escaped rows (each a <TD> content)."""
    cells = "".join(f"<TR><TD>{r}</TD></TR>" for r in rows if r)
    return f'<<TABLE BORDER="{border}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'


def small(text: str, colour: str = "#444444") -> str:
    if not text:
        return ""  # Graphviz refuses an empty <FONT> element
    return f'<FONT POINT-SIZE="9" COLOR="{colour}">{text}</FONT>'


def legend(looks: Sequence[Look], notes: Sequence[str], per_row: int = 6) -> str:
    """The legend's rows: one swatch per look used in this diagram, then notes.

    Args:
        looks: the looks present, in display order.
        notes: escaped lines explaining the other marks.
        per_row: swatches per row.

    Returns:
        Escaped <TR> rows for the title table.
    """
    swatches = []
    for look in looks:
        what = f"{look.glyph} {look.name}" if look.glyph else look.name
        dashed = "dashed" in look.style
        style = ' STYLE="dashed"' if dashed else ' STYLE="rounded"'
        swatches.append(
            f'<TD BGCOLOR="{look.fill}" COLOR="{look.border}" BORDER="1"{style}>'
            f"{small(f'{esc(what)} <I>({esc(look.shape)})</I>', '#000000')}</TD>"
        )
    rows = []
    for i in range(0, len(swatches), per_row):
        chunk = swatches[i : i + per_row]
        rows.append(
            '<TR><TD><TABLE BORDER="0" CELLSPACING="4" CELLPADDING="3"><TR>'
            + "".join(chunk)
            + "</TR></TABLE></TD></TR>"
        )
    rows.extend(f"<TR><TD>{small(n)}</TD></TR>" for n in notes)
    return "".join(rows)


def params_text(trainable: int, non_trainable: int, frozen: bool = False) -> str:
    """``448 params``, with the non-trainable share unless the whole layer is frozen."""
    total = trainable + non_trainable
    if not total:
        return ""
    if non_trainable and not frozen:
        return f"{total:,} params ({non_trainable:,} non-trainable)"
    return f"{total:,} params"


def doc_rows(node: Mapping[str, Any]) -> list[str]:
    """A node's ``doc``, wrapped to two short italic lines (escaped)."""
    doc = node.get("doc")
    if not isinstance(doc, str) or not doc.strip():
        return []
    return [small(f"<I>{line}</I>", "#555555") for line in wrap(doc, 34, 2)]


def output_label(name: str, out: Mapping[str, Any], extra: Sequence[str] = ()) -> str:
    """An output's label: name, loss × loss weight, metrics, doc, then ``extra`` (escaped rows)."""
    rows = [f"<B>{esc(name)}</B>", "output"]
    if out.get("loss"):
        loss = esc(objective_text(out["loss"]), 60)
        rows.append(small(f"loss {loss} × {esc(out.get('loss_weight', 1.0))}", "#000000"))
    metrics = out.get("metrics")
    if isinstance(metrics, list) and metrics:
        rows.append(small("metrics " + esc(", ".join(objective_text(m) for m in metrics), 60)))
    return table(rows + doc_rows(out) + list(extra))


def layer_rows(layer: Mapping[str, Any]) -> tuple[str, str]:
    """(op name, key config line) of a layer or shared-layer definition."""
    op = str(layer.get("layer", "?"))
    rule = LAYERS.get(op)
    keys = rule.summary_keys if rule else ()
    params = rule.param_index if rule else {}
    return esc(op), key_config(layer.get("config") or {}, keys, params)


@dataclass(frozen=True)
class _Node:
    """What every node-kind handler reads: the node, its inferred info, its shape text."""

    info: NodeInfo
    spec: Mapping[str, Any]
    shape: str  # escaped
    shared: Mapping[str, Any]
    calls: Mapping[str, int]

    @property
    def frozen(self) -> bool:
        return self.spec.get("trainable", True) is False


def _input_rows(n: _Node) -> tuple[Look, list[str]]:
    return INPUT, [f"input · {esc(n.info.op)}", n.shape]


def _merge_rows(n: _Node) -> tuple[Look, list[str]]:
    mode = str(n.spec.get("merge", n.info.op))
    look = merge_look(mode)
    rule = MERGES.get(mode)
    keys = key_config(n.spec.get("config") or {}, rule.summary_keys if rule else (), rule.param_index if rule else {})
    params = params_text(n.info.trainable, n.info.non_trainable)
    return look, [f"<B>{esc(look.glyph)} {esc(mode)}</B>", small(keys), " · ".join(x for x in (n.shape, params) if x)]


def _shared_rows(n: _Node) -> tuple[Look, list[str]]:
    sid = str(n.info.shared)
    layer = n.shared.get(sid) or {}
    if sid not in n.calls:  # a weightless layer of a shared-weights block: nothing shared to show
        return _layer_rows(_Node(n.info, layer, n.shape, n.shared, n.calls))
    op, keys = layer_rows(layer)
    frozen = layer.get("trainable", True) is False
    count = n.calls[sid]
    look = shared_look(sorted(n.calls).index(sid), f"shared {sid} ×{count}", frozen)
    info = n.info
    weights = params_text(info.trainable, info.non_trainable, frozen) if info.call == 1 else "weights of call 1"
    return look, [
        f"<B>{esc(sid)} ×{count}: call {info.call}</B>",
        f"shared {op}" + (" · frozen" if frozen else ""),
        small(keys),
        " · ".join(x for x in (n.shape, esc(weights)) if x),
    ]


def _model_rows(n: _Node) -> tuple[Look, list[str]]:
    params = params_text(n.info.trainable, n.info.non_trainable, n.frozen)
    return (SUBMODEL_FROZEN if n.frozen else SUBMODEL), [
        f"model · {esc(n.info.op)}" + (" · frozen" if n.frozen else ""),
        " · ".join(x for x in (n.shape, params) if x),
    ]


def _layer_rows(n: _Node) -> tuple[Look, list[str]]:
    op, keys = layer_rows(n.spec)
    params = params_text(n.info.trainable, n.info.non_trainable, n.frozen)
    return (FROZEN if n.frozen else LAYER), [
        op + (" · frozen" if n.frozen else ""),
        small(keys),
        " · ".join(x for x in (n.shape, params) if x),
    ]


#: How each kind of node is drawn (a ``layer`` node by default).
_NODE_ROWS = {"input": _input_rows, "merge": _merge_rows, "shared": _shared_rows, "model": _model_rows}


def node_label(
    name: str,
    info: NodeInfo,
    spec: Mapping[str, Any],
    shared: Mapping[str, Any],
    calls: Mapping[str, int],
    extra: Sequence[str] = (),
) -> tuple[Look, str]:
    """How to draw one graph node, and its label.

    Args:
        name: the id to show (without the enclosing block instance's prefix).
        info: what the checker inferred for it.
        spec: its JSON object.
        shared: the spec's shared layers by id.
        calls: the number of calls of each shared layer drawn as shared (one
            with weights); a call of any other is drawn as a plain layer.
        extra: escaped rows added at the end (a problem's message).

    Returns:
        (look, HTML-like label) with every user string escaped.
    """
    node = _Node(info, spec, esc(fmt_dims(info.shape)), shared, calls)
    look, rows = _NODE_ROWS.get(info.kind, _layer_rows)(node)
    return look, table([f"<B>{esc(name)}</B>", *rows, *doc_rows(spec), *extra])


def edge_label(ref: Ref, shape: str, mode: str | None, port: bool = False) -> str:
    """An edge's label, only when it says what the source node does not ("" for a plain edge).

    Args:
        ref: the reference the edge draws.
        shape: the escaped shape the edge carries (shown only after a port,
            or as a broadcast's ``broadcast_text``).
        mode: the merge mode of the node the edge enters, if any.
        port: the reference names an output port (``lstm.2``): ``shape`` is
            ``.2 (None, 32)``, which the node cannot show.

    Returns:
        An HTML-like label (``<gate>``, ``<#2>``, ``<.2 (None, 32)>``) or "".
    """
    slot = ref.slot
    parts = []
    if slot and isinstance(slot[0], str):  # a named input: gate, experts[1], query...
        parts.append(esc(slot[0]) + (f"[{slot[1]}]" if len(slot) > 1 else ""))
    elif slot and mode is not None and (mode in ORDERED_MERGES or mode not in MERGES):
        parts.append(f"#{int(slot[0]) + 1}")
    if port or shape.startswith("broadcast "):
        parts.append(shape)
    return f"<{' '.join(parts)}>" if parts else ""


#: The legend's note when an element-wise merge broadcasts one of its inputs (``broadcast_text``).
BROADCAST_NOTE = "dashed edge: broadcast, an input stretched to the merge's shape (its 1s and missing axes repeated)"


def broadcast_text(shape: str, result: Sequence[int | None]) -> str:
    """``broadcast (None, 1, 1, 32) → (None, 7, 7, 32)``: an escaped input shape, stretched to ``result``."""
    return f"broadcast {shape} → {esc(fmt_dims(result))}"
