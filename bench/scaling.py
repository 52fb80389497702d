"""Scaling: check, summary, render and compile time and peak memory on generated specs.

Specs of 100 to 4,000 nodes in four families (bench/gen_specs.py: chain, wide
fan-in, many shared-layer calls, nested blocks). Each command runs as a fresh
process, end to end; the time is the median of ``--scaling-repeats`` runs (render:
``--scaling-render-repeats``; compile: ``--scaling-compile-repeats``) and the
memory the largest resident set of the process (and of ``dot``, which render
waits for). Rounds go over every family and size before the next round, so
drift spreads over all of them.

The growth exponent k of t ~ n^k is fitted by least squares on log-log,
twice: on the wall time over every size, and on the marginal time (wall time
minus the same command on the family's smallest spec, 10 nodes (64 for
nested): the start-up every run pays) over sizes from 1,000 up (over every
size where fewer were run), which is what grows with the graph.
Target: check's marginal exponent at most 1.2.

``compile`` (TensorFlow import, Keras build, SavedModel export, .keras save)
costs tens of seconds per thousand nodes, almost all of it in SavedModel
export, so it runs once per size and only up to ``--scaling-compile-max`` nodes.
Render runs with ``--scaling-render-timeout`` for Graphviz; a run past it is recorded as
"timeout", not waited for.

Results go to bench/results/scaling-latest.json; the plot to
docs/benchmarks/scaling.png (with --quick: scaling-quick.json and .png under
bench/results/).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_specs import FAMILIES, write_spec
from harness import PY, RESULTS, ROOT, Row, checked_child, fusec, machine, median, run_child

NAME = "scaling"
TITLE = "100 to 4,000 nodes: time, memory, growth exponent   check k <= 1.2"

SIZES = (100, 250, 500, 1000, 2000, 4000)
BASE_SIZE = 10  # the start-up point subtracted for the marginal exponent
COMMANDS = ("check", "summary", "render", "compile")
FIT_FROM = 1000  # smallest size in the marginal fit (where the marginal time dwarfs the noise)
MIN_MARGINAL = 0.05  # seconds above start-up a point needs to enter the fit (run-to-run noise: ±20-40 ms)
INPROC = "check (in process)"
INPROC_REPEATS = 7
# argv: repeats, spec paths. Times check_spec alone (imports done, warmed), median of repeats.
INPROC_SCRIPT = r"""
import json, statistics, sys, time
from fusec.static.check import check_spec
repeats, out = int(sys.argv[1]), {}
for path in sys.argv[2:]:
    check_spec(path)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        check_spec(path)
        times.append(time.perf_counter() - start)
    out[path] = times
