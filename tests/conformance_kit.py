"""The keras.applications conformance kit: import -> check -> compile -> same outputs, per model.

Used by tests/test_conformance.py (one representative per family) and by
tools/conformance.py (every member, ``make conformance``). For one model:

1. build it with ``weights=None``, a small input and ``classes=10``; give every
   variable random, non-trivial values from a fixed seed (batch-norm moving
   statistics too, calibrated on a batch so activations stay in range through
   hundreds of layers), check the outputs are finite and not constant;
2. save it as ``.keras``; ``fusec.importer.import_source`` it into a spec (and
   its weights file);
3. ``check_spec``: every node's static shape equals the Keras layer's output
   shape, the total parameter count equals ``model.count_params()``;
4. ``fusec compile`` (the CLI, in this process) into a temporary folder;
5. the compiled ``.keras`` gives Keras's outputs on a fixed random batch
   (max |diff| <= 1e-5), and so does its SavedModel, served by plain
   TensorFlow in a separate process that cannot import fusec.

A stage that fails raises ``StageFailure`` naming the stage and carrying the
importer's or checker's message; ``run_member`` records it in the ``Result``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from helpers import BLOCK_FUSEC

#: Largest accepted |Keras - fusec| on the outputs.
TOLERANCE = 1e-5
CLASSES = 10
SEED = 1234
BATCH = 2  # the compared batch (CI-friendly): the calibration batch's first samples
CALIBRATION_BATCH = 8  # the batch that sets the batch-norm statistics

#: Every family of keras.applications in Keras 3.15.1, its members and the smallest input each accepts.
FAMILIES: dict[str, tuple[tuple[str, int], ...]] = {
    "ConvNeXt": tuple((f"ConvNeXt{s}", 32) for s in ("Tiny", "Small", "Base", "Large", "XLarge")),
    "DenseNet": tuple((f"DenseNet{n}", 32) for n in (121, 169, 201)),
    "EfficientNet": tuple((f"EfficientNetB{i}", 32) for i in range(8)),
    "EfficientNetV2": tuple((f"EfficientNetV2{s}", 32) for s in ("B0", "B1", "B2", "B3", "S", "M", "L")),
    "InceptionResNetV2": (("InceptionResNetV2", 75),),
    "InceptionV3": (("InceptionV3", 75),),
    "MobileNet": (("MobileNet", 32),),
    "MobileNetV2": (("MobileNetV2", 32),),
    "MobileNetV3": (("MobileNetV3Small", 32), ("MobileNetV3Large", 32)),
    "NASNet": (("NASNetMobile", 32), ("NASNetLarge", 32)),
    "ResNet": tuple((f"ResNet{n}", 32) for n in (50, 101, 152)),
    "ResNetV2": tuple((f"ResNet{n}V2", 32) for n in (50, 101, 152)),
    "VGG": (("VGG16", 32), ("VGG19", 32)),
    "Xception": (("Xception", 71),),
}

#: Families the issue names that Keras 3 does not ship (checked by tests/test_conformance.py).
ABSENT = {
    "RegNet": "keras.applications has no RegNet* in Keras 3 (it was a tf.keras 2.x application)",
    "ResNetRS": "keras.applications has no ResNetRS* in Keras 3 (it was a tf.keras 2.x application)",
}

#: Families whose models include their own preprocessing, so they take pixels in [0, 255].
PIXEL_FAMILIES = frozenset({"ConvNeXt", "EfficientNet", "EfficientNetV2", "MobileNetV3"})

#: Keras operation name -> (output shape, the keys the import report may list it under).
KerasShapes = dict[str, tuple[tuple[int | None, ...], tuple[str, ...]]]


@dataclass(frozen=True)
class Member:
    """One keras.applications model at the input size the conformance suite uses."""

    name: str
    family: str
    size: int

    @property
    def representative(self) -> bool:
        return FAMILIES[self.family][0][0] == self.name


MEMBERS: tuple[Member, ...] = tuple(Member(n, fam, s) for fam, ms in FAMILIES.items() for n, s in ms)
REPRESENTATIVES: tuple[Member, ...] = tuple(m for m in MEMBERS if m.representative)
BY_NAME: dict[str, Member] = {m.name: m for m in MEMBERS}


class StageFailure(AssertionError):
    """A conformance stage failed: ``stage`` (build/import/check/shapes/params/compile/outputs/saved_model)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


