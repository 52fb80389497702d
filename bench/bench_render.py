"""Benchmark: ``fusec render`` against ``keras.utils.plot_model`` on the same large architectures.

Two workloads, each side by side in one run, every timing a fresh subprocess
(end to end: interpreter start, imports, the work, the file written), median
of ``--runs`` runs:

1. a generated NASNet-like spec with about 800 nodes (a stem, then cells of
   separable convolutions, poolings, add and concat merges, a 1x1 projection
   shared by every cell, a frozen first quarter). ``plot_model`` draws the
   same architecture built by fusec (``build_model(check_spec(...),
   compile=False)``);
2. Keras's own NASNetMobile (771 layers, the model named in the issue),
   converted layer by layer into a fusec spec (parameter counts checked
   equal). ``plot_model`` draws ``keras.applications.NASNetMobile`` itself.

For ``plot_model`` it also prints the call alone (TensorFlow already loaded,
model already built), as measured inside its process. Then ``fusec render``
times for 100 to 1000-node variants of the generated spec.

``plot_model`` needs pydot (``pip install pydot``); without it (or without
TensorFlow) the comparison is skipped with a message and only fusec is timed.

Usage::

    .venv/bin/python bench/bench_render.py [--nodes 800] [--runs 3] [--formats svg,png]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# `fusec render`, also before cli.py registers the command.
FUSEC = [
    sys.executable,
    "-c",
    "from fusec.cli import cli, main\n"
    "from fusec.cli.render import render_command\n"
    "cli.commands.setdefault('render', render_command)\n"
    "main()",
]
CELL_NODES = 13
F = 16  # filters everywhere: every cell's concat has 4F channels, so one shared projection fits all
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

# argv: spec-or-"nasnet", output file. Prints {"plot_s": ..., "layers": ...}.
PLOT_SCRIPT = r"""
import json, sys, time
import keras
if sys.argv[1] == "nasnet":
    model = keras.applications.NASNetMobile(weights=None, input_shape=(224, 224, 3))
else:
    from fusec.keras.build import build_model
    from fusec.static.check import check_spec
    model = build_model(check_spec(sys.argv[1]), compile=False)
t0 = time.perf_counter()
keras.utils.plot_model(model, to_file=sys.argv[2], show_shapes=True, show_layer_names=True)
print(json.dumps({"plot_s": time.perf_counter() - t0, "layers": len(model.layers)}))
"""

# argv: spec path to write. Converts keras.applications.NASNetMobile into a fusec spec.
CONVERT_SCRIPT = r"""
import json, sys
import keras
from fusec.static.check import check_spec
from fusec.vocab.layers import LAYERS

model = keras.applications.NASNetMobile(weights=None, input_shape=(224, 224, 3))
merges = {"Add": "add", "Concatenate": "concat"}
skip = ("initializer", "regularizer", "constraint")

def plain(v):
    return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v

inputs, nodes = {}, {}
for layer in model.layers:
    cls = type(layer).__name__
    if cls == "InputLayer":
        inputs[layer.name] = {"shape": list(layer.output.shape[1:])}
        continue
    tensors = keras.tree.flatten(layer._inbound_nodes[0].input_tensors)
    srcs = [t._keras_history.operation.name for t in tensors]
    if cls in merges:
        node = {"merge": merges[cls], "inputs": srcs}
        if cls == "Concatenate":
            node["config"] = {"axis": layer.get_config()["axis"]}
    else:
        params = LAYERS[cls].param_index
        config = {
            k: plain(v) for k, v in layer.get_config().items()
            if k in params and not k.endswith(skip) and v is not None
        }
        node = {"layer": cls, "config": config, "inputs": srcs[0]}
    nodes[layer.name] = node
doc = {
    "fusec": 1,
    "name": "nasnet_mobile",
    "doc": "keras.applications.NASNetMobile, converted layer by layer.",
    "inputs": inputs,
    "nodes": nodes,
    "outputs": {"probs": {"from": model.layers[-1].name, "loss": "categorical_crossentropy"}},
}
with open(sys.argv[1], "w") as fh:
    json.dump(doc, fh)