print(json.dumps(out))
"""
TARGET = 1.2
PLOT = ROOT / "docs" / "benchmarks" / "scaling.png"


def command(cmd: str, spec: Path, out: Path, render_timeout: float) -> list[str]:
    if cmd == "render":
        return fusec("render", str(spec), "-o", str(out / "diagram.svg"), "--timeout", f"{render_timeout:g}")
    if cmd == "compile":
        return fusec("compile", str(spec), "-o", str(out / "compiled"))
    return fusec(cmd, str(spec))


def run_one(cmd: str, spec: Path, out: Path, render_timeout: float, limit: float) -> dict[str, Any]:
    """One run: seconds, peak RSS in MB, and "ok", "timeout" or an error line."""
    child = run_child(command(cmd, spec, out, render_timeout), timeout=limit)
    if child.returncode is None:
        status = "timeout"
    elif child.ok:
        status = "ok"
    elif "took longer than" in child.stderr:
        status = "timeout"
    else:
        lines = [line for line in child.stderr.splitlines() if line.strip()]
        status = "error: " + (lines[0][:200] if lines else f"exit {child.returncode}")
    return {"seconds": child.seconds, "peak_mb": child.peak_kb / 1024, "status": status}


@dataclass
class Grid:
    """What to run: sizes, families, commands, repeats and limits."""

    sizes: Sequence[int] = SIZES
    families: Sequence[str] = FAMILIES
    commands: Sequence[str] = COMMANDS
    repeats: int = 5
    compile_max: int = 500
    compile_repeats: int = 1
    render_repeats: int = 3
    render_timeout: float = 120.0

    def wanted(self, cmd: str, size: int, r: int) -> bool:
        """Whether round ``r`` runs ``cmd`` on the spec of ``size``."""
        per_cmd = {"compile": self.compile_repeats, "render": self.render_repeats}
        return r < per_cmd.get(cmd, self.repeats) and not (cmd == "compile" and size > self.compile_max)


Cells = dict[tuple[str, int, str], list[dict[str, Any]]]


def write_specs(grid: Grid, folder: Path) -> tuple[dict[tuple[str, int], Path], dict[tuple[str, int], int]]:
    """Every family at every size (and BASE_SIZE), checked once (which warms caches); paths and node counts."""
    specs, nodes = {}, {}
    for family in grid.families:
        for size in (BASE_SIZE, *grid.sizes):
            path = write_spec(folder, family, size)
            first = run_one("check", path, folder, grid.render_timeout, 600)
            if first["status"] != "ok":
                raise RuntimeError(f"generated spec {path.name} does not check: {first['status']}")
            specs[family, size] = path
            nodes[family, size] = count_nodes(path)
    return specs, nodes


def run_rounds(grid: Grid, specs: dict[tuple[str, int], Path], nodes: dict[tuple[str, int], int], say: Any) -> Cells:
    """Round after round over every family, size and command, so drift spreads over all of them."""
    cells: Cells = {}
    for r in range(max(grid.repeats, grid.compile_repeats, grid.render_repeats)):
        for family in grid.families:
            for size in (BASE_SIZE, *grid.sizes):
                for cmd in grid.commands:
                    prior = cells.get((family, size, cmd), [])
                    if not grid.wanted(cmd, size, r) or (prior and prior[-1]["status"] == "timeout"):
                        continue  # one timeout is enough
                    limit = grid.render_timeout + 60 if cmd == "render" else 900
                    path = specs[family, size]
                    result = run_one(cmd, path, path.parent, grid.render_timeout, limit)
                    cells.setdefault((family, size, cmd), []).append(result)
                    say(
                        f"  round {r + 1} {family:7} {nodes[family, size]:5} nodes {cmd:8} "
                        f"{result['seconds']:7.2f} s {result['peak_mb']:7.0f} MB  {result['status']}"
                    )
    return cells


def run_in_process(grid: Grid, specs: dict[tuple[str, int], Path], cells: Cells, say: Any) -> None:
    """check_spec alone, in one warm process per family: no start-up noise (added to ``cells``)."""
    for family in grid.families:
        paths = [str(specs[family, size]) for size in (BASE_SIZE, *grid.sizes)]
        child = run_child([PY, "-c", INPROC_SCRIPT, str(INPROC_REPEATS), *paths], timeout=1800)
        if not child.ok:
            raise RuntimeError(f"in-process check failed: {child.stderr[-2000:]}")
        times = json.loads(child.stdout.strip().splitlines()[-1])
        for size in (BASE_SIZE, *grid.sizes):
            secs = times[str(specs[family, size])]
            cells[family, size, INPROC] = [{"seconds": t, "peak_mb": None, "status": "ok"} for t in secs]
        say(f"  {family:7} {INPROC}: done")


def summarize(cells: Cells, nodes: dict[tuple[str, int], int]) -> list[dict[str, Any]]:
    """One entry per family, size and command: the successful samples and a status."""
    runs = []
    for (family, size, cmd), results in sorted(cells.items()):
        ok = [x for x in results if x["status"] == "ok"]
        status = "ok" if len(ok) == len(results) else results[-1]["status"] if not ok else "partly failed"
        runs.append(
            {
                "family": family,
                "size": size,
                "nodes": nodes[family, size],
                "command": cmd,
                "seconds": [x["seconds"] for x in ok],
                "peak_mb": [x["peak_mb"] for x in ok if x["peak_mb"] is not None],
                "status": status,
            }
        )
    return runs


def measure(grid: Grid, log: Any = None) -> dict[str, Any]:
    """Run the grid; return ``{"runs": [...], "fits": [...], ...}`` (see ``fit``)."""
    say = log or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="fusec-scaling-") as tmp:
        folder = Path(tmp)
        specs, nodes = write_specs(grid, folder)
        cells = run_rounds(grid, specs, nodes, say)
        if "check" in grid.commands:
            run_in_process(grid, specs, cells, say)
    runs = summarize(cells, nodes)
    return {
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "sizes": list(grid.sizes),
        "repeats": grid.repeats,
        "compile_max": grid.compile_max,
        "compile_repeats": grid.compile_repeats,
        "render_repeats": grid.render_repeats,
        "render_timeout": grid.render_timeout,
        "runs": runs,
        "fits": fit(runs),
    }


def count_nodes(spec: Path) -> int:
    """The node count ``fusec check`` reports (after block expansion)."""
    match = re.search(r"\((\d+) nodes", checked_child(fusec("check", str(spec))).stdout)
    return int(match.group(1)) if match else 0


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) on log(x)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    var = sum((x - mx) ** 2 for x in lx)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / var if var else float("nan")


def fit(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per family and command: the wall and marginal growth exponents, and peak memory at the largest size."""
    out = []
    order = (*COMMANDS, INPROC)
    keys = sorted({(order.index(r["command"]), r["family"]) for r in runs})
    for cmd, family in ((order[c], f) for c, f in keys):
        mine = sorted(
            (r for r in runs if r["family"] == family and r["command"] == cmd and r["seconds"]),
            key=lambda r: r["size"],
        )
        base = next((median(r["seconds"]) for r in mine if r["size"] == BASE_SIZE), None)
        floor = MIN_MARGINAL
        if cmd == INPROC:  # no start-up to subtract, and timed precisely
            base, floor = 0.0, 0.0
        points = [(r["nodes"], median(r["seconds"])) for r in mine if r["size"] != BASE_SIZE]
        wall = slope(*zip(*points, strict=True)) if len(points) >= 2 else float("nan")
        marginal_pts = [(n, t - base) for n, t in points if base is not None and t - base > floor]
        if sum(n >= FIT_FROM for n, _ in marginal_pts) >= 2:
            marginal_pts = [(n, t) for n, t in marginal_pts if n >= FIT_FROM]
        marginal = slope(*zip(*marginal_pts, strict=True)) if len(marginal_pts) >= 2 else float("nan")
        largest = mine[-1] if mine else None
        out.append(
            {
                "family": family,
                "command": cmd,
                "wall_exponent": wall,
                "marginal_exponent": marginal,
                "startup_s": base,
                "largest_nodes": largest["nodes"] if largest else None,
                "largest_s": median(largest["seconds"]) if largest else None,
                "largest_peak_mb": max(largest["peak_mb"]) if largest and largest["peak_mb"] else None,
                "fit_points": len(marginal_pts),
            }
        )
    return out


