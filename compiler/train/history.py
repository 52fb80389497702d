"""The training record: ``history.json`` and a plot of the loss and metric curves."""

from __future__ import annotations

import io
import json
import math
from typing import Any

#: One finished epoch: metric name -> value; Keras's names (``loss``, ``<output>_loss``,
#: ``<output>_<metric>``, and the same with ``val_`` for validation), plus ``epoch`` (from 1).
Epoch = dict[str, float]


def history_json(epochs: list[Epoch], summary: dict[str, Any]) -> bytes:
    """``history.json``: the run's summary and one object per epoch, in order."""
    names = sorted({k for e in epochs for k in e if k != "epoch"}, key=_order)
    payload = {**summary, "metrics": names, "epochs": epochs}
    return (json.dumps(payload, indent=1, allow_nan=False, default=_finite) + "\n").encode()


def _finite(value: Any) -> Any:
    raise TypeError(f"not JSON: {value!r}")


def clean(logs: dict[str, float]) -> dict[str, float | None]:
    """Metric values as JSON can hold them (a NaN or infinite loss becomes null)."""
    return {k: (v if math.isfinite(v) else None) for k, v in logs.items()}


def _order(name: str) -> tuple[int, str]:
    """Loss first, then the rest; validation after its training twin."""
    base = name.removeprefix("val_")
    return (0 if base == "loss" else 1, base + ("~" if name.startswith("val_") else ""))


def families(epochs: list[Epoch]) -> list[str]:
    """The curves to draw: each training metric (its validation twin shares its axes)."""
    names = {k for e in epochs for k in e if k != "epoch"}
    bases = {n.removeprefix("val_") for n in names}
    return sorted(bases, key=_order)


def plot_png(epochs: list[Epoch], title: str) -> bytes:
    """A PNG with one panel per metric: training and validation against the epoch."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = families(epochs) or ["loss"]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    xs = [int(e["epoch"]) for e in epochs]
    for ax, name in zip(axes.flat, names, strict=False):
        for key, label, style in ((name, "training", "-o"), (f"val_{name}", "validation", "--s")):
            ys = [e.get(key) for e in epochs]
            if any(y is not None for y in ys):
                ax.plot(xs, [math.nan if y is None else y for y in ys], style, markersize=3, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def best_epoch(epochs: list[Epoch]) -> int | None:
    """The epoch (from 1) with the lowest ``val_loss``; None without validation."""
    scored = [(e["val_loss"], int(e["epoch"])) for e in epochs if e.get("val_loss") is not None]
    return min(scored)[1] if scored else None


def kept_metrics(epochs: list[Epoch], best: int | None) -> dict[str, Any]:
    """The metrics of the epoch whose weights are kept: ``best``, else the last."""
    if not epochs:
        return {}
    chosen = next((e for e in epochs if int(e["epoch"]) == best), epochs[-1])
    return dict(chosen)


def describe_source(source: Any) -> dict[str, Any]:
    """The training record's view of a data source: its files, format, hash and size."""
    return {
        "path": [str(p) for p in source.paths],
        "format": source.format,
        "sha256": source.sha256,
        "examples": source.count,
    }