checked = check_spec(sys.argv[1])
assert checked.totals.params == model.count_params(), (checked.totals.params, model.count_params())
print(len(checked.order))
"""


def make_spec(n_nodes: int) -> dict[str, Any]:
    """A NASNet-like spec with about ``n_nodes`` nodes (inputs and outputs excluded)."""
    cells = max(1, (n_nodes - 5) // CELL_NODES)
    conv = {"filters": F, "kernel_size": 3, "padding": "same", "activation": "relu"}
    pool = {"pool_size": 3, "strides": 1, "padding": "same"}
    nodes: dict[str, Any] = {
        "stem": {"layer": "Conv2D", "config": conv, "inputs": "image"},
        "stem_bn": {"layer": "BatchNormalization", "inputs": "stem"},
    }
    prev, prev2 = "stem_bn", "stem"
    for i in range(cells):
        c = f"c{i}_"
        frozen = {"trainable": False} if i < cells // 4 else {}

        def sep(k: int, src: str, _frozen: dict[str, Any] = frozen) -> dict[str, Any]:
            cfg = {"filters": F, "kernel_size": k, "padding": "same", "activation": "relu"}
            return {"layer": "SeparableConv2D", "config": cfg, "inputs": src, **_frozen}

        depthwise = {"kernel_size": 3, "padding": "same"}
        nodes.update(
            {
                c + "sep3": sep(3, prev),
                c + "sep5": sep(5, prev2),
                c + "add1": {"merge": "add", "inputs": [c + "sep3", c + "sep5"]},
                c + "avg": {"layer": "AveragePooling2D", "config": pool, "inputs": prev},
                c + "max": {"layer": "MaxPooling2D", "config": pool, "inputs": prev2},
                c + "add2": {"merge": "add", "inputs": [c + "avg", c + "max"]},
                c + "sep3b": sep(3, c + "add1"),
                c + "add3": {"merge": "add", "inputs": [c + "sep3b", prev2]},
                c + "dw": {"layer": "DepthwiseConv2D", "config": depthwise, "inputs": prev, **frozen},
                c + "add4": {"merge": "add", "inputs": [c + "dw", c + "add2"]},
                c + "cat": {"merge": "concat", "inputs": [c + "add1", c + "add2", c + "add3", c + "add4"]},
                c + "proj": {"shared": "proj", "inputs": c + "cat"},
                c + "bn": {"layer": "BatchNormalization", "inputs": c + "proj"},
            }
        )
        prev, prev2 = c + "bn", prev
    nodes.update(
        {
            "gap": {"layer": "GlobalAveragePooling2D", "inputs": prev},
            "drop": {"layer": "Dropout", "config": {"rate": 0.2}, "inputs": "gap"},
            "logits": {"layer": "Dense", "config": {"units": 10, "activation": "softmax"}, "inputs": "drop"},
        }
    )
    return {
        "fusec": 1,
        "name": f"nasnet_like_{len(nodes)}",
        "doc": "Benchmark: a NASNet-like stack of cells with one shared 1x1 projection.",
        "inputs": {"image": {"shape": [32, 32, 3]}},
        "shared": {"proj": {"layer": "Conv2D", "config": {"filters": F, "kernel_size": 1}}},
        "nodes": nodes,
        "outputs": {"label": {"from": "logits", "loss": "sparse_categorical_crossentropy"}},
    }


def write_spec(folder: Path, n_nodes: int) -> Path:
    path = folder / f"nasnet_{n_nodes}.json"
    path.write_text(json.dumps(make_spec(n_nodes), indent=1))
    return path


def run(cmd: list[str]) -> tuple[float, str]:
    """(wall seconds, stdout) of one subprocess; raises with its stderr on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd[:3])}...\n{proc.stderr[-2000:]}")
    return secs, proc.stdout


def time_render(spec: Path, out: Path, fmt: str, runs: int) -> float:
    """Median seconds of ``fusec render`` as a subprocess, end to end."""
    cmd = [*FUSEC, "render", str(spec), "-o", str(out), "--format", fmt]
    return statistics.median(run(cmd)[0] for _ in range(runs))


def time_plot_model(target: str, out: Path, runs: int) -> tuple[float, float, int]:
    """Median (end-to-end seconds, plot_model-call seconds) and the layer count."""
    ends, calls, layers = [], [], 0
    for _ in range(runs):
        secs, stdout = run([sys.executable, "-c", PLOT_SCRIPT, target, str(out)])
        result = json.loads(stdout.strip().splitlines()[-1])
        ends.append(secs)
        calls.append(result["plot_s"])
        layers = result["layers"]
    return statistics.median(ends), statistics.median(calls), layers


def compare(title: str, spec: Path, target: str, fmt: str, folder: Path, runs: int, keras: bool) -> None:
    print(f"\n== {title}, format {fmt}, median of {runs} runs")
    fusec_s = time_render(spec, folder / f"fusec.{fmt}", fmt, runs)
    print(f"fusec render      (subprocess, end to end):     {fusec_s:7.2f} s")
    if not keras:
        return
    end_s, call_s, layers = time_plot_model(target, folder / f"keras.{fmt}", runs)
    print(f"plot_model        (subprocess, end to end):     {end_s:7.2f} s   ({layers} Keras layers)")
    print(f"plot_model        (the call alone, TF loaded):  {call_s:7.2f} s")
    print(f"ratio, end to end:        plot_model / fusec = {end_s / fusec_s:5.1f}x")
    print(f"ratio, plot_model call:   plot_model / fusec = {call_s / fusec_s:5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--nodes", type=int, default=800)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="svg,png", help="comma-separated: svg, png, pdf")
    parser.add_argument("--sizes", default="100,250,500,1000", help="node counts for the scaling table")
    args = parser.parse_args()

    keras = True
    for module, how in (("pydot", "pip install pydot"), ("tensorflow", "pip install 'fusec[cpu]'")):
        if importlib.util.find_spec(module) is None:
            print(f"plot_model comparison skipped: {module} is not installed ({how})")
            keras = False

    with tempfile.TemporaryDirectory(prefix="fusec-bench-") as tmp:
        folder = Path(tmp)
        spec = write_spec(folder, args.nodes)
        n = len(json.loads(spec.read_text())["nodes"])
        mobile = folder / "nasnet_mobile.json"
        count = run([sys.executable, "-c", CONVERT_SCRIPT, str(mobile)])[1].strip() if keras else ""
        formats = args.formats.split(",")
        for fmt in formats:
            compare(f"NASNet-like spec, {n} nodes", spec, str(spec), fmt, folder, args.runs, keras)
            if keras:
                compare(f"NASNetMobile, {count} nodes", mobile, "nasnet", fmt, folder, args.runs, keras)

        print(f"\n== fusec render scaling, generated spec (subprocess, end to end, median of {args.runs})")
        print("  nodes  " + "  ".join(f"{fmt:>6}" for fmt in formats))
        for size in (int(s) for s in args.sizes.split(",")):
            path = write_spec(folder, size)
            count = len(json.loads(path.read_text())["nodes"])
            secs = [time_render(path, folder / f"scale.{fmt}", fmt, args.runs) for fmt in formats]
            print(f"  {count:5d}  " + "  ".join(f"{s:5.2f}s" for s in secs))


if __name__ == "__main__":
    main()