def rows(results: dict[str, Any]) -> list[Row]:
    """Summary-table rows: check's marginal exponent per family (target <= 1.2), the others for information."""
    out = []
    for f in results["fits"]:
        if math.isnan(f["marginal_exponent"]):
            continue
        target = {"hi": TARGET} if f["command"] in ("check", INPROC) else {}
        note = f"{f['largest_nodes']} nodes: {f['largest_s']:.2f} s"
        if f["largest_peak_mb"]:
            note += f", {f['largest_peak_mb']:.0f} MB peak"
        name = f"{f['command']} growth exponent, {f['family']}"
        out.append(Row("scaling", name, [f["marginal_exponent"]], [], "", "exp", note=note, **target))
    return out


def print_tables(results: dict[str, Any]) -> None:
    runs = results["runs"]
    families = sorted({r["family"] for r in runs})
    for cmd in (*COMMANDS, INPROC):
        mine = [r for r in runs if r["command"] == cmd]
        if not mine:
            continue
        sizes = sorted({r["size"] for r in mine})
        what = "median seconds" if cmd == INPROC else "median seconds (peak MB)"
        print(f"\n{cmd}: {what} by target size; actual node counts in the JSON")
        print(f"{'family':8}" + "".join(f"{s:>17}" for s in sizes))
        for family in families:
            cells = []
            for s in sizes:
                r = next((x for x in mine if x["family"] == family and x["size"] == s), None)
                if r is None:
                    cells.append("-")
                elif not r["seconds"]:
                    cells.append(r["status"].split(":")[0])
                elif not r["peak_mb"]:
                    cells.append(f"{median(r['seconds']):.3f}")
                else:
                    cells.append(f"{median(r['seconds']):.2f} ({max(r['peak_mb']):.0f})")
            print(f"{family:8}" + "".join(f"{c:>17}" for c in cells))
    print("\ngrowth exponents k (t ~ n^k): wall time over all sizes; marginal: time above the start-up (the")
    print(f"same command on the smallest spec) over sizes >= {FIT_FROM} whose marginal time is >= {MIN_MARGINAL} s")
    print(f"(all such sizes where fewer ran); {INPROC}: check_spec alone, same sizes. Target: check k <= {TARGET}")
    print(f"{'command':18} {'family':8} {'wall k':>7} {'marginal k':>10} {'start-up':>9} {'largest':>24}")
    for f in results["fits"]:
        largest = f"{f['largest_nodes']} n: {f['largest_s']:.2f} s" if f["largest_s"] else ""
        if f["largest_peak_mb"]:
            largest += f" {f['largest_peak_mb']:.0f} MB"
        print(
            f"{f['command']:18} {f['family']:8} {f['wall_exponent']:7.2f} {f['marginal_exponent']:10.2f} "
            f"{f['startup_s'] or 0:8.2f}s {largest:>24}"
        )


