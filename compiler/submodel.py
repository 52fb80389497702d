"""Pretrained sub-models: ``model`` nodes, inspected statically and loaded safely.

A ``model`` node calls another network on its inputs: a Keras ``.keras``
archive, or another fusec spec (optionally with trained weights). ``check``
learns its input and output shapes and parameter counts without TensorFlow:

* a fusec spec is checked recursively (nesting is bounded, cycles refused);
* a ``.keras`` archive is a zip of ``config.json`` and ``model.weights.h5``:
  the config is scanned so that every class in it is one fusec knows (no
  Lambda, no TFSMLayer, no custom or dotted classes: the same closed
  vocabulary a spec has), input shapes come from its InputLayers, the output
  shape from fusec's own rule for the output layer, and parameter counts from
  the weight file's dataset shapes (read with h5py, which does not import
  TensorFlow).

Paths resolve relative to the spec's folder and may not leave it (symlinks
are resolved first) unless a folder is allowed explicitly (``--allow-dir``).
At build time archives load with Keras's ``safe_mode=True``.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PathPart, RuleError
from .layers import LAYERS
from .merges import MERGES
from .rules import Shape

MAX_ARCHIVE_BYTES = 2 << 30
MAX_CONFIG_BYTES = 16 << 20
MAX_INFLATED = 64 << 20  # weights may inflate past 20x the archive's size only up to this
MAX_NESTING = 8
MAX_NODES = 20_000  # nodes of all sub-models of one spec, nested ones included

#: Keras classes allowed inside a sub-model archive besides the vocabulary.
_STRUCTURAL = {"InputLayer", "Functional", "Sequential", "Model"}
_KERAS_MERGES = {rule.keras: name for name, rule in MERGES.items()}
#: The only modules a sub-model archive may name: Keras's public layer,
#: initializer, regularizer, optimizer, loss and metric modules, its model
#: classes, and fusec's own fusion layers. Any other module (``keras.utils``,
#: ``os``, ...) is refused before Keras could import it.
_MODULES = {
    "keras",
    "keras.layers",
    "keras.initializers",
    "keras.regularizers",
    "keras.constraints",
    "keras.optimizers",
    "keras.optimizers.schedules",
    "keras.losses",
    "keras.metrics",
    "keras.models",
    "keras.src.models.functional",
    "keras.src.models.sequential",
    "keras.src.models.model",
    "fusec.fusion",
}
_FUSEC_REGISTERED = {f"fusec>{rule.keras}" for rule in MERGES.values()}
_NON_TRAINABLE_VARS = {"BatchNormalization": {2, 3}}  # moving mean and variance


@dataclass(frozen=True)
class SubModel:
    """What fusec knows statically about a sub-model.

    Attributes:
        path: the resolved file.
        kind: ``keras`` or ``spec``.
        inputs: input name -> shape (batch axis first).
        outputs: output name -> shape.
        trainable: trainable parameter count (as saved).
        non_trainable: non-trainable parameter count.
    """

    path: Path
    kind: str
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]
    trainable: int
    non_trainable: int
    nodes: int = 1  # nodes (or layers) it holds, nested sub-models included


def resolve_path(raw: str, spec_dir: Path, allowed: Sequence[Path], key: str = "model") -> Path:
    """Resolve a sub-model path under the spec's folder or an allowed folder.

    Raises:
        RuleError: the path escapes every allowed folder or does not exist.
    """
    try:
        candidate = Path(raw)
        full = candidate if candidate.is_absolute() else spec_dir / candidate
        resolved = full.resolve()
        roots = [spec_dir.resolve(), *(Path(a).resolve() for a in allowed)]
    except (OSError, ValueError, RuntimeError) as exc:  # NUL bytes, names too long, symlink loops
        raise RuleError(f"path `{raw}` cannot be resolved ({exc})", key, "check the path") from None
    if not any(resolved == r or r in resolved.parents for r in roots):
        raise RuleError(
            f"path `{raw}` leaves the spec's folder (it resolves to {resolved})",
            key,
            "keep sub-models beside the spec, or allow the folder with --allow-dir",
        )
    try:
        is_file = resolved.is_file()
    except (OSError, ValueError):
        is_file = False
    if not is_file:
        raise RuleError(f"no file `{raw}` (looked for {resolved})", key, "check the path")
    return resolved


def _scan(node: Any, where: str, found: list[str], in_layers: bool = False) -> None:
    """Collect everything in a Keras config that fusec would refuse to load."""
    if isinstance(node, dict):
        cls = node.get("class_name")
        module = node.get("module")
        registered = node.get("registered_name")
        known = cls in LAYERS or cls in _KERAS_MERGES or cls in _STRUCTURAL
        if in_layers and isinstance(cls, str) and not known:
            found.append(f"layer `{cls}` at {where}")
        if isinstance(module, str) and module not in _MODULES:
            found.append(f"module `{module}` at {where}")
        if isinstance(registered, str) and ">" in registered and registered not in _FUSEC_REGISTERED:
            found.append(f"custom object `{registered}` at {where}")
        for key in ("function", "function_type", "output_shape_type"):
            if key in node:
                found.append(f"a serialized function (`{key}`) at {where}")
        for k, v in node.items():
            _scan(v, f"{where}.{k}", found, k in ("layers", "layer"))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _scan(v, f"{where}[{i}]", found, in_layers)


def _layer_out(layer: Mapping[str, Any]) -> Shape | None:
    """Output shape of a saved layer from fusec's own rule, where fusec has one."""
    cls, cfg = layer["class_name"], layer.get("config", {})
    build = layer.get("build_config") or {}
    shape = build.get("input_shape")
    if cls in LAYERS and shape is not None:
        rule = LAYERS[cls]
        kw = {k: v for k, v in cfg.items() if k in rule.param_index and not isinstance(v, dict)}
        try:
            return rule.infer(tuple(shape), rule.resolve(kw)).shape
        except Exception:  # a rule fed values Keras wrote (or an attacker did): no shape
            return None
    if cls in _KERAS_MERGES and shape is not None:
        rule_m = MERGES[_KERAS_MERGES[cls]]
        kw = {k: v for k, v in cfg.items() if k in rule_m.param_index}
        try:
            return rule_m.infer([(str(i), tuple(s)) for i, s in enumerate(shape)], rule_m.resolve(kw)).shape
        except Exception:
            return None
    return None


