"""The memory budget: a compile that would exhaust memory is refused before TensorFlow is imported.

The parameter budget (``--max-params``) bounds a count; what kills a compile
is memory. An ``Embedding`` of 500,000,000 parameters is 2 GB of float32
weights, but compiling it peaks far higher: TensorFlow's own footprint, the
initializer's temporary copy of each variable, the optimizer's slots (which
``compile`` builds so the ``.keras`` archive can resume training), the copies
TensorFlow and h5py make while writing the SavedModel and the ``.keras``
archive. So the shapes stage, once the parameter count passes, estimates the
peak memory of ``fusec compile`` from the static counts and refuses a spec
whose estimate is over the budget, naming the biggest contributors.

The estimate (all in bytes; W: the variables, 4 bytes per parameter, or what
a sub-model archive stores when more; S: the optimizer's slots, per trainable
byte as many as the spec's optimizer keeps, 2 for Adam; L: what loading the
sub-model files holds in memory besides the variables)::

    resident      = 768 MiB + 6 W + 1.5 S + L     (peak RSS)
    address space = 1.5 GiB + 10 W + 1.5 S + L    (peak virtual memory)
    staging disk  = 3 W + S                       (SavedModel + .keras archive)

The constants are measured (``fusec compile`` of an Embedding-only model, the
worst case: one variable as large as the model, so the initializer's copy is
the whole model too; Keras 3.15, TensorFlow 2.21, CPU, Linux; peak RSS and
peak virtual size read from ``/proc/self/status`` at exit; MB = 10^6 bytes):

    ==========================  ========  =============  ===========  =======
    model                       W         peak RSS       peak virtual  staged
    ==========================  ========  =============  ===========  =======
    Embedding 100k, adam        0.4 MB    594 MB         1,476 MB     2 MB
    Embedding 10M, adam         40 MB     914 MB         1,944 MB     200 MB
    Embedding 50M, adam         200 MB    2,219 MB       3,574 MB     1,000 MB
    Embedding 50M, sgd          200 MB    1,619 MB       2,974 MB     600 MB
    2 x Dense 5000^2, adam      200 MB    2,020 MB       3,450 MB     1,000 MB
    2 x Dense 5000^2, sgd       200 MB    1,303 MB       2,334 MB     600 MB
    Embedding 150M, adam        600 MB    3,719 MB       7,095 MB     3,000 MB
    Embedding 150M, sgd         600 MB    3,719 MB       7,096 MB     1,800 MB
    Embedding 250M, adam        1,000 MB  5,720 MB       7,896 MB     5,000 MB
    Embedding 250M, sgd         1,000 MB  5,719 MB       7,896 MB     3,000 MB
    ==========================  ========  =============  ===========  =======

Each formula is above every measurement (by 7 % to 85 %; tests/test_archives.py
holds the table and checks it, and measures a compile against the estimate):
a model at the budget compiles.

The budget. Resident memory is checked against ``--max-memory`` when given,
else 80 % of the memory this process can have: the machine's physical memory,
or its cgroup's limit when lower (a container). A fixed number would refuse
models a large machine compiles easily, or let a small one run out; a
fraction of the machine is what ``compile`` can actually use there, with room
left for the rest of the system. Independently, when the process has an
address-space limit (``ulimit -v``, ``RLIMIT_AS``, or ``RLIMIT_DATA``), the
address-space estimate must fit under it: TensorFlow reserves far more
address space than it touches, and past the limit an allocation fails with
``MemoryError``. Nested specs are not checked on their own: their weights are
part of the outermost spec's estimate.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Problem

BYTES_PER_PARAM = 4  # fusec's variables are float32
#: The parameter budget (``--max-params``) when none is given: 2 GB of float32 weights.
DEFAULT_MAX_PARAMS = 500_000_000
BASE_RESIDENT = 768 << 20  # 640 MiB measured here; CI machines measured up to 10 MiB over the old 640
BASE_ADDRESS = 1536 << 20
RESIDENT_PER_BYTE = 6
ADDRESS_PER_BYTE = 10
SLOT_FACTOR = 1.5
STAGING_PER_BYTE = 3
DEFAULT_FRACTION = 0.8
FALLBACK_BUDGET = 8 << 30  # when the machine's memory cannot be read

#: Optimizer slots per trainable variable (Keras builds them when the .keras archive is saved).
OPTIMIZER_SLOTS = {
    "adam": 2,
    "adamw": 2,
    "adamax": 2,
    "nadam": 2,
    "adadelta": 2,
    "ftrl": 2,
    "rmsprop": 1,
    "adagrad": 1,
    "lion": 1,
    "sgd": 0,
}


@dataclass(frozen=True)
class Estimate:
    """The static estimate of what compiling a checked spec takes.

    Attributes:
        params: the model's parameters.
        weight_bytes: its variables (W).
        slot_bytes: its optimizer's slots (S).
        load_bytes: what loading sub-model files holds besides the variables (L).
        resident: the peak resident memory.
        address: the peak address space.
        staging: the bytes the compile writes to its staging folder.
        biggest: (node description, bytes) of the largest contributors, largest first.
    """

    params: int
    weight_bytes: int
    slot_bytes: int
    load_bytes: int
    resident: int
    address: int
    staging: int
    biggest: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Budget:
    """A limit in bytes and where it comes from (for messages)."""

    bytes: int
    source: str


def fmt_bytes(n: float) -> str:
    """``1.9 GiB``, ``640 MiB``, ``12 KiB``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{int(n)} bytes"


