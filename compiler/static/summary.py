"""Summary: a per-node table of kinds, shapes and parameter counts (no TensorFlow)."""

from __future__ import annotations

from typing import Any

from ..errors import printable
from ..vocab.losses import objective_text
from ..vocab.rule import fmt_shape
from .check import Checked


def _size(params: int) -> str:
    size = params * 4.0
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return ""


def _op(checked: Checked, nid: str) -> str:
    info = checked.info[nid]
    if info.kind == "shared":
        return f"{info.op} ({info.shared} call {info.call})"
    return info.op


def summary_rows(checked: Checked) -> list[dict[str, Any]]:
    """One row per node in topological order: id, kind, op, shape, params."""
    rows = []
    for nid in checked.order:
        info = checked.info[nid]
        rows.append(
            {
                "id": nid,
                "kind": info.kind,
                "op": _op(checked, nid),
                "shape": list(info.shape),
                "trainable": info.trainable,
                "non_trainable": info.non_trainable,
                "inputs": [r.source for r in checked.graph.nodes[nid]["refs"]],
            }
        )
    return rows


def format_summary(checked: Checked) -> str:
    """The table ``fusec summary`` prints."""
    header = ("node", "kind", "op", "output shape", "params", "inputs")
    lines = [
        (
            r["id"],
            r["kind"],
            r["op"],
            fmt_shape(r["shape"]),
            f"{r['trainable'] + r['non_trainable']:,}",
            ", ".join(r["inputs"]),
        )
        for r in summary_rows(checked)
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def fmt(cells: tuple[str, ...]) -> str:
        parts = [c.rjust(w) if i == 4 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    rule = "-" * len(fmt(header))
    t = checked.totals
    outs = checked.doc["outputs"]
    out_lines = [
        f"  {name} <- {o['from']} {fmt_shape(checked.shapes.of(o['from']))}"
        + (f"  loss {objective_text(o['loss'])} x {o.get('loss_weight', 1)}" if o.get("loss") else "")
        + (f"  metrics {', '.join(objective_text(m) for m in o['metrics'])}" if o.get("metrics") else "")
        for name, o in outs.items()
    ]
    return "\n".join(
        [
            f"Model: {checked.name}  ({printable(checked.spec.file)})",
            rule,
            fmt(header),
            rule,
            *(fmt(line) for line in lines),
            rule,
            f"Total params: {t.params:,} ({_size(t.params)})",
            f"Trainable params: {t.trainable:,} ({_size(t.trainable)})",
            f"Non-trainable params: {t.non_trainable:,} ({_size(t.non_trainable)})",
            "Outputs:",
            *out_lines,
        ]
    )
