"""Shared pieces of the benchmarks: timed child processes, paired statistics, result rows.

``common.py`` holds the first helpers (interleaving, ``spread``); this module
adds what the table of ``run_all.py`` needs: peak memory of a child process,
timeouts, the spread of paired ratios, and one ``Row`` type every benchmark
returns.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
FUSEC_BIN = str(Path(sys.executable).with_name("fusec"))
QUIET_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

# ``fusec render`` through the CLI group, also before cli.py registers the command.
_RENDER_SHIM = (
    "from fusec.cli import cli, main\n"
    "from fusec.cli.render import render_command\n"
    "cli.commands.setdefault('render', render_command)\n"
    "main()"
)


def fusec(*args: str) -> list[str]:
    """The command line of ``fusec ARGS`` (``render`` through a shim while cli.py lacks it)."""
    if args and args[0] == "render" and not _render_registered():
        return [PY, "-c", _RENDER_SHIM, *args]
    return [FUSEC_BIN, *args]


_registered: bool | None = None


def _render_registered() -> bool:
    global _registered
    if _registered is None:
        proc = subprocess.run([FUSEC_BIN, "render", "--help"], capture_output=True, text=True)
        _registered = proc.returncode == 0
    return _registered


@dataclass
class Child:
    """One finished child process."""

    seconds: float
    peak_kb: int  # largest resident set of the child or any child it waited for
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_child(cmd: Sequence[str], timeout: float | None = None, env: dict[str, str] | None = None) -> Child:
    """Run ``cmd``; wall seconds, peak RSS (``wait4``) and output. Killed after ``timeout`` seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env or QUIET_ENV)
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            proc.kill()

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if timer:
            timer.cancel()
        killed = fired.is_set() and os.WIFSIGNALED(status)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(
            elapsed,
            int(usage.ru_maxrss),
            None if killed else proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def checked_child(cmd: Sequence[str], timeout: float | None = None) -> Child:
    """``run_child`` that raises on a failure, with the end of the child's stderr."""
    child = run_child(cmd, timeout)
    if child.returncode is None:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... timed out after {timeout} s")
    if not child.ok:
        raise RuntimeError(f"{' '.join(cmd)} failed ({child.returncode}):\n{child.stderr[-2000:]}")
    return child


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def half_iqr(xs: Sequence[float]) -> float:
    """Half the interquartile range (0 with fewer than 4 samples... then half the full range)."""
    if len(xs) >= 4:
        q = statistics.quantiles(xs, n=4)
        return (q[2] - q[0]) / 2
    return (max(xs) - min(xs)) / 2 if len(xs) > 1 else 0.0


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a[i] / b[i] for interleaved pairs (both sides of one pair saw the same machine state)."""
    return [x / y for x, y in zip(a, b, strict=True)]


@dataclass
class Row:
    """One line of the final table: a fusec measurement, its baseline, and their ratio.

    ``ratio`` is the ratio of the medians, in the direction the target is
    written (``fusec / baseline`` for costs, ``baseline / fusec`` for
    speed-ups); ``ratio_spread`` is half the IQR of the paired ratios.
    """

    group: str
    name: str
    fusec: list[float]
    base: list[float]
    unit: str
    ratio_kind: str  # "f/b", "b/f", or "exp" (a value without a baseline: a fitted exponent)
    lo: float | None = None
    hi: float | None = None
    note: str = ""
    higher_is_better: bool = False  # for a band: which side of it means fusec is faster
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        if not self.base:  # a value judged on its own (a fitted exponent)
            return median(self.fusec) if self.fusec else float("nan")
        f, b = median(self.fusec), median(self.base)
        return f / b if self.ratio_kind == "f/b" else b / f

    @property
    def ratio_spread(self) -> float:
        if not self.base:
            return half_iqr(self.fusec) if self.fusec else float("nan")
        if len(self.fusec) != len(self.base) or not self.fusec:
            return float("nan")
        pairs = (
            paired_ratios(self.fusec, self.base) if self.ratio_kind == "f/b" else paired_ratios(self.base, self.fusec)
        )
        return half_iqr(pairs)

    @property
    def target(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"{self.lo:g} to {self.hi:g}"
        if self.hi is not None:
            return f"<= {self.hi:g}"
        if self.lo is not None:
            return f">= {self.lo:g}"
        return "-"

    @property
    def met(self) -> bool | None:
        if self.lo is None and self.hi is None:
            return None
        r = self.ratio
        return (self.lo is None or r >= self.lo) and (self.hi is None or r <= self.hi)

    @property
    def verdict(self) -> str:
        """``met``, ``NOT MET``, ``-`` (no target), or ``faster`` for a parity band left on the good side."""
        met = self.met
        if met is None:
            return "-"
        if met:
            return "met"
        if self.lo is not None and self.hi is not None:
            faster = self.ratio > self.hi if self.higher_is_better else self.ratio < self.lo
            if faster:
                return "faster"
        return "NOT MET"

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "name": self.name,
            "unit": self.unit,
            "fusec": self.fusec,
            "base": self.base,
            "ratio_kind": self.ratio_kind,
            "ratio": self.ratio,
            "ratio_spread": self.ratio_spread,
            "lo": self.lo,
            "hi": self.hi,
            "higher_is_better": self.higher_is_better,
            "target": self.target,
            "met": self.met,
            "verdict": self.verdict,
            "note": self.note,
            **({"extra": self.extra} if self.extra else {}),
        }


def row_from_json(d: dict[str, Any]) -> Row:
    """The inverse of ``Row.to_json`` (computed fields are recomputed)."""
    keep = ("group", "name", "fusec", "base", "unit", "ratio_kind", "lo", "hi", "note", "higher_is_better", "extra")
    return Row(**{k: d[k] for k in keep if k in d})


def write_rows(rows: Sequence[Row], path: str | Path | None) -> None:
    """Write rows as JSON for run_all.py (nothing when ``path`` is None)."""
    if path:
        Path(path).write_text(json.dumps([r.to_json() for r in rows], indent=1))


def read_rows(path: str | Path) -> list[Row]:
    return [row_from_json(d) for d in json.loads(Path(path).read_text())]


def fmt_value(xs: Sequence[float], unit: str) -> str:
    """``median ±half-IQR`` with a unit-appropriate precision."""
    if not xs:
        return "-"
    m, s = median(xs), half_iqr(xs)
    if unit == "s":
        return f"{m:.3f} ±{s:.3f} s" if m < 10 else f"{m:.1f} ±{s:.1f} s"
    if unit == "ms":
        return f"{m:.3f} ±{s:.3f} ms"
    if unit == "µs":
        return f"{m:.0f} ±{s:.0f} µs"
    if unit == "":
        return f"{m:.2f}"
    if unit == "ex/s":
        return f"{m:,.0f} ±{s:,.0f} ex/s"
    return f"{m:.3g} ±{s:.2g} {unit}"


def print_rows(rows: Sequence[Row], file: TextIO | None = None) -> None:
    """The table: row, fusec median ±spread, baseline median ±spread, ratio ±spread, target, met."""
    out = file or sys.stdout
    header = ("benchmark", "fusec", "baseline", "ratio", "target", "met")
    lines = []
    for r in rows:
        met = r.verdict
        kind = {"f/b": " (fusec/base)", "b/f": " (base/fusec)", "exp": " (exponent)"}.get(r.ratio_kind, "")
        ratio = f"{r.ratio:.3f} ±{r.ratio_spread:.3f}{kind}" if r.fusec else "-"
        if r.fusec and not r.base:
            ratio = f"{r.ratio:.2f}{kind}"
        lines.append(
            (f"{r.group}: {r.name}", fmt_value(r.fusec, r.unit), fmt_value(r.base, r.unit), ratio, r.target, met)
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header), file=out)
    print("-" * (sum(widths) + 2 * (len(widths) - 1)), file=out)
    for line in lines:
        print(fmt.format(*line), file=out)


def markdown_rows(rows: Sequence[Row]) -> str:
    """The table as Markdown (for docs/benchmarks.md)."""
    out = ["| benchmark | fusec | baseline | ratio | target | verdict |", "|---|---:|---:|---:|---|---|"]
    for r in rows:
        kind = {"f/b": "fusec/base", "b/f": "base/fusec", "exp": "exponent"}.get(r.ratio_kind, "")
        ratio = f"{r.ratio:.2f}" if r.fusec and not r.base else f"{r.ratio:.3f} ±{r.ratio_spread:.3f}"
        cells = (f"{r.group}: {r.name}", fmt_value(r.fusec, r.unit), fmt_value(r.base, r.unit), f"{ratio} ({kind})")
        out.append("| " + " | ".join((*cells, r.target.replace("<=", "≤").replace(">=", "≥"), r.verdict)) + " |")
    return "\n".join(out)
