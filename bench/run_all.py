"""The benchmarks' one entry point: run the named benchmarks (default: all six), then one table.

    python bench/run_all.py [NAME ...] [--quick] [--gpu] [--<name>-OPTION ...]
    python bench/run_all.py --markdown bench/results/run_all-latest.json

Benchmarks (one module each in bench/; ``--help`` lists every option):

    check      check_latency.py     fusec check / summary vs `python -c "import tensorflow"`   <= 0.15
    compile    compile_overhead.py  fusec compile vs hand-written Keras build + export        <= 1.10
    inference  inference_parity.py  compiled vs hand-written SavedModel, batch 1 and 256  0.97 to 1.03
    fusion     fusion_layers.py     weighted / gated merges vs the seed formulations          >= 1.0
    render     render_compare.py    fusec render vs keras.utils.plot_model, small and large   >= 10
    scaling    scaling.py           100 to 4,000 nodes: time, memory, growth exponent   check k <= 1.2
    hostile    hostile_check.py     check on the slowest specs under the limits (only when named)
    schema     schema_fastpath.py   schema fast path vs plain jsonschema (only when named)
    fit_speed      fit_speed.py      fusec fit's loop vs hand-written Keras model.fit (only when named)  >= 0.97
    fit_streaming  fit_streaming.py  streamed CSV/Parquet/TFRecord vs in-memory arrays (only when named) >= 0.9
    fit_workers    fit_workers.py    two fusec fit workers on localhost vs one process (only when named)
    import     import_speed.py      fusec import / check of imported models vs Keras (only when named)
    positions  positions_cost.py    check with line:col positions vs without, 800 nodes (only when named) <= 1.10
    lsp        lsp_latency.py       fusec lsp edit -> diagnostics, 800 nodes, vs cold check (only when named) <= 0.3 s
    render_page render_page.py      NASNetMobile review page: size, time to interactive (only when named) < 3 MB, < 2 s
    diff       diff_speed.py        fusec diff of two 800-node specs vs one check (only when named) < 0.5 s

Each benchmark runs in a child process of its own (TensorFlow and the
device are chosen before its import), prints its own table as it finishes,
and hands its rows back; the summary table follows. Side by side means
interleaved (bench/harness.py). Results: bench/results/run_all-latest.json
(``--quick``: run_all-quick.json, a smoke test in minutes, not numbers to
quote). ``--gpu`` adds the inference, fusion and fit_speed rows on the GPU.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from harness import PY, RESULTS, Row, environment, markdown_rows, print_rows, read_rows, row_from_json, write_rows

#: name -> module, in the order they run
MODULES = {
    "check": "check_latency",
    "compile": "compile_overhead",
    "inference": "inference_parity",
    "fusion": "fusion_layers",
    "render": "render_compare",
    "scaling": "scaling",
    "hostile": "hostile_check",
    "schema": "schema_fastpath",
    "fit_speed": "fit_speed",
    "fit_streaming": "fit_streaming",
    "fit_workers": "fit_workers",
    "import": "import_speed",
    "positions": "positions_cost",
    "lsp": "lsp_latency",
    "render_page": "render_page",
    "diff": "diff_speed",
}
DEFAULT = ("check", "compile", "inference", "fusion", "render", "scaling")
ON_GPU = ("inference", "fusion", "fit_speed")


def benchmark(name: str) -> ModuleType:
    """The module of one benchmark: ``NAME``, ``TITLE``, ``add_arguments(group)``, ``run(args) -> rows``."""
    return importlib.import_module(MODULES[name])


def parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    ap = argparse.ArgumentParser(
        description=doc.split("\n")[0], epilog=doc.split("\n\n", 2)[2], formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: {' '.join(DEFAULT)})")
    ap.add_argument("--quick", action="store_true", help="smoke test: few repeats, small sizes")
    ap.add_argument("--gpu", action="store_true", help="also run inference, fusion and fit_speed on the GPU")
    ap.add_argument("--markdown", type=Path, help="only print a saved run_all JSON as a Markdown table")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # run one benchmark here, rows to --rows
    ap.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", choices=("cpu", "gpu"), help=argparse.SUPPRESS)
    for name in MODULES:
        module = benchmark(name)
        module.add_arguments(ap.add_argument_group(f"{name}: {module.TITLE}"))
    return ap


def child(args: argparse.Namespace) -> int:
    """Run one benchmark in this process, print its table, write its rows."""
    rows = benchmark(args.child).run(args)
    write_rows(rows, args.rows)
    print_rows(rows)
    return 0


def steps(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(name, device) of every child to run, in order."""
    names = [n for n in MODULES if n in (args.names or DEFAULT)]
    devices = ("cpu", "gpu") if args.gpu else ("cpu",)
    return [(name, device) for name in names for device in (devices if name in ON_GPU else ("cpu",))]


def run_step(name: str, device: str, argv: list[str], out: Path) -> list[Row]:
    """One benchmark in a child process (this script with ``--child``; it ignores NAMEs), its output streamed."""
    cmd = [PY, __file__, *argv, "--child", name, "--device", device, "--rows", str(out)]
    proc = subprocess.run(cmd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{name} exited with {proc.returncode}")
    return read_rows(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = parser()
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if args.markdown:
        doc = json.loads(args.markdown.read_text())
        print(markdown_rows([row_from_json(d) for d in doc["rows"]]))
        return 0
    unknown = set(args.names) - set(MODULES)
    if unknown:
        ap.error(f"unknown benchmark {', '.join(sorted(unknown))}; choose from {', '.join(MODULES)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = environment()
    print("\n".join(f"{k}: {v}" for k, v in env.items()), flush=True)
    rows: list[Row] = []
    failed: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fusec-bench-rows-") as tmp:
        for i, (name, device) in enumerate(steps(args)):
            print(f"\n=== {name} ({device}, {time.perf_counter() - started:.0f} s in)", flush=True)
            try:
                rows += run_step(name, device, argv, Path(tmp) / f"{i}-{name}.json")
            except (RuntimeError, OSError, ValueError) as exc:
                failed.append(name)
                print(f"error: {name}: {exc}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    env["load average, end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    quick = ", --quick: smoke test, not numbers to quote" if args.quick else ""
    print(f"\n=== summary ({elapsed / 60:.1f} min{quick})")
    print_rows(rows)
    if failed:
        print(f"failed: {', '.join(failed)}")
    path = RESULTS / ("run_all-quick.json" if args.quick else "run_all-latest.json")
    doc = {"environment": env, "seconds": elapsed, "quick": args.quick, "rows": [r.to_json() for r in rows]}
    path.write_text(json.dumps(doc, indent=1))
    print(f"saved {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