@dataclass
class Result:
    """What one model's run measured (seconds, parameter counts, differences)."""

    model: str
    family: str
    size: int
    layers: int = 0
    params: int = 0
    nodes: int = 0
    import_s: float | None = None
    check_s: float | None = None
    compile_s: float | None = None
    max_diff: float | None = None
    saved_diff: float | None = None
    status: str = "not run"
    stage: str = ""
    message: str = ""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- the Keras side ----------------------------------------------------------------------------


def make_model(keras: Any, member: Member) -> Any:
    """The application with ``weights=None``, the member's input size and ``CLASSES`` classes."""
    build = getattr(keras.applications, member.name)
    return build(weights=None, input_shape=(member.size, member.size, 3), classes=CLASSES)


def _leaf_layers(model: Any) -> Iterator[Any]:
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not list(layer._flatten_layers(include_self=False, recursive=False)):
            yield layer


def _fan_in(name: str, shape: tuple[int, ...]) -> int:
    if name == "depthwise_kernel":  # (h, w, in, multiplier): each output sees one channel
        return int(np.prod(shape[:-2]))
    return int(np.prod(shape[:-1]))


def _value(layer: Any, name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray | None:
    """A random value for one variable, scaled by its role; None leaves it (integer counters)."""
    kind = type(layer).__name__
    if kind == "LayerScale":
        return rng.uniform(0.1, 0.5, shape)
    if kind == "Normalization":
        return {"mean": lambda: rng.normal(0.0, 0.1, shape), "variance": lambda: rng.uniform(0.5, 2.0, shape)}.get(
            name, lambda: None
        )()
    table: dict[str, Callable[[], np.ndarray]] = {
        "gamma": lambda: rng.uniform(0.5, 1.5, shape),
        "beta": lambda: rng.normal(0.0, 0.2, shape),
        "bias": lambda: rng.normal(0.0, 0.1, shape),
        "moving_mean": lambda: rng.normal(0.0, 0.1, shape),
        "moving_variance": lambda: rng.uniform(0.5, 1.5, shape),
    }
    if name in table:
        return table[name]()
    if len(shape) >= 2:  # kernels: He-normal by fan-in, so ReLU stacks keep their scale
        return rng.normal(0.0, np.sqrt(2.0 / max(1, _fan_in(name, shape))), shape)
    return rng.normal(0.0, 0.1, shape)


def pixels(member: Member, n: int, seed: int) -> np.ndarray:
    """A random batch in the range the model expects (pixels, or preprocessed values)."""
    rng = np.random.default_rng(seed)
    shape = (n, member.size, member.size, 3)
    if member.family in PIXEL_FAMILIES:
        return rng.uniform(0.0, 255.0, shape).astype("float32")
    return rng.uniform(-1.0, 1.0, shape).astype("float32")


def randomize(keras: Any, model: Any, member: Member, seed: int = SEED) -> None:
    """Random non-trivial values for every float variable, batch-norm statistics calibrated, then perturbed.

    The batch-norm statistics are first set to those of a calibration batch
    (one training-mode pass with momentum 0 and dropout off), so activations
    keep their scale through any depth, then moved off those values at
    random (mean shifted, variance scaled), so no statistic is trivial.
    Last, the classifier is scaled so its softmax does not saturate.
    """
    rng = np.random.default_rng(seed)
    layers = list(_leaf_layers(model))
    for layer in layers:
        for var in layer.weights:
            if "float" not in str(var.dtype):
                continue
            name = var.path.split("/")[-1]
            value = _value(layer, name, tuple(var.shape), rng)
            if value is not None:
                var.assign(value.astype(str(var.dtype)))
        if type(layer).__name__ == "Normalization" and hasattr(layer, "finalize_state"):
            layer.finalize_state()
    norms = [la for la in layers if type(la).__name__ == "BatchNormalization"]
    drops = [la for la in layers if hasattr(la, "rate") and "Dropout" in type(la).__name__]
    saved = [(la, la.momentum) for la in norms] + [(la, la.rate) for la in drops]
    try:
        for la in norms:
            la.momentum = 0.0
        for la in drops:
            la.rate = 0.0
        model(pixels(member, CALIBRATION_BATCH, seed + 1), training=True)
    finally:
        for la, value in saved:
            setattr(la, "momentum" if la in norms else "rate", value)
    for la in norms:
        var = la.moving_variance.numpy()
        la.moving_mean.assign(la.moving_mean.numpy() + rng.normal(0.0, 0.05, var.shape) * np.sqrt(var + 1e-3))
        la.moving_variance.assign(var * rng.uniform(0.8, 1.25, var.shape) + 1e-4)
    _tame_head(keras, model, pixels(member, CALIBRATION_BATCH, seed + 1))


def _tame_head(keras: Any, model: Any, batch: np.ndarray, spread: float = 1.5) -> None:
    """Scale the classifier (the last layer with a kernel) so its logits spread about ``spread``, not saturate."""
    head = [la for la in model.layers if hasattr(la, "kernel")][-1]
    features = keras.Model(model.input, head.input)(batch, training=False)
    activation = head.activation
    head.activation = keras.activations.linear
    try:
        logits = np.asarray(head(features))
    finally:
        head.activation = activation
    scale = spread / max(float(np.std(logits)), 1e-6)
    for var in head.weights:
        var.assign(var.numpy() * scale)


def sane(outputs: np.ndarray) -> str:
    """ "" when the outputs are finite and differ between samples, else why not."""
    if not np.all(np.isfinite(outputs)):
        return "outputs contain NaN or inf"
    if float(np.ptp(outputs, axis=0).max()) < 1e-4:
        return "outputs are (almost) the same for every sample"
    return ""


def _nested_output(op: Any) -> str | None:
    """For a nested model, its output layer's name (the importer keys inner layers ``outer/inner``)."""
    if not getattr(op, "layers", None):
        return None
    try:
        return str(op.outputs[0]._keras_history.operation.name)
    except (AttributeError, ValueError, IndexError, TypeError):
        return str(op.layers[-1].name)


def keras_shapes(model: Any) -> KerasShapes:
    """Each operation's output shape (layers called once; ops such as ``x + 3`` too) and its possible keys."""
    shapes: KerasShapes = {}
    for op in model.operations:
        try:
            out = op.output
        except (AttributeError, ValueError):  # called more than once: compared through the spec's shared calls
            continue
        if isinstance(out, list | tuple):
            continue
        inner = _nested_output(op)
        shapes[op.name] = (tuple(out.shape), (op.name, f"{op.name}/{inner}") if inner else (op.name,))
    return shapes


# --- the fusec side ----------------------------------------------------------------------------


SERVE = BLOCK_FUSEC + textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf
    folder, batch, result, theirs = sys.argv[1:5]
    x = tf.constant(np.load(batch, allow_pickle=False))
    manifest = json.load(open(os.path.join(folder, "fusec.json")))
    (name,) = manifest["signature"]["inputs"]
    outputs = list(manifest["signature"]["outputs"])
    serve = tf.saved_model.load(os.path.join(folder, "saved_model")).signatures["serving_default"]
    np.save(result, serve(**{name: x})[outputs[0]].numpy(), allow_pickle=False)
    if os.path.isdir(theirs):  # Keras's own export of the source model, served the same way
        serve = tf.saved_model.load(theirs).signatures["serving_default"]
        (arg,) = serve.structured_input_signature[1]
        np.save(result + ".keras.npy", next(iter(serve(**{arg: x}).values())).numpy(), allow_pickle=False)
    print("fusec" in sys.modules)
    """
)


def problems_text(err: Exception, limit: int = 12) -> str:
    """A FusecError's problems (the first ``limit``, then how many more), or any error's type and text."""
    lines = err.lines() if hasattr(err, "lines") else [f"{type(err).__name__}: {err}"]
    more = f" (+{len(lines) - limit} more)" if len(lines) > limit else ""
    return " | ".join(" ".join(line.split()) for line in lines[:limit]) + more


def _stage(name: str, fn: Callable[[], Any]) -> Any:
    """``fn()``; any exception becomes a StageFailure for ``name`` with its message (and, for a crash, where)."""
    try:
        return fn()
    except StageFailure:
        raise
    except Exception as err:  # a conformance run reports every failure, crashes included
        from fusec.errors import FusecError

        text = problems_text(err)
        if not isinstance(err, FusecError):
            import traceback

            frames = traceback.extract_tb(err.__traceback__)
            ours = [f for f in frames if "/compiler/" in f.filename or "/fusec/" in f.filename]
            where = (ours or frames)[-1]
            text = f"crashed: {text} (at {Path(where.filename).name}:{where.lineno} in {where.name})"
        raise StageFailure(name, text) from err


def compare_shapes(shapes: KerasShapes, ids: dict[str, str], info: dict[str, Any]) -> list[str]:
    """Every Keras operation's output shape against its node's static shape; the differences.

    An input layer is found under the spec input of the same name when the report does not list it.
    """
    bad = []
    for name, (shape, keys) in shapes.items():
        node = next((ids[k] for k in keys if ids.get(k) in info), name if name in info else None)
        if node is None:
            bad.append(f"`{name}`: no node in the spec")
            continue
        got = tuple(info[node].shape)
        if got != shape:
            bad.append(f"`{name}` (node `{node}`): fusec {got}, Keras {shape}")
    return bad


def serve_saved_model(folder: Path, batch: np.ndarray, work: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The SavedModel's first output on ``batch``, served by plain TensorFlow in a process without fusec.

    Also Keras's own SavedModel of the source (``work/keras_saved_model``, when there), served the same way.
    """
    np.save(work / "batch.npy", batch, allow_pickle=False)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    theirs = work / "keras_saved_model"
    proc = subprocess.run(
        [sys.executable, "-c", SERVE, str(folder), str(work / "batch.npy"), str(work / "served.npy"), str(theirs)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd="/",
        env=env,
    )
    if proc.returncode != 0:
        raise StageFailure("saved_model", proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    if proc.stdout.strip().splitlines()[-1] != "False":
        raise StageFailure("saved_model", "fusec was imported by the serving process")
    keras_served = work / "served.npy.keras.npy"
    return np.load(work / "served.npy", allow_pickle=False), (
        np.load(keras_served, allow_pickle=False) if keras_served.is_file() else None
    )


@dataclass
class _Run:
    """What the stages hand each other for one model."""

    member: Member
    work: Path
    result: Result
    batch: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reference: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shapes: KerasShapes = field(default_factory=dict)
    archive: Path = Path()
    spec: Path = Path()
    out: Path = Path()
    serve: bool = True


def _keras_stage(keras: Any, run: _Run) -> None:
    """Build, randomise, check the outputs are sane, save the ``.keras`` archive."""
    model = make_model(keras, run.member)
    randomize(keras, model, run.member)
    run.batch = pixels(run.member, CALIBRATION_BATCH, SEED + 1)[:BATCH]
    run.reference = np.asarray(model(run.batch, training=False))
    why = sane(run.reference)
    if why:
        raise StageFailure("build", f"random weights give unusable outputs: {why}")
    run.result.layers = len(model.layers)
    run.result.params = int(model.count_params())
    run.shapes = keras_shapes(model)
    run.archive = run.work / f"{run.member.name}.keras"
    model.save(run.archive)
    if run.serve:  # TensorFlow's graph numerics differ from eager ones: compare SavedModel with SavedModel
        model.export(str(run.work / "keras_saved_model"), verbose=False)


def _import_stage(run: _Run) -> Any:
    """``import_source`` the archive into ``spec/``; the report."""
    from fusec.importer import import_source

    run.spec = run.work / "spec" / f"{run.member.name}.json"
    run.spec.parent.mkdir()
    start = time.perf_counter()
    report = _stage("import", lambda: import_source(str(run.archive), run.spec))
    run.result.import_s = time.perf_counter() - start
    return report


def _check_stage(run: _Run, report: Any, svg: Path | None) -> None:
    """``check_spec``: parameter total and every node's shape equal Keras's; optionally the SVG drawn."""
    from fusec.static.check import check_spec

    start = time.perf_counter()
    checked = _stage("check", lambda: check_spec(run.spec))
    run.result.check_s = time.perf_counter() - start
    run.result.nodes = len(checked.order)
    if checked.totals.params != run.result.params:
        raise StageFailure("params", f"fusec counts {checked.totals.params:,}, Keras {run.result.params:,}")
    bad = compare_shapes(run.shapes, report.nodes, checked.info)  # Keras layer name -> node id
    if bad:
        more = f" (+{len(bad) - 8} more)" if len(bad) > 8 else ""
        raise StageFailure("shapes", f"{len(bad)} of {len(run.shapes)} differ: " + "; ".join(bad[:8]) + more)
    if svg is not None:
        from fusec.render import render
        from fusec.render.output import write_atomic

        svg.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(svg, _stage("render", lambda: render(checked, "svg")))


def _json_problems(text: str) -> list[str]:
    """``path: message (hint)`` for every problem of a ``--json`` error report (empty when it is not one)."""
    try:
        report = json.loads(text)
    except ValueError:
        return []
    files = report.get("files", []) if isinstance(report, dict) else []
    found = [p for f in files if isinstance(f, dict) for p in f.get("errors", []) if isinstance(p, dict)]
    return [f"{p.get('path', '$')}: {p.get('message')}" + (f" ({p['hint']})" if p.get("hint") else "") for p in found]


def _compile_stage(run: _Run) -> None:
    """``fusec compile SPEC -o OUT --json`` through the CLI, in this process."""
    from click.testing import CliRunner

    from fusec.cli import cli

    run.out = run.work / "out"
    start = time.perf_counter()
    got = CliRunner().invoke(cli, ["compile", str(run.spec), "-o", str(run.out), "--json"])
    run.result.compile_s = time.perf_counter() - start
    if got.exit_code != 0:
        problems = _json_problems(got.output)
        text = " | ".join(problems[:12]) + (f" (+{len(problems) - 12} more)" if len(problems) > 12 else "")
        if got.exception is not None and not isinstance(got.exception, SystemExit):
            text = f"crashed: {type(got.exception).__name__}: {got.exception}"
        raise StageFailure("compile", text or " ".join(got.output.split())[-600:] or f"exit {got.exit_code}")


def _outputs_stage(keras: Any, run: _Run) -> None:
    """The compiled ``.keras`` gives Keras's outputs, and its SavedModel those of Keras's own SavedModel."""
    import fusec.keras.fusion  # noqa: F401  (registers fusec's own layers)

    manifest = json.loads((run.out / "fusec.json").read_text(encoding="utf-8"))
    model = _stage("outputs", lambda: keras.saving.load_model(run.out / f"{manifest['name']}.keras"))
    (name,) = manifest["signature"]["inputs"]
    got = model({name: run.batch}, training=False)
    if isinstance(got, dict):  # a compiled model answers by the spec's output names
        got = got[next(iter(manifest["signature"]["outputs"]))]
    got = np.asarray(got[0] if isinstance(got, list | tuple) else got)
    del model
    if got.shape != run.reference.shape:
        raise StageFailure("outputs", f"shape {got.shape}, Keras {run.reference.shape}")
    run.result.max_diff = float(np.max(np.abs(got - run.reference)))
    if not run.result.max_diff <= TOLERANCE:
        raise StageFailure("outputs", f"compiled .keras vs Keras: max |diff| {run.result.max_diff:.3g} > {TOLERANCE:g}")
    if run.serve:
        served, theirs = serve_saved_model(run.out, run.batch, run.work)
        eager = float(np.max(np.abs(served - run.reference)))
        run.result.saved_diff = eager if theirs is None else float(np.max(np.abs(served - theirs)))
        if theirs is not None and eager > TOLERANCE:
            own = float(np.max(np.abs(theirs - run.reference)))
            run.result.notes.append(f"SavedModels vs eager Keras: fusec's {eager:.2g}, Keras's own export {own:.2g}")
        if not run.result.saved_diff <= TOLERANCE:
            vs = "eager Keras" if theirs is None else "Keras's own SavedModel of the source"
            raise StageFailure(
                "saved_model", f"fusec's SavedModel vs {vs}: max |diff| {run.result.saved_diff:.3g} > {TOLERANCE:g}"
            )


def run_member(keras: Any, member: Member, work: Path, *, svg: Path | None = None, serve: bool = True) -> Result:
    """The whole conformance run for one model in ``work`` (left for the caller to delete); never raises."""
    import gc

    run = _Run(member, work, Result(member.name, member.family, member.size), serve=serve)
    try:
        _stage("build", lambda: _keras_stage(keras, run))
        gc.collect()
        report = _import_stage(run)
        _check_stage(run, report, svg)
        _compile_stage(run)
        gc.collect()
        _outputs_stage(keras, run)
    except StageFailure as failure:
        message = failure.message.replace(f"{work}/", "")  # the temporary folder means nothing later
        run.result.status, run.result.stage, run.result.message = "fail", failure.stage, message
    else:
        run.result.status = "pass"
    return run.result
