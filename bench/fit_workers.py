"""Two `fusec fit` workers on localhost against one process: what multi-worker training costs here.

Both sides run the command a user runs, ``fusec fit SPEC --data D --epochs
N --batch-size B -o OUT --json``, on the same generated ``.npz`` and
epochs. The two-worker side starts two such processes at once, each with
``TF_CONFIG`` naming both (``{"cluster": {"worker": [two localhost
ports]}, "task": {"type": "worker", "index": i}}``), so they train with
``MultiWorkerMirroredStrategy`` (the batch size is the global batch: each
worker computes half of every batch, and the gradients are all-reduced
every step); the other side is one process without ``TF_CONFIG``. Runs
alternate. Figures: wall time end to end (start of the first process to
the exit of the last, start-up, data check and export included) and the
steady state, examples per second over epochs 2..N, timed from the chief's
``epoch k/N`` lines as they arrive on its stderr. No target: on a machine
with 2 shared cores two workers cannot be faster; the rows show that it
works and what it costs. The note gives each side's final loss and what
``--json`` reported (strategy, workers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fit_speed import EpochClock, steady, write_npz

from harness import QUIET_ENV, ROOT, Row, fusec, interleave, median

NAME = "fit_workers"
TITLE = "two fusec fit workers on localhost (MultiWorkerMirroredStrategy) vs one process   (recorded)"
SPEC = "specs/multitask_shared.json"
LABEL = "multi-task shared head"


@dataclass
class Worker:
    """One ``fusec fit`` process: its epoch-end times (from stderr), its JSON report, its exit status."""

    proc: subprocess.Popen[str]
    stdout: IO[str]
    clock: EpochClock = field(default_factory=EpochClock)
    stderr: list[str] = field(default_factory=list)
    report: dict[str, object] = field(default_factory=dict)

    def follow(self) -> threading.Thread:
        """Read stderr line by line as it comes, noting when each epoch line arrives."""

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.clock.write(line)
                self.stderr.append(line)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread


def free_ports(n: int) -> list[int]:
    """``n`` ports free on localhost now (held open together, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_configs(n: int) -> list[str | None]:
    """One ``TF_CONFIG`` per process (None: a single process, no cluster)."""
    if n == 1:
        return [None]
    hosts = [f"localhost:{p}" for p in free_ports(n)]
    return [json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}) for i in range(n)]


def _env(config: str | None) -> dict[str, str]:
    env = {k: v for k, v in QUIET_ENV.items() if k != "TF_CONFIG"}
    env["CUDA_VISIBLE_DEVICES"] = "-1"  # the CPU, on any machine: two workers would share one GPU
    if config is not None:
        env["TF_CONFIG"] = config
    return env


def _wait(workers: Sequence[Worker], start: float, timeout: float) -> None:
    """Wait for every process; kill them all at the timeout or as soon as one fails (its peer would wait forever)."""
    while any(w.proc.poll() is None for w in workers):
        failed = any(w.proc.returncode not in (None, 0) for w in workers)
        if failed or time.perf_counter() - start > timeout:
            for w in workers:
                w.proc.kill()
                w.proc.wait()
            if not failed:
                raise RuntimeError(f"fusec fit with {len(workers)} process(es) timed out after {timeout:.0f} s")
        time.sleep(0.01)


def launch(cmd: Sequence[str], configs: Sequence[str | None], timeout: float) -> tuple[float, list[Worker]]:
    """Start one process per config at once; wall seconds until the last exits, and the workers (chief first)."""
    with contextlib.ExitStack() as stack:
        workers = []
        start = time.perf_counter()
        for config in configs:
            out = stack.enter_context(tempfile.TemporaryFile("w+"))  # the JSON report; progress is on stderr
            proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.PIPE, text=True, env=_env(config))
            workers.append(Worker(proc, out))
        readers = [w.follow() for w in workers]
        _wait(workers, start, timeout)
        elapsed = time.perf_counter() - start
        for thread in readers:
            thread.join()
        for w in workers:
            if w.proc.returncode != 0:
                raise RuntimeError(f"fusec fit exited with {w.proc.returncode}:\n{''.join(w.stderr)[-2000:]}")
            w.stdout.seek(0)
            w.report = json.loads(w.stdout.read())
    return elapsed, workers