def _plot_column(axes: Any, col: int, cmd: str, runs: list[dict[str, Any]], fits: dict[Any, Any]) -> None:
    """One command's three panels: wall time, time above start-up (with a slope-1 guide), peak memory."""
    for family in FAMILIES:
        mine = [r for r in runs if r["command"] == cmd and r["family"] == family]
        base = 0.0 if cmd == INPROC else next((median(r["seconds"]) for r in mine if r["size"] == BASE_SIZE), None)
        pts = sorted(
            (r["nodes"], median(r["seconds"]), max(r["peak_mb"], default=float("nan")))
            for r in mine
            if r["size"] != BASE_SIZE
        )
        if not pts:
            continue
        n, t, m = zip(*pts, strict=True)
        k = fits.get((family, cmd), {}).get("marginal_exponent", float("nan"))
        label = f"{family} (k={k:.2f})" if not math.isnan(k) else family
        (line,) = axes[0][col].plot(n, t, marker="o", label=family)
        above = [(x, y - base) for x, y in zip(n, t, strict=True) if base is not None and y > base]
        if above:
            axes[1][col].plot(*zip(*above, strict=True), marker="o", color=line.get_color(), label=label)
        axes[2][col].plot(n, m, marker="o", color=line.get_color(), label=family)
    above_all = [ln.get_ydata() for ln in axes[1][col].get_lines()]
    if above_all:  # a slope-1 guide (linear growth) ending at the largest value
        xs = sorted({r["nodes"] for r in runs if r["command"] == cmd and r["size"] != BASE_SIZE})
        top = max(max(y) for y in above_all)
        axes[1][col].plot(xs, [top * x / xs[-1] for x in xs], "k:", lw=1, label="slope 1 (linear)")


