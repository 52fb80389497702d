"""`fusec render` against `keras.utils.plot_model` for the summary table, small and large.

Uses bench_render.py's workloads (its NASNet-like spec generator and its
plot_model script) and times both sides as fresh processes, end to end,
alternating run by run and keeping every sample. Small: specs/image_tag.json
(15 nodes); large: the generated NASNet-like spec (about 800 nodes). Both
write SVG. plot_model draws the same architecture, built from the spec by
fusec's own build stage. Ratio: plot_model / fusec render. Target: at least 10.

bench_render.py prints more (PNG too, NASNetMobile itself, render scaling).

    python bench/render_compare.py [--runs 5] [--nodes 800]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

from harness import PY, ROOT, Row, checked_child, fusec, print_rows, write_rows

TARGET = 10.0


def measure(runs: int = 5, nodes: int = 800) -> list[Row]:
    """Two rows (small, large), or one explaining why the comparison was skipped."""
    missing = [m for m in ("pydot", "tensorflow") if importlib.util.find_spec(m) is None]
    if missing:
        return [Row("render", f"skipped: {', '.join(missing)} not installed", [], [], "s", "b/f")]
    import bench_render

    rows = []
    with tempfile.TemporaryDirectory(prefix="fusec-bench-") as tmp:
        folder = Path(tmp)
        large = folder / f"nasnet_like_{nodes}.json"
        large.write_text(json.dumps(bench_render.make_spec(nodes)))
        count = len(json.loads(large.read_text())["nodes"])
        cases = [("small: image_tag.json, 15 nodes", ROOT / "specs/image_tag.json")]
        cases.append((f"large: NASNet-like spec, {count} nodes", large))
        for title, spec in cases:
            ours_cmd = fusec("render", str(spec), "-o", str(folder / "fusec.svg"), "--format", "svg")
            keras_cmd = [PY, "-c", bench_render.PLOT_SCRIPT, str(spec), str(folder / "keras.svg")]
            checked_child(ours_cmd), checked_child(keras_cmd)  # warm the file cache
            t_ours: list[float] = []
            t_keras: list[float] = []
            calls: list[float] = []
            for i in range(runs):
                for side in ("ours", "keras") if i % 2 == 0 else ("keras", "ours"):
                    if side == "ours":
                        t_ours.append(checked_child(ours_cmd).seconds)
                    else:
                        child = checked_child(keras_cmd)
                        t_keras.append(child.seconds)
                        calls.append(json.loads(child.stdout.strip().splitlines()[-1])["plot_s"])
            call = sorted(calls)[len(calls) // 2]
            note = f"plot_model call alone (TF loaded, model built): {call:.2f} s"
            rows.append(Row("render (svg, end to end)", title, t_ours, t_keras, "s", "b/f", lo=TARGET, note=note))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=800)
    parser.add_argument("--json", help="also write the rows to this JSON file (for run_all.py)")
    args = parser.parse_args(argv)
    rows = measure(args.runs, args.nodes)
    write_rows(rows, args.json)
    print("ratio = plot_model / fusec render (above 1: fusec faster)")
    print_rows(rows)
    for r in rows:
        if r.note:
            print(f"  {r.name}: {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