def inspect_keras(path: Path) -> SubModel:
    """Read a ``.keras`` archive's signature and parameter counts without TensorFlow.

    Raises:
        RuleError: the archive is unreadable, holds classes fusec refuses, or
            its output shape cannot be derived.
    """
    if path.stat().st_size > MAX_ARCHIVE_BYTES:
        raise RuleError(f"`{path.name}` is over {MAX_ARCHIVE_BYTES >> 30} GiB", "model")
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise RuleError(f"`{path.name}`'s config.json is too large", "model")
            config = json.loads(zf.read("config.json"))
            refused: list[str] = []
            _scan(config, "config", refused)  # before any weights are parsed
            if refused:
                raise RuleError(
                    f"`{path.name}` holds classes fusec will not load: {', '.join(refused[:3])}"
                    + (f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""),
                    "model",
                    "only layers of fusec's vocabulary may appear in a sub-model (no Lambda, no custom code)",
                )
            names = set(zf.namelist())
            if "model.weights.h5" in names:
                _check_expansion(path, zf.getinfo("model.weights.h5"))
            weights = _weight_counts(zf) if "model.weights.h5" in names else ({}, 0, 0)
    except RuleError:
        raise
    except Exception as exc:  # a hostile archive can break zipfile, json or h5py in many ways
        raise RuleError(f"`{path.name}` is not a readable .keras archive ({_brief(exc)})", "model") from None
    try:
        return _signature(path, config, weights)
    except RuleError:
        raise
    except Exception as exc:  # malformed structure: wrong types, missing keys
        raise RuleError(
            f"`{path.name}`'s config.json does not describe a Keras model fusec can read ({_brief(exc)})", "model"
        ) from None


