"""The one harness every benchmark uses: child processes, interleaved runs, medians, ratios, the table.

Side by side means interleaved in one run: the sides of a comparison
alternate A B B A ... (``interleave``), so the machine's drift hits all of
them; every value is a median with half its interquartile range (±), every
ratio a ratio of medians with the spread of the paired ratios. Each
benchmark returns ``Row``s; ``print_rows`` prints the table and
``markdown_rows`` the one docs/benchmarks.md records.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO, TypeVar

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
FUSEC_BIN = str(Path(sys.executable).with_name("fusec"))
QUIET_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
RESULTS = ROOT / "bench" / "results"
#: the hand-written Keras scripts (bench/handwritten/) and the specs they build, by hand
SCENARIOS = (
    ("image+tag classifier", "specs/image_tag.json", "bench/handwritten/seed000.py"),
    ("multi-task shared head", "specs/multitask_shared.json", "bench/handwritten/seed002.py"),
    ("gated experts", "specs/gated_experts.json", "bench/handwritten/seed003.py"),
)

T = TypeVar("T")


def fusec(*args: str) -> list[str]:
    """The command line of ``fusec ARGS``, as a user runs it."""
    return [FUSEC_BIN, *args]


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
    """Run ``cmd``: wall seconds, peak RSS (``wait4``) and output; killed after ``timeout`` seconds."""
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


def interleave(sides: Sequence[Callable[[], T]], repeats: int, warmup: int = 0) -> list[list[T]]:
    """Run every side ``repeats`` times, in order then in reverse (A B, B A, ...); samples per side.

    Args:
        sides: the measurements, each one call giving one sample.
        repeats: rounds; each round calls every side once.
        warmup: rounds run first and thrown away (file caches, tracing).

    Returns:
        One list of samples per side, in the order of ``sides``.
    """
    for _ in range(warmup):
        for side in sides:
            side()
    samples: list[list[T]] = [[] for _ in sides]
    order = list(range(len(sides)))
    for r in range(repeats):
        for i in order if r % 2 == 0 else reversed(order):
            samples[i].append(sides[i]())
    return samples


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def half_iqr(xs: Sequence[float]) -> float:
    """Half the interquartile range (with fewer than 4 samples, half the full range)."""
    if len(xs) >= 4:
        q = statistics.quantiles(xs, n=4)
        return (q[2] - q[0]) / 2
    return (max(xs) - min(xs)) / 2 if len(xs) > 1 else 0.0


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a[i] / b[i] for interleaved pairs (both sides of one pair saw the same machine state)."""
    return [x / y for x, y in zip(a, b, strict=True)]


@dataclass
class Row:
    """One line of the table: a fusec measurement, its baseline, and their ratio.

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
        a, b = (self.fusec, self.base) if self.ratio_kind == "f/b" else (self.base, self.fusec)
        return half_iqr(paired_ratios(a, b))

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
        computed = ("ratio", "ratio_spread", "target", "met", "verdict")
        doc: dict[str, object] = {k: v for k, v in self.__dict__.items() if k != "extra"}
        doc.update({k: getattr(self, k) for k in computed})
        if self.extra:
            doc["extra"] = self.extra
        return doc


def row_from_json(d: dict[str, Any]) -> Row:
    """The inverse of ``Row.to_json`` (computed fields are recomputed)."""
    keep = ("group", "name", "fusec", "base", "unit", "ratio_kind", "lo", "hi", "note", "higher_is_better", "extra")
    return Row(**{k: d[k] for k in keep if k in d})


def write_rows(rows: Sequence[Row], path: str | Path | None) -> None:
    """Write rows as JSON (nothing when ``path`` is None)."""
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


_KINDS = {"f/b": "fusec/base", "b/f": "base/fusec", "exp": "exponent"}


def _cells(r: Row, markdown: bool) -> tuple[str, ...]:
    """One row's cells: benchmark, fusec, baseline, ratio, target, verdict."""
    kind = _KINDS.get(r.ratio_kind, "")
    if not r.fusec:
        ratio = "-"
    elif not r.base:  # judged on its own: a fitted exponent, or a value in its unit (seconds, MB) against a target
        ratio = f"{r.ratio:.2f} ({kind})" if r.unit in ("", "exp") else "-"
    else:
        ratio = f"{r.ratio:.3f} ±{r.ratio_spread:.3f} ({kind})"
    target = r.target.replace("<=", "≤").replace(">=", "≥") if markdown else r.target
    return (f"{r.group}: {r.name}", fmt_value(r.fusec, r.unit), fmt_value(r.base, r.unit), ratio, target, r.verdict)


def print_rows(rows: Sequence[Row], file: TextIO | None = None) -> None:
    """The table: row, fusec median ±spread, baseline median ±spread, ratio ±spread, target, met."""
    out = file or sys.stdout
    header = ("benchmark", "fusec", "baseline", "ratio", "target", "met")
    lines = [_cells(r, markdown=False) for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header), file=out)
    print("-" * (sum(widths) + 2 * (len(widths) - 1)), file=out)
    for line in lines:
        print(fmt.format(*line), file=out)
    notes = [f"  {r.group}: {r.name}: {r.note}" for r in rows if r.note]
    if notes:
        print("notes:\n" + "\n".join(notes), file=out)


def markdown_rows(rows: Sequence[Row]) -> str:
    """The table as Markdown, as docs/benchmarks.md records it."""
    out = ["| benchmark | fusec | baseline | ratio | target | verdict |", "|---|---:|---:|---:|---|---|"]
    out += ["| " + " | ".join(_cells(r, markdown=True)) + " |" for r in rows]
    return "\n".join(out)


def tensorflow_on(device: str) -> tuple[Any, Any, str, str]:
    """Import TensorFlow for one device (CPU hidden from CUDA before the import).

    Returns:
        ``(keras, tf, where, label)``: the modules, the ``tf.device`` string and
        ``cpu`` or ``gpu: NAME`` for row groups.

    Raises:
        SystemExit: ``device`` is ``gpu`` but TensorFlow sees none.
    """
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    from fusec.keras.tf import import_keras

    keras = import_keras()
    import tensorflow as tf

    if device == "cpu":
        return keras, tf, "/CPU:0", "cpu"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise SystemExit("error: --gpu but TensorFlow sees no GPU")
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return keras, tf, "/GPU:0", f"gpu: {name}"


def machine() -> str:
    """One line: architecture, cores, Python, OS."""
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def _first(path: str, prefix: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    return None


def environment() -> dict[str, str]:
    """Machine and versions, without importing TensorFlow."""
    env: dict[str, str] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("tensorflow", "tensorflow-cpu", "keras", "fusec", "jsonschema", "networkx"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            env[dist] = metadata.version(dist)
    env["cpu"] = f"{_first('/proc/cpuinfo', 'model name') or platform.processor() or 'unknown'}, {os.cpu_count()} cores"
    mem = _first("/proc/meminfo", "MemTotal")
    if mem:
        env["memory"] = f"{int(mem.split()[0]) / 1024 / 1024:.1f} GiB"
    dot = shutil.which("dot")
    if dot:
        proc = subprocess.run([dot, "-V"], capture_output=True, text=True)
        env["graphviz"] = (proc.stderr or proc.stdout).strip()
    env["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return env
