"""`fusec render` against `keras.utils.plot_model` on the same architectures, small and large.

Every timing is a fresh process, end to end (interpreter start, imports, the
work, the file written), the two sides alternating run by run. Cases:

1. small: specs/image_tag.json (15 nodes);
2. large: a generated NASNet-like spec of about ``--render-nodes`` nodes (a
   stem, then cells of separable convolutions, poolings, add and concat
   merges, a 1x1 projection shared by every cell, a frozen first quarter);
3. with ``--render-nasnet``: Keras's own NASNetMobile (771 layers),
   converted layer by layer into a fusec spec (parameter counts checked
   equal); ``plot_model`` draws ``keras.applications.NASNetMobile`` itself.

For 1 and 2 ``plot_model`` draws the same architecture built from the spec
by fusec's own build stage. The note of each row is the ``plot_model`` call
alone (TensorFlow loaded, model built), as measured inside its process.
Ratio: plot_model / fusec render. Target: at least 10. Without pydot or
TensorFlow the comparison is skipped with a row saying so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

from harness import PY, ROOT, Row, checked_child, fusec, interleave

NAME = "render"
TITLE = "fusec render vs keras.utils.plot_model, small and large   >= 10"
TARGET = 10.0
CELL_NODES = 13
F = 16  # filters everywhere: every cell's concat has 4F channels, so one shared projection fits all

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


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--render-runs", type=int, help="runs of each side (default 5; --quick 1)")
    group.add_argument("--render-nodes", type=int, default=800, help="size of the NASNet-like spec")
    group.add_argument("--render-formats", default="svg", help="comma-separated: svg, png, pdf")
    group.add_argument("--render-nasnet", action="store_true", help="also Keras's own NASNetMobile (slow)")


def _cell(c: str, prev: str, prev2: str, frozen: dict[str, Any]) -> dict[str, Any]:
    """The 13 nodes of one NASNet-like cell named ``c*``, reading ``prev`` and ``prev2``."""

    def sep(k: int, src: str) -> dict[str, Any]:
        cfg = {"filters": F, "kernel_size": k, "padding": "same", "activation": "relu"}
        return {"layer": "SeparableConv2D", "config": cfg, "inputs": src, **frozen}

    pool = {"pool_size": 3, "strides": 1, "padding": "same"}
    depthwise = {"kernel_size": 3, "padding": "same"}
    return {
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


def make_spec(n_nodes: int) -> dict[str, Any]:
    """A NASNet-like spec with about ``n_nodes`` nodes (inputs and outputs excluded)."""
    cells = max(1, (n_nodes - 5) // CELL_NODES)
    conv = {"filters": F, "kernel_size": 3, "padding": "same", "activation": "relu"}
    nodes: dict[str, Any] = {
        "stem": {"layer": "Conv2D", "config": conv, "inputs": "image"},
        "stem_bn": {"layer": "BatchNormalization", "inputs": "stem"},
    }
    prev, prev2 = "stem_bn", "stem"
    for i in range(cells):
        nodes.update(_cell(f"c{i}_", prev, prev2, {"trainable": False} if i < cells // 4 else {}))
        prev, prev2 = f"c{i}_bn", prev
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


def cases(folder: Path, nodes: int, nasnet: bool) -> list[tuple[str, Path, str]]:
    """(title, spec fusec draws, what plot_model draws: the same spec or "nasnet")."""
    large = folder / f"nasnet_like_{nodes}.json"
    doc = make_spec(nodes)
    large.write_text(json.dumps(doc))
    small = ROOT / "specs" / "image_tag.json"
    out = [("small: image_tag.json, 15 nodes", small, str(small))]
    out.append((f"large: NASNet-like spec, {len(doc['nodes'])} nodes", large, str(large)))
    if nasnet:
        mobile = folder / "nasnet_mobile.json"
        count = checked_child([PY, "-c", CONVERT_SCRIPT, str(mobile)]).stdout.strip()
        out.append((f"Keras NASNetMobile, {count} nodes", mobile, "nasnet"))
    return out


def compare(title: str, spec: Path, target: str, fmt: str, folder: Path, runs: int) -> Row:
    """One case in one format: fusec render and plot_model, interleaved."""
    ours_cmd = fusec("render", str(spec), "-o", str(folder / f"fusec.{fmt}"), "--format", fmt)
    keras_cmd = [PY, "-c", PLOT_SCRIPT, target, str(folder / f"keras.{fmt}")]
    ours, theirs = interleave([lambda: checked_child(ours_cmd), lambda: checked_child(keras_cmd)], runs, warmup=1)
    calls = sorted(json.loads(c.stdout.strip().splitlines()[-1])["plot_s"] for c in theirs)
    note = f"plot_model call alone (TF loaded, model built): {calls[len(calls) // 2]:.2f} s"
    t_ours, t_keras = [c.seconds for c in ours], [c.seconds for c in theirs]
    return Row(f"render ({fmt}, end to end)", title, t_ours, t_keras, "s", "b/f", lo=TARGET, note=note)


def run(args: argparse.Namespace) -> list[Row]:
    """A row per case and format, or one explaining why the comparison was skipped."""
    missing = [m for m in ("pydot", "tensorflow") if importlib.util.find_spec(m) is None]
    if missing:
        return [Row("render", f"skipped: {', '.join(missing)} not installed", [], [], "s", "b/f")]
    runs = args.render_runs or (1 if args.quick else 5)
    with tempfile.TemporaryDirectory(prefix="fusec-bench-") as tmp:
        folder = Path(tmp)
        todo = cases(folder, args.render_nodes, args.render_nasnet)
        return [
            compare(title, spec, target, fmt, folder, runs)
            for fmt in args.render_formats.split(",")
            for title, spec, target in todo
        ]