def _check_expansion(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse weights that would inflate far past the archive: Keras stores them uncompressed."""
    on_disk = path.stat().st_size
    if info.file_size > min(MAX_ARCHIVE_BYTES, max(MAX_INFLATED, 20 * on_disk)):
        raise RuleError(
            f"`{path.name}`'s weights would expand to {info.file_size:,} bytes from a {on_disk:,}-byte archive",
            "model",
            "Keras stores weights uncompressed: save the sub-model with Keras",
        )


def _brief(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."


def _signature(path: Path, config: Any, weights: tuple[dict[str, int], int, int]) -> SubModel:
    """Inputs and outputs of a scanned archive's config (raises on malformed structure)."""
    cfg = config.get("config", {})
    layers = {layer["config"]["name"]: layer for layer in cfg.get("layers", []) if "config" in layer}
    inputs: dict[str, Shape] = {}
    for name, ref in _named(cfg.get("input_layers")).items():
        layer = layers.get(ref[0], {})
        shape = layer.get("config", {}).get("batch_shape")
        if shape is None:
            raise RuleError(f"`{path.name}`: input `{name}` has no saved shape", "model")
        inputs[name] = tuple(shape)
    outputs: dict[str, Shape] = {}
    for name, ref in _named(cfg.get("output_layers")).items():
        out = _layer_out(layers.get(ref[0], {"class_name": "?"}))
        if out is None:
            raise RuleError(
                f"`{path.name}`: the shape of output `{name}` (layer `{ref[0]}`) cannot be derived statically",
                "model",
                "end the sub-model with a layer of fusec's vocabulary (Dense, say)",
            )
        outputs[name] = out
    _, trainable, non_trainable = weights
    return SubModel(path, "keras", inputs, outputs, trainable, non_trainable, max(1, len(layers)))


def _named(refs: Any) -> dict[str, list[Any]]:
    """Keras saves inputs/outputs as a dict, a list of refs, or one ref."""
    if isinstance(refs, dict):
        return dict(refs)
    if isinstance(refs, list) and refs and isinstance(refs[0], list):
        return {r[0]: r for r in refs}
    if isinstance(refs, list) and refs:
        return {refs[0]: refs}
    return {}


def _weight_counts(zf: zipfile.ZipFile) -> tuple[dict[str, int], int, int]:
    import io

    import h5py

    data = io.BytesIO(zf.read("model.weights.h5"))
    per_layer: dict[str, int] = {}
    trainable = non_trainable = 0
    with h5py.File(data, "r") as h5:

        def visit(name: str, obj: Any) -> None:
            nonlocal trainable, non_trainable
            if not isinstance(obj, h5py.Dataset) or not name.startswith("layers/"):
                return
            size = math.prod(obj.shape) if obj.shape else 1
            parts = name.split("/")
            per_layer[parts[1]] = per_layer.get(parts[1], 0) + size
            cls = _layer_class(parts[1])
            if parts[-1].isdigit() and int(parts[-1]) in _NON_TRAINABLE_VARS.get(cls, set()):
                non_trainable += size
            else:
                trainable += size

        h5.visititems(visit)
    return per_layer, trainable, non_trainable


def _layer_class(h5_name: str) -> str:
    """Keras names weight groups after the layer class in snake case (``batch_normalization_1``)."""
    base = h5_name.rstrip("0123456789").rstrip("_")
    return "".join(p.capitalize() for p in base.split("_")).replace("BatchNormalization", "BatchNormalization")


def spec_submodel(checked: Any) -> SubModel:
    """The signature of a checked fusec spec used as a sub-model."""
    doc = checked.doc
    inputs = {i: checked.info[i].shape for i in doc["inputs"]}
    from .shapes import output_shape

    outputs = {
        name: output_shape(checked.info, checked.graph, ref.source)
        for name, ref in checked.graph.graph["outputs"].items()
    }
    nested = checked.models.tally[0] if checked.models is not None else 0
    return SubModel(
        checked.spec.path,
        "spec",
        inputs,
        outputs,
        checked.totals.trainable,
        checked.totals.non_trainable,
        len(checked.order) + nested,
    )


def node_path(base: tuple[PathPart, ...], key: str) -> tuple[PathPart, ...]:
    return (*base, key)


@dataclass(frozen=True)
class ModelContext:
    """What the shapes stage needs to resolve ``model`` nodes.

    Attributes:
        spec_dir: the folder of the spec being checked.
        allowed: further folders sub-model paths may point into.
        stack: the spec files being checked, outermost first (cycle guard).
        max_params: parameter budget passed on to nested specs.
    """

    spec_dir: Path
    allowed: tuple[Path, ...] = ()
    stack: tuple[Path, ...] = ()
    max_params: int = 500_000_000
    # Each sub-model file is read once per check, however many nodes (at any
    # depth) use it; the tally bounds the nodes all of them add up to. Without
    # both, ten nodes each using a spec of ten nodes each using ... is checked
    # ten to the power of the nesting depth times.
    cache: dict[Path, SubModel | RuleError] = field(default_factory=dict, compare=False, repr=False)
    tally: list[int] = field(default_factory=lambda: [0], compare=False, repr=False)


_CACHE: ContextVar[dict[Path, SubModel | RuleError] | None] = ContextVar("fusec_submodels", default=None)


def _cached(path: Path, ctx: ModelContext, read: Callable[[], SubModel]) -> SubModel:
    """``read()``, once per file for the outermost check and everything nested in it."""
    active = _CACHE.get()
    cache = ctx.cache if active is None else active
    if path not in cache:
        token = _CACHE.set(cache) if active is None else None
        try:
            cache[path] = read()
        except RuleError as err:
            cache[path] = err
        finally:
            if token is not None:
                _CACHE.reset(token)
    found = cache[path]
    if isinstance(found, RuleError):
        raise RuleError(found.message, found.key, found.hint)
    ctx.tally[0] += found.nodes
    if ctx.tally[0] > MAX_NODES:
        raise RuleError(
            f"the sub-models of this spec hold more than {MAX_NODES:,} nodes in all",
            "model",
            "use each sub-model fewer times, or nest them less deeply",
        )
    return found


def _fits(want: Shape, got: Shape) -> bool:
    return len(want) == len(got) and all(a is None or b is None or a == b for a, b in zip(want, got, strict=True))


def infer_model_node(
    node: Mapping[str, Any], refs: Sequence[Any], shapes: Mapping[str, Shape], ctx: ModelContext
) -> tuple[SubModel, str, dict[str, str]]:
    """Resolve a ``model`` node: its sub-model, chosen output, and input mapping.

    Returns:
        (sub-model, output name, {sub-model input name: source node id}).

    Raises:
        RuleError: bad path, unreadable or refused file, a nested spec that
            does not check, inputs that do not match, or an ambiguous output.
    """
    from .errors import FusecError

    raw = node["model"]
    path = resolve_path(raw, ctx.spec_dir, ctx.allowed)
    if path.suffix == ".keras":
        if "weights" in node:
            raise RuleError("`weights` applies to fusec-spec sub-models; a .keras archive has its own", "weights")
        sub = _cached(path, ctx, lambda: inspect_keras(path))
    elif path.suffix == ".json":
        if path in ctx.stack:
            chain = " -> ".join(p.name for p in (*ctx.stack[ctx.stack.index(path) :], path))
            raise RuleError(f"sub-model cycle: {chain}", "model", "a spec cannot contain itself")
        if len(ctx.stack) >= MAX_NESTING:
            raise RuleError(f"sub-models nest deeper than {MAX_NESTING} levels", "model")
        from .check import check_spec

        def read() -> SubModel:
            try:
                checked = check_spec(path, ctx.max_params, allowed=ctx.allowed, _stack=(*ctx.stack, path))
            except FusecError as err:
                first = err.problems[0].format(str(path)) if err.problems else str(err)
                raise RuleError(f"sub-model `{raw}` does not check: {first}", "model") from None
            return spec_submodel(checked)

        sub = _cached(path, ctx, read)
        if "weights" in node:
            weights = resolve_path(node["weights"], ctx.spec_dir, ctx.allowed, "weights")
            if not (weights.name.endswith(".weights.h5") or weights.suffix == ".keras"):
                raise RuleError("`weights` must be a .weights.h5 file or a compiled .keras archive", "weights")
    else:
        raise RuleError(f"`{raw}` is neither a .keras archive nor a .json fusec spec", "model")

    names = list(sub.inputs)
    if len(refs) == 1 and refs[0].slot == ():
        if len(names) != 1:
            raise RuleError(
                f"sub-model `{raw}` has inputs {', '.join(f'`{n}`' for n in names)}; give them by name",
                hint='write "inputs": {' + ", ".join(f'"{n}": ID' for n in names) + "}",
            )
        mapping = {names[0]: refs[0].source}
    else:
        mapping = {}
        for ref in refs:
            name = str(ref.slot[0]) if ref.slot else ""
            if name not in sub.inputs or len(ref.slot) != 1:
                raise RuleError(
                    f"sub-model `{raw}` has no input `{name}`; its inputs: {', '.join(f'`{n}`' for n in names)}"
                )
            mapping[name] = ref.source
        missing = [n for n in names if n not in mapping]
        if missing:
            raise RuleError(f"sub-model `{raw}` needs input `{missing[0]}`")
    for name, source in mapping.items():
        if not _fits(sub.inputs[name], shapes[source]):
            from .rules import fmt_shape

            raise RuleError(
                f"sub-model `{raw}` input `{name}` takes {fmt_shape(sub.inputs[name])}. "
                f"Received: {fmt_shape(shapes[source])} from `{source}`"
            )
    outputs = list(sub.outputs)
    chosen = node.get("output")
    if chosen is None:
        if len(outputs) != 1:
            raise RuleError(
                f"sub-model `{raw}` has outputs {', '.join(f'`{o}`' for o in outputs)}; choose one",
                hint='add "output": NAME',
            )
        chosen = outputs[0]
    elif chosen not in sub.outputs:
        raise RuleError(
            f"sub-model `{raw}` has no output `{chosen}`; its outputs: {', '.join(f'`{o}`' for o in outputs)}",
            "output",
        )
    return sub, chosen, mapping


def load_submodel(node: Mapping[str, Any], sub: SubModel, ctx: ModelContext, name: str) -> Any:
    """Load a sub-model for the build stage (safe mode for archives)."""
    import keras

    if sub.kind == "keras":
        model = keras.saving.load_model(sub.path, compile=False, safe_mode=True)
    else:
        from .build import build_model
        from .check import check_spec

        checked = check_spec(sub.path, ctx.max_params, allowed=ctx.allowed)
        model = build_model(checked, compile=False)
        if "weights" in node:
            weights = resolve_path(node["weights"], ctx.spec_dir, ctx.allowed, "weights")
            if weights.suffix == ".keras":
                trained = keras.saving.load_model(weights, compile=False, safe_mode=True)
                model.set_weights(trained.get_weights())
            else:
                model.load_weights(weights)
    model.name = name  # the sub-model appears in the parent under its node id
    model.trainable = node.get("trainable", True)
    return model