def parse_size(text: str) -> int:
    """A size for ``--max-memory``: bytes, or a number with K, M, G, T or P (powers of 1024; ``8G``, ``512MiB``).

    Raises:
        ValueError: not a positive finite size.
    """
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    for suffix, shift in (("K", 10), ("M", 20), ("G", 30), ("T", 40), ("P", 50)):
        if raw.endswith(suffix):
            raw, factor = raw[:-1], 1 << shift
            break
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (write bytes, or a number with K, M, G, T or P)") from None
    if not value > 0 or value == float("inf") or int(value * factor) < 1:
        raise ValueError(f"not a positive size: {text!r}")
    return int(value * factor)


def estimate(shapes: Any, optimizer: str = "adam") -> Estimate:
    """The memory and disk a compile of this model takes, from its static counts.

    Args:
        shapes: the shapes stage's record (``shapes.Shapes``): parameters per
            node, and the resolved sub-models, whose archives may store more.
        optimizer: the spec's optimizer, whose state is counted.
    """
    slots = OPTIMIZER_SLOTS.get(str(optimizer), 2)
    weights = trainable = load = params = 0
    parts: list[tuple[str, int]] = []
    for nid, node in shapes.info.items():
        size = node.params * BYTES_PER_PARAM
        extra = 0
        call = shapes.models.get(nid)
        if call is not None:
            sub = call.sub
            size = max(size, int(getattr(sub, "weight_bytes", 0)))
            extra = int(getattr(sub, "load_bytes", 0))
        params += node.params
        weights += size
        trainable += node.trainable * BYTES_PER_PARAM
        load += extra
        if size + extra:
            parts.append((f"node `{nid}` ({node.op}, {node.params:,} parameters)", size + extra))
    slot_bytes = slots * trainable
    parts.sort(key=lambda p: -p[1])
    parts = [p for p in parts if p[1] * 100 >= weights + load]  # at least 1 % of the whole
    return Estimate(
        params,
        weights,
        slot_bytes,
        load,
        int(BASE_RESIDENT + RESIDENT_PER_BYTE * weights + SLOT_FACTOR * slot_bytes + load),
        int(BASE_ADDRESS + ADDRESS_PER_BYTE * weights + SLOT_FACTOR * slot_bytes + load),
        STAGING_PER_BYTE * weights + slot_bytes,
        tuple(parts[:3]),
    )


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def machine_memory() -> tuple[int, str] | None:
    """The memory this process can have: physical memory, or its cgroup's limit when lower."""
    found: list[tuple[int, str]] = []
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if total > 0:
            found.append((total, f"this machine's {fmt_bytes(total)}"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        limit = _read_int(path)
        if limit is not None and limit < 1 << 60:
            found.append((limit, f"this container's limit of {fmt_bytes(limit)}"))
    return min(found) if found else None


def default_budget() -> Budget:
    """80 % of the memory this process can have (8 GiB when it cannot be read)."""
    mem = machine_memory()
    if mem is None:
        return Budget(FALLBACK_BUDGET, f"fusec's default of {fmt_bytes(FALLBACK_BUDGET)}")
    return Budget(int(mem[0] * DEFAULT_FRACTION), f"{DEFAULT_FRACTION:.0%} of {mem[1]}")


def address_limit() -> Budget | None:
    """This process's address-space (or data-segment) limit, when one is set."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    found = []
    for name, what in (("RLIMIT_AS", "address-space"), ("RLIMIT_DATA", "data-segment")):
        which = getattr(resource, name, None)
        if which is None:
            continue
        soft, _ = resource.getrlimit(which)
        if soft != resource.RLIM_INFINITY and soft > 0:
            found.append(Budget(soft, f"this process's {what} limit of {fmt_bytes(soft)} (ulimit -v)"))
    return min(found, key=lambda b: b.bytes) if found else None


def memory_problems(shapes: Any, optimizer: str = "adam", max_memory: int | None = None) -> list[Problem]:
    """A ``budget`` problem when compiling the model would not fit in memory; else none."""
    est = estimate(shapes, optimizer)
    budget = Budget(max_memory, f"--max-memory {fmt_bytes(max_memory)}") if max_memory else default_budget()
    problems = []
    biggest = "; ".join(f"{what}: {fmt_bytes(n)}" for what, n in est.biggest) or "none"
    what = (
        f"its {est.params:,} parameters take {fmt_bytes(est.weight_bytes)}"
        + (f", and {fmt_bytes(est.slot_bytes)} more for the optimizer's state" if est.slot_bytes else "")
        + f"; biggest: {biggest}"
    )
    if est.resident > budget.bytes:
        problems.append(
            Problem(
                (),
                f"compiling this model needs about {fmt_bytes(est.resident)} of memory ({what}), "
                f"over the memory budget of {fmt_bytes(budget.bytes)} ({budget.source})",
                "shrink the biggest layers (or lower --max-params to catch them); raise the budget with "
                "--max-memory only on a machine with that much memory",
                "budget",
            )
        )
    limit = address_limit()
    if limit is not None and est.address > limit.bytes:
        problems.append(
            Problem(
                (),
                f"compiling this model needs about {fmt_bytes(est.address)} of address space ({what}), "
                f"over {limit.source}",
                "shrink the biggest layers, or raise the limit (ulimit -v) for fusec compile",
                "budget",
            )
        )
    return problems


def disk_problem(est: Estimate, folder: str | Path) -> str | None:
    """Why the staging folder cannot take the compile's artifacts, or None (free space unknown counts as room)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    need = est.staging + (16 << 20)
    if need > free:
        return (
            f"compiling needs about {fmt_bytes(need)} of disk in `{folder}` for the SavedModel and the "
            f".keras archive; {fmt_bytes(free)} is free"
        )
    return None
