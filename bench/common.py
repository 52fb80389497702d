"""Helpers for side-by-side benchmarks: interleaved runs, medians, spreads."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
FUSEC = str(Path(sys.executable).with_name("fusec"))


def timed_cmd(cmd: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one subprocess run; raise if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return elapsed


def interleave(a: Callable[[], float], b: Callable[[], float], repeats: int) -> tuple[list[float], list[float]]:
    """Run a and b alternately (a, b, b, a, ...) so drift in the machine hits both."""
    ta, tb = [], []
    for i in range(repeats):
        if i % 2 == 0:
            ta.append(a())
            tb.append(b())
        else:
            tb.append(b())
            ta.append(a())
    return ta, tb


def spread(samples: list[float]) -> str:
    """Median with the interquartile half-range, e.g. ``1.23 s ±0.04``."""
    med = statistics.median(samples)
    if len(samples) >= 4:
        q = statistics.quantiles(samples, n=4)
        return f"{med:.3f} ±{(q[2] - q[0]) / 2:.3f}"
    return f"{med:.3f}"


def ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(a) / statistics.median(b)


def machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.machine()} {cpus} cores, Python {platform.python_version()}, {platform.system()}"