class Side:
    """Runs of ``n`` processes training on one file: each run's wall seconds, steady examples/s and report."""

    def __init__(self, n: int, data: Path, examples: int, batch: int, opts: argparse.Namespace, tmp: Path) -> None:
        self.n, self.examples, self.timeout = n, examples, opts.timeout
        self.out = tmp / f"out-{n}-{batch}"
        self.cmd = fusec("fit", str(ROOT / SPEC), "--data", str(data), "--epochs", str(opts.epochs))
        self.cmd += ["--batch-size", str(batch), "-o", str(self.out), "--json"]
        self.rates: list[float] = []
        self.reports: list[dict[str, object]] = []

    def __call__(self) -> float:
        """One run; returns its wall seconds (its examples/s and the chief's report are kept)."""
        shutil.rmtree(self.out, ignore_errors=True)
        seconds, workers = launch(self.cmd, tf_configs(self.n), self.timeout)
        chief = next(w for w in workers if w.report.get("chief"))
        self.rates.append(steady(chief.clock.ends, self.examples))
        self.reports.append(chief.report)
        return seconds

    def describe(self) -> str:
        """``2 processes: MultiWorkerMirroredStrategy, 2 workers, final loss 1.2345``."""
        first = self.reports[0] if self.reports else {}
        finals = [r.get("final") for r in self.reports]
        losses = [float(f["loss"]) for f in finals if isinstance(f, dict) and isinstance(f.get("loss"), (int, float))]
        loss = f"final loss {median(losses):.4f}" if losses else "no final loss"
        return f"{self.n} process(es): {first.get('strategy')}, {first.get('workers')} worker(s), {loss}"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--workers-repeats", type=int, help="runs per side (default 5; --quick 1)")
    group.add_argument("--workers-epochs", type=int, help="epochs per run, the first untimed (default 4; --quick 2)")
    group.add_argument("--workers-examples", type=int, help="examples (default 16000; --quick 2000)")
    group.add_argument("--workers-batch-sizes", help="comma-separated global batch sizes (default 32,256; --quick 32)")


def measure(batch: int, data: Path, examples: int, opts: argparse.Namespace, tmp: Path) -> list[Row]:
    """One batch size's rows: two workers and one process, runs interleaved."""
    two, one = Side(2, data, examples, batch, opts, tmp), Side(1, data, examples, batch, opts, tmp)
    walls = interleave([two, one], opts.repeats)
    group = "fit workers (cpu, localhost)"
    what = f"{examples} examples, {opts.epochs} epochs, {opts.repeats} runs each"
    note = f"{what}; {two.describe()}; {one.describe()}"
    name = f"{LABEL}, batch {batch} (global): two workers / one process"
    return [
        Row(group, f"{name}, wall time end to end", walls[0], walls[1], "s", "f/b"),
        Row(group, f"{name}, epochs 2..N", two.rates, one.rates, "ex/s", "f/b", note=note, higher_is_better=True),
    ]


def run(args: argparse.Namespace) -> list[Row]:
    """Rows per batch size: wall time and steady-state examples/s, two workers against one process (CPU)."""
    opts = argparse.Namespace(
        repeats=args.workers_repeats or (1 if args.quick else 5),
        epochs=args.workers_epochs or (2 if args.quick else 4),
        timeout=600.0,
    )
    batches = [int(b) for b in (args.workers_batch_sizes or ("32" if args.quick else "32,256")).split(",")]
    examples = args.workers_examples or (2000 if args.quick else 16000)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fusec-bench-workers-") as tmp:
        data = write_npz(ROOT / SPEC, examples, Path(tmp) / "train.npz")
        for batch in batches:
            rows += measure(batch, data, examples, opts, Path(tmp))
            print(f"  batch {batch}: two workers / one process {rows[-1].ratio:.3f} (examples/s)", flush=True)
    return rows
