"""Every fusec benchmark, then one table: each row a ratio with medians and spreads.

Runs, in order (each a separate process, its own output shown as it goes):

    check     bench/check_latency.py    fusec check / summary vs `python -c "import tensorflow"`  <= 0.15
    compile   (here)                    fusec compile vs hand-written Keras (seeds 000, 002, 003)   <= 1.10
    inference bench/inference_parity.py compiled vs hand-written SavedModel, batch 1 and 256   0.97 to 1.03
    fusion    bench/fusion_layers.py    weighted / gated merges vs the seed formulations          >= 1.0
    render    bench/render_compare.py   fusec render vs keras.utils.plot_model, small and large     >= 10
    scaling   bench/scaling.py          100 to 4,000 nodes: time, memory, growth exponent    check k <= 1.2

Side by side means interleaved in one run: both sides alternate (A B B A ...)
so the machine's drift hits both; every value is a median with half its
interquartile range (±), every ratio a ratio of medians with the spread of
the paired ratios. Results: bench/results/run_all-latest.json (and
scaling-latest.json); the full run also redraws docs/benchmarks/scaling.png.

    python bench/run_all.py [--quick] [--only check,compile,...] [--gpu]

``--quick`` is a smoke test (few repeats, small sizes; minutes, not
numbers to quote). ``--gpu`` adds the inference and fusion rows on the GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from compile_overhead import SCENARIOS
from harness import PY, ROOT, Row, checked_child, fusec, markdown_rows, print_rows, read_rows, row_from_json

HERE = Path(__file__).resolve().parent
RESULTS = ROOT / "bench" / "results"
NAMES = ("check", "compile", "inference", "fusion", "render", "scaling")
COMPILE_TARGET = 1.10


def environment() -> dict[str, str]:
    """Machine and versions, without importing TensorFlow."""
    env: dict[str, str] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("tensorflow", "tensorflow-cpu", "keras", "fusec", "jsonschema", "networkx"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            env[dist] = metadata.version(dist)
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    env["cpu"] = f"{cpu}, {os.cpu_count()} cores"
    try:
        kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
        env["memory"] = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    dot = shutil.which("dot")
    if dot:
        proc = subprocess.run([dot, "-V"], capture_output=True, text=True)
        env["graphviz"] = (proc.stderr or proc.stdout).strip()
    env["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return env


def script(name: str, *args: str) -> Callable[[Path], None]:
    """A step that runs bench/NAME with ARGS and ``--json PATH``, streaming its output."""

    def run(out: Path) -> None:
        cmd = [PY, str(HERE / name), *args, "--json", str(out)]
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        proc = subprocess.run(cmd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if proc.returncode not in (0, 1) or not out.exists():  # 1: ran, some target not met
            raise RuntimeError(f"{name} exited with {proc.returncode}")

    return run


def compile_overhead(repeats: int, warm: bool) -> Callable[[Path], None]:
    """fusec compile against the hand-written scripts, interleaved (as bench/compile_overhead.py)."""

    def run(out: Path) -> None:
        rows = []
        tmp = Path(tempfile.mkdtemp(prefix="fusec-bench-"))
        try:
            for label, spec, hand in SCENARIOS:
                if not (ROOT / spec).exists() or not (ROOT / hand).exists():
                    continue
                ours_cmd = fusec("compile", str(ROOT / spec), "-o", str(tmp / "f"))
                hand_cmd = [PY, str(ROOT / hand), str(tmp / "h")]

                def ours(cmd: list[str] = ours_cmd) -> float:
                    return checked_child(cmd).seconds

                def theirs(cmd: list[str] = hand_cmd) -> float:
                    shutil.rmtree(tmp / "h", ignore_errors=True)
                    return checked_child(cmd).seconds

                if warm:
                    ours(), theirs()
                t_ours: list[float] = []
                t_hand: list[float] = []
                for i in range(repeats):
                    for side in (ours, theirs) if i % 2 == 0 else (theirs, ours):
                        (t_ours if side is ours else t_hand).append(side())
                row = Row("compile overhead", label, t_ours, t_hand, "s", "f/b", hi=COMPILE_TARGET)
                print(f"  {label}: fusec {t_ours} hand {t_hand} ratio {row.ratio:.3f}", flush=True)
                rows.append(row)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        out.write_text(json.dumps([r.to_json() for r in rows]))

    return run


def plan(args: argparse.Namespace) -> list[tuple[str, Callable[[Path], None]]]:
    """The steps to run: (name, function writing rows to a JSON path)."""
    q = args.quick
    steps: list[tuple[str, Callable[[Path], None]]] = [
        ("check", script("check_latency.py", *(["--rounds", "2", "--specs", "specs/[gim]*.json"] if q else []))),
        ("compile", compile_overhead(1 if q else 5, warm=not q)),
    ]
    devices = ["cpu", "gpu"] if args.gpu else ["cpu"]
    for device in devices:
        quick = ["--repeats", "4", "--calls", "10", "--big-calls", "2", "--no-control"] if q else []
        steps.append(("inference", script("inference_parity.py", "--device", device, *quick)))
    for device in devices:
        quick = ["--fan-in", "2,16", "--repeats", "3", "--inner", "5"] if q else []
        steps.append(("fusion", script("fusion_layers.py", "--device", device, *quick)))
    steps.append(("render", script("render_compare.py", *(["--runs", "1"] if q else []))))
    scaling = ["--quiet"]
    if q:
        scaling += ["--sizes", "100,250", "--repeats", "1", "--render-repeats", "1", "--compile-max", "100"]
        scaling += ["--plot", str(RESULTS / "scaling-quick.png"), "--results", "scaling-quick.json"]
    steps.append(("scaling", script("scaling.py", *scaling)))
    return [(name, fn) for name, fn in steps if not args.only or name in args.only]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: few repeats, small sizes")
    parser.add_argument("--only", type=lambda s: s.split(","), default=None, help=f"comma-separated: {','.join(NAMES)}")
    parser.add_argument("--gpu", action="store_true", help="also run inference and fusion on the GPU")
    parser.add_argument("--markdown", type=Path, help="only print a saved run_all JSON as a Markdown table")
    args = parser.parse_args(argv)
    if args.markdown:
        doc = json.loads(args.markdown.read_text())
        print(markdown_rows([row_from_json(d) for d in doc["rows"]]))
        return 0
    if args.only and not set(args.only) <= set(NAMES):
        parser.error(f"--only takes {', '.join(NAMES)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = environment()
    print("\n".join(f"{k}: {v}" for k, v in env.items()), flush=True)
    rows: list[Row] = []
    failed: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fusec-bench-rows-") as tmp:
        for i, (name, step) in enumerate(plan(args)):
            print(f"\n=== {name} ({time.perf_counter() - started:.0f} s in)", flush=True)
            out = Path(tmp) / f"{i}-{name}.json"
            try:
                step(out)
                rows += read_rows(out)
            except (RuntimeError, OSError, ValueError, SystemExit) as exc:
                failed.append(name)
                print(f"error: {name}: {exc}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    env["load average, end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\n=== summary ({elapsed / 60:.1f} min{', --quick: smoke test, not numbers to quote' if args.quick else ''})"
    )
    print_rows(rows)
    notes = [f"  {r.group}: {r.name}: {r.note}" for r in rows if r.note]
    if notes:
        print("notes:\n" + "\n".join(notes))
    if failed:
        print(f"failed: {', '.join(failed)}")
    name = "run_all-quick.json" if args.quick else "run_all-latest.json"
    doc = {"environment": env, "seconds": elapsed, "quick": args.quick, "rows": [r.to_json() for r in rows]}
    (RESULTS / name).write_text(json.dumps(doc, indent=1))
    print(f"saved {RESULTS / name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