def _style_column(axes: Any, col: int, cmd: str, runs: list[dict[str, Any]], sizes: Sequence[int]) -> None:
    """Log axes, ticks at the sizes run, labels, grid and legend of one command's panels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    axes[0][col].set_title(f"fusec {cmd}")
    labels = ("seconds, median, end to end", "seconds above start-up", "peak RSS, MB")
    for row, ylabel in enumerate(labels):
        ax = axes[row][col]
        ax.set_xscale("log")
        if row == 1:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(plain)
        ax.set_xticks([x for x in sizes if any(r["size"] == x and r["command"] == cmd for r in runs)])
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("nodes")
        ax.grid(True, which="both", alpha=0.3)
        if col == 0:
            ax.set_ylabel(ylabel)
    axes[0][col].set_ylim(bottom=0)
    axes[2][col].set_ylim(bottom=0)
    axes[1][col].legend(fontsize=7)


def plot(results: dict[str, Any], path: Path = PLOT) -> Path:
    """One column per command: wall time, time above start-up (log-log, the fitted one), peak memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results["runs"] if r["seconds"]]
    commands = [c for c in (*COMMANDS, INPROC) if any(r["command"] == c for r in runs)]
    fig, axes = plt.subplots(3, len(commands), figsize=(4 * len(commands), 10), squeeze=False)
    fits = {(f["family"], f["command"]): f for f in results["fits"]}
    for col, cmd in enumerate(commands):
        _plot_column(axes, col, cmd, runs, fits)
        _style_column(axes, col, cmd, runs, results["sizes"])
    fig.suptitle(
        f"fusec scaling ({results['machine']}); k: growth exponent fitted to the time above start-up", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save(results: dict[str, Any], name: str = "scaling-latest.json") -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(results, indent=1))
    return path


def add_arguments(group: argparse._ArgumentGroup) -> None:
    add = group.add_argument
    add("--scaling-sizes", help="comma-separated node counts (default 100,...,4000; --quick 100,250)")
    add("--scaling-families", default=",".join(FAMILIES))
    add("--scaling-commands", default=",".join(COMMANDS))
    add("--scaling-repeats", type=int, help="runs of check and summary (default 5; --quick 1)")
    add("--scaling-compile-max", type=int, help="largest size compiled (default 500; --quick 100)")
    add("--scaling-compile-repeats", type=int, default=1)
    add("--scaling-render-repeats", type=int, help="runs of render (default 3; --quick 1)")
    add("--scaling-render-timeout", type=float, default=120.0, help="seconds Graphviz may take")
    add("--scaling-plot", type=Path, help="PNG to write ('' for none; default docs/benchmarks/scaling.png)")
    add("--scaling-replot", type=Path, help="only redraw the plot and tables from a saved results file")
    add("--scaling-verbose", action="store_true", help="a line per run")


def run(args: argparse.Namespace) -> list[Row]:
    """Run the grid (or redraw a saved one), save results and plot, print the tables; the exponent rows."""
    q = args.quick
    plot_path = args.scaling_plot if args.scaling_plot is not None else RESULTS / "scaling-quick.png" if q else PLOT
    if args.scaling_replot:
        results = json.loads(args.scaling_replot.read_text())
    else:
        grid = Grid(
            sizes=[int(s) for s in (args.scaling_sizes or ("100,250" if q else ",".join(map(str, SIZES)))).split(",")],
            families=args.scaling_families.split(","),
            commands=args.scaling_commands.split(","),
            repeats=args.scaling_repeats or (1 if q else 5),
            compile_max=args.scaling_compile_max or (100 if q else 500),
            compile_repeats=args.scaling_compile_repeats,
            render_repeats=args.scaling_render_repeats or (1 if q else 3),
            render_timeout=args.scaling_render_timeout,
        )
        results = measure(grid, log=(lambda msg: print(msg, flush=True)) if args.scaling_verbose else None)
        print(f"saved {save(results, 'scaling-quick.json' if q else 'scaling-latest.json')}")
    if str(plot_path):
        print(f"plot  {plot(results, plot_path)}")
    print_tables(results)
    return rows(results)
