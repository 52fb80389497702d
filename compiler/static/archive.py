"""Pretrained sub-models: ``model`` nodes, inspected statically and loaded safely.

A ``model`` node calls another network on its inputs: a Keras ``.keras``
archive, or another fusec spec (optionally with trained weights from a
``.weights.h5`` file or a ``.keras`` archive). ``check`` learns its input and
output shapes and parameter counts without TensorFlow, and inspects every
file Keras will read as fully as Keras will read it:

* a fusec spec is checked recursively (nesting is bounded, cycles refused);
* a ``.keras`` archive is a zip. Its central directory is sized before it is
  parsed, and it may hold only ``config.json``, ``metadata.json`` and
  ``model.weights.h5`` (no assets: Keras extracts an archive with more
  members to the temp folder), each within a size limit, none encrypted;
* every object of ``config.json`` (every dict with a ``class_name``,
  ``module`` or ``registered_name``, at any depth: nested models, wrapped
  and backward layers, initializers, regularizers, constraints, dtype
  policies, the compile config) must be a class of a closed allow-list for
  its module, and no serialized function may appear;
* the archive's functional graph is rebuilt from the layer configs and run
  through fusec's own layer and merge rules (``LAYERS``, ``MERGES``), from
  the declared input shapes: the output shapes and parameter counts are
  computed, never read from the archive's ``build_config`` (which must agree
  with them, since Keras builds each layer from it). A layer class, a config
  setting or a call argument outside fusec's vocabulary is refused;
* the weights file is read as HDF5 metadata only (h5py, which does not
  import TensorFlow): no external links, external storage or virtual
  datasets, numeric data only, declared sizes within the file's size, and
  the stored values must add up, layer by layer, to the computed counts;
* a ``weights`` file for a spec sub-model gets the same inspection and must
  fit the spec's layers.

Paths resolve relative to the spec's folder and may not leave it (symlinks
are resolved first) unless a folder is allowed explicitly (``--allow-dir``).
At build time archives load with Keras's ``safe_mode=True``.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import PathPart, RuleError
from ..vocab.layers import LAYERS, REFUSED
from ..vocab.merges import MERGES, MergeRule
from ..vocab.rule import MAX_DIM, LayerRule, Out, Shape, config_schema, fmt_shape

MAX_ARCHIVE_BYTES = 2 << 30  # an archive or weights file, and an archive's members inflated, in all
MAX_CONFIG_BYTES = 16 << 20
MAX_METADATA_BYTES = 1 << 16
MAX_INFLATED = 64 << 20  # a compressed member may inflate past 20x its compressed size only up to this
MAX_MEMBERS = 3  # config.json, metadata.json, model.weights.h5
MAX_CONFIG_VALUES = 1_000_000  # JSON values in one config.json
MAX_H5_OBJECTS = 200_000  # groups and datasets in one weights file
MAX_H5_DEPTH = 32
MAX_WORK = 200_000  # layer calls evaluated for one archive, nested models' calls included
MAX_NESTING = 8
MAX_NODES = 20_000  # nodes of all sub-models of one spec, nested ones included

_WEIGHTS = "model.weights.h5"
#: The members a .keras archive may hold, with the most each may inflate to.
_MEMBERS = {"config.json": MAX_CONFIG_BYTES, "metadata.json": MAX_METADATA_BYTES, _WEIGHTS: MAX_ARCHIVE_BYTES}
_RESAVE = "re-save the model with Keras (model.save('m.keras')) from layers of fusec's vocabulary"

# --- the allow-list of classes an archive may name --------------------------------

_KERAS_MERGES = {rule.keras: name for name, rule in MERGES.items()}
#: Keras layers fusec writes itself besides the vocabulary: ``Identity`` names a model output (build.py).
_PASS_THROUGH = frozenset({"Identity"})
_LAYER_CLASSES = frozenset({*LAYERS, *_KERAS_MERGES, *_PASS_THROUGH, "InputLayer"})
_MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
_POLICIES = frozenset({"DTypePolicy", "FloatDTypePolicy"})
_INITIALIZERS = frozenset(
    {
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "LecunNormal",
        "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal",
        "VarianceScaling", "Zeros",
    }
)  # fmt: skip
_REGULARIZERS = frozenset({"L1", "L2", "L1L2", "OrthogonalRegularizer"})
_CONSTRAINTS = frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"})
_OPTIMIZERS = frozenset(
    {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion", "Ftrl", "LossScaleOptimizer"}
)
_SCHEDULES = frozenset(
    {"ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay", "InverseTimeDecay", "CosineDecay",
     "CosineDecayRestarts"}
)  # fmt: skip


@lru_cache(maxsize=1)
def _classes() -> dict[str, frozenset[str]]:
    """Module -> the classes an archive may name in it. Any other module is refused."""
    from ..vocab.losses import LOSS_RULES, METRIC_RULES

    losses = frozenset(r.keras for r in LOSS_RULES.values())
    metrics = frozenset({r.keras for r in METRIC_RULES.values()} | {"MeanMetricWrapper", "Mean"})
    return {
        "keras.layers": _LAYER_CLASSES,
        "keras": _MODEL_CLASSES | _POLICIES,
        "keras.models": _MODEL_CLASSES,
        "keras.src.models.functional": frozenset({"Functional"}),
        "keras.src.models.sequential": frozenset({"Sequential"}),
        "keras.src.models.model": frozenset({"Model"}),
        "keras.initializers": _INITIALIZERS,
        "keras.regularizers": _REGULARIZERS,
        "keras.constraints": _CONSTRAINTS,
        "keras.optimizers": _OPTIMIZERS,
        "keras.optimizers.schedules": _SCHEDULES,
        "keras.losses": losses,
        "keras.metrics": metrics,
        "fusec.keras.fusion": frozenset({"WeightedMerge", "GatedMerge"}),
        # where fusec's own layers lived before the subpackages: archives compiled then still load
        "fusec.fusion": frozenset({"WeightedMerge", "GatedMerge"}),
    }


#: Serialized values Keras writes without a module: a tensor reference in a
#: layer call, and a tuple.
_SPECIAL = frozenset({"__keras_tensor__", "__tuple__"})
_FUSEC_REGISTERED = {f"fusec>{rule.keras}": rule.keras for rule in MERGES.values()}
_FUNCTION_KEYS = ("function", "function_type", "output_shape_type")


@dataclass(frozen=True)
class SubModel:
    """What fusec knows statically about a sub-model.

    Attributes:
        path: the resolved file.
        kind: ``keras`` or ``spec``.
        inputs: input name -> shape (batch axis first).
        outputs: output name -> shape.
        trainable: trainable parameter count.
        non_trainable: non-trainable parameter count.
        nodes: nodes (or layers) it holds, nested sub-models included.
        layer_params: the nonzero parameter count of each top-level layer
            (or node), sorted: what a weights file for it must hold.
        weight_bytes: bytes of weight data its archive stores (0 for a spec).
        load_bytes: bytes held in memory while Keras loads its files, beyond
            the model's own variables (the weights file, a second model).
        run: output shapes for given input shapes (archives: Keras runs the
            layers again on the shapes the sub-model is called with).
    """

    path: Path
    kind: str
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]
    trainable: int
    non_trainable: int
    nodes: int = 1
    layer_params: tuple[int, ...] = ()
    weight_bytes: int = 0
    load_bytes: int = 0
    run: Callable[[Mapping[str, Shape]], dict[str, Shape]] | None = field(default=None, compare=False, repr=False)

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


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


# --- the zip: every member, before anything is inflated ---------------------------------


class _Slice(io.RawIOBase):
    """A read-only window on an open file: a stored zip member, read in place (h5py seeks freely)."""

    def __init__(self, fh: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self._fh, self._start, self._size, self._pos = fh, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _directory_entries(fh: BinaryIO, size: int) -> tuple[int, int] | None:
    """(entries, directory bytes) from the end-of-central-directory record, read before zipfile parses it."""
    tail_len = min(size, (1 << 16) + 22)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    _, _, _, _, entries, cd_size, _, _ = struct.unpack("<4s4H2LH", tail[at : at + 22])
    return entries, cd_size


def _member_start(fh: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Where a member's data starts: after its local header (whose lengths may differ from the directory's)."""
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ValueError(f"bad local header for {info.filename}")
    name_len, extra_len = struct.unpack("<2H", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _members(fh: BinaryIO, label: str, key: str) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    """Open an archive and vet every member by its directory entry; nothing is inflated yet.

    Raises:
        RuleError: too many members, unknown or duplicate names, encryption,
            unusual compression, or sizes past the limits.
    """
    size = os.fstat(fh.fileno()).st_size
    directory = _directory_entries(fh, size)
    if directory is not None and (directory[0] > 16 or directory[1] > 1 << 20):
        raise RuleError(
            f"`{label}` holds {directory[0]:,} members; a .keras archive holds at most {MAX_MEMBERS}",
            key,
            "a .keras archive holds only config.json, metadata.json and model.weights.h5; " + _RESAVE,
        )
    zf = zipfile.ZipFile(fh)
    infos: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in zf.infolist():
        name = info.filename
        if name.startswith("assets/") or name == "assets":
            raise RuleError(
                f"`{label}` holds assets (`{name[:80]}`): no layer of fusec's vocabulary uses assets, "
                "and Keras would extract the whole archive to the temp folder",
                key,
                "remove the assets/ folder: " + _RESAVE,
            )
        if name not in _MEMBERS:
            raise RuleError(
                f"`{label}` holds a member fusec does not load: `{name[:80]}`",
                key,
                "a .keras archive holds only config.json, metadata.json and model.weights.h5 "
                "(Keras would extract any other member to the temp folder); " + _RESAVE,
            )
        if name in infos:
            raise RuleError(f"`{label}` holds `{name}` twice", key, _RESAVE)
        if info.flag_bits & 0x1:
            raise RuleError(f"`{label}`'s member `{name}` is encrypted", key, _RESAVE)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise RuleError(
                f"`{label}`'s member `{name}` uses compression method {info.compress_type}",
                key,
                "Keras stores members uncompressed; " + _RESAVE,
            )
        stored = info.compress_type == zipfile.ZIP_STORED
        inflate_cap = info.compress_size if stored else max(MAX_INFLATED, 20 * info.compress_size)
        if info.file_size > min(_MEMBERS[name], inflate_cap):
            raise RuleError(
                f"`{label}`'s member `{name}` would expand to {info.file_size:,} bytes from a "
                f"{size:,}-byte archive ({info.compress_size:,} bytes stored)",
                key,
                "Keras stores weights uncompressed: save the sub-model with Keras",
            )
        total += info.file_size
        infos[name] = info
    if total > MAX_ARCHIVE_BYTES:
        raise RuleError(
            f"`{label}`'s members would expand to {total:,} bytes in all, over the {MAX_ARCHIVE_BYTES >> 30} GiB limit",
            key,
            "use a smaller sub-model",
        )
    for name in ("config.json", _WEIGHTS):
        if name not in infos:
            raise RuleError(f"`{label}` has no `{name}`; it is not a Keras .keras archive", key, _RESAVE)
    return zf, infos


# --- config.json: every object, against the allow-list ---------------------------------


def _where(chain: Any) -> str:
    """A JSON path from a (parent, key) chain built while walking."""
    parts: list[str] = []
    while chain is not None:
        chain, k = chain
        parts.append(f"[{k}]" if isinstance(k, int) else f".{k}")
    return "config" + "".join(reversed(parts))


def scan_config(config: Any, label: str, key: str = "model") -> None:
    """Walk every value of an archive's config and refuse what Keras could turn into code.

    Every dict naming a ``class_name``, ``module`` or ``registered_name``, at
    any depth, must name a class of the allow-list for its module (layers of
    fusec's vocabulary, Keras's model classes, initializers, regularizers,
    constraints, dtype policies, optimizers, losses and metrics); a
    ``registered_name`` must be the class's own or one of fusec's fusion
    layers; no serialized function may appear. The walk is iterative and
    bounded in values and depth.

    Raises:
        RuleError: listing the first things refused, with where they are.
    """
    classes = _classes()
    found: list[str] = []
    count = 0
    stack: list[tuple[Any, Any, int]] = [(config, None, 0)]
    while stack:
        node, chain, depth = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES or depth > 200:
            what = f"more than {MAX_CONFIG_VALUES:,} values" if count > MAX_CONFIG_VALUES else "values nested too deep"
            raise RuleError(f"`{label}`'s config.json holds {what}", key, "use a smaller sub-model")
        if isinstance(node, dict):
            _judge(node, chain, classes, found)
            stack.extend((v, (chain, k), depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (chain, i), depth + 1) for i, v in enumerate(node))
        if len(found) >= 20:
            break
    if found:
        raise RuleError(
            f"`{label}` holds classes fusec will not load: {', '.join(found[:3])}"
            + (f" (and {len(found) - 3} more)" if len(found) > 3 else ""),
            key,
            "only layers of fusec's vocabulary may appear in a sub-model (no Lambda, no custom code)",
        )


def _judge(node: dict[str, Any], chain: Any, classes: Mapping[str, frozenset[str]], found: list[str]) -> None:
    if any(k in node for k in ("class_name", "module", "registered_name")):
        _judge_class(node, chain, classes, found)
    for k in _FUNCTION_KEYS:
        if k in node:
            found.append(f"a serialized function (`{k}`) at {_where(chain)}")


def _judge_class(node: dict[str, Any], chain: Any, classes: Mapping[str, frozenset[str]], found: list[str]) -> None:
    cls, module, registered = node.get("class_name"), node.get("module"), node.get("registered_name")
    where = _where(chain)
    if not isinstance(cls, str):
        found.append(f"an object without a class name at {where}")
        return
    layerish = module == "keras.layers" or cls in REFUSED or (chain is not None and chain[1] in ("layer", "layers"))
    if module is None:
        if cls not in _SPECIAL:
            kind = "layer" if layerish else "class"
            found.append(f"{kind} `{cls}` without a module (a legacy format) at {where}")
    elif not isinstance(module, str) or module not in classes:
        found.append(f"module `{module}` at {where}")
    elif cls not in classes[module]:
        found.append(f"layer `{cls}` at {where}" if layerish else f"class `{cls}` of `{module}` at {where}")
    if registered is not None and registered != cls and _FUSEC_REGISTERED.get(str(registered)) != cls:
        found.append(f"custom object `{registered}` at {where}")


# --- config.json: layer settings, translated into fusec configs --------------------------

_NUMBER = (int, float)


def _is_number(v: Any) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool)


#: Settings Keras writes that are not fusec config keys, with the values that
#: leave shapes, parameter counts and the computation fusec knows unchanged.
#: Any other value (``data_format: channels_first``, ``groups: 2``, a
#: ``quantization_config``, ``lora_rank``...) is outside fusec's vocabulary.
_NEUTRAL: dict[str, Callable[[Any], bool]] = {
    "name": lambda v: isinstance(v, str),
    "trainable": lambda v: isinstance(v, bool),
    "seed": lambda v: v is None or isinstance(v, int),
    "noise_shape": lambda v: v is None,
    "quantization_config": lambda v: v is None,
    "data_format": lambda v: v in (None, "channels_last"),
    "groups": lambda v: v == 1 and not isinstance(v, bool),
    "output_padding": lambda v: v is None,
    "stateful": lambda v: v is False,
    "unroll": lambda v: v is False,
    "zero_output_for_mask": lambda v: isinstance(v, bool),
    "synchronized": lambda v: v is False,
    "renorm": lambda v: v is False,
    "renorm_clipping": lambda v: v is None,
    "renorm_momentum": _is_number,
    "rms_scaling": lambda v: v is False,
    "invert": lambda v: v is False,
    "use_gate": lambda v: v is False,
    "sliding_window": lambda v: v is None,
    "lora_rank": lambda v: v is None,
    "lora_alpha": lambda v: v is None or _is_number(v),
    "input_ids": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "epsilon": _is_number,
}
_OBJECT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_POLICY_NAMES = frozenset({"float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16"})
_INPUT_DTYPES = frozenset(
    {"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
     "bool"}
)  # fmt: skip


def _policy_ok(value: Any) -> bool:
    if value is None or (isinstance(value, str) and value in _POLICY_NAMES):
        return True
    if isinstance(value, dict) and value.get("class_name") in _POLICIES:
        inner = value.get("config")
        return isinstance(inner, dict) and inner.get("name") in _POLICY_NAMES
    return False


@cache
def _validator(kind: str, name: str) -> Any:
    """A strict validator of a layer's (or merge's) config schema: the spec's own rules."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=checker)
    if kind == "layer":
        return strict(config_schema(LAYERS[name]))
    if not name:  # a pass-through layer: no settings of its own
        return strict({"type": "object", "additionalProperties": False})
    rule = MERGES[name]
    props = {p.name: dict(p.schema) for p in rule.params}
    for p in rule.params:
        if p.default is None:
            props[p.name] = {"anyOf": [props[p.name], {"type": "null"}]}
    return strict({"type": "object", "properties": props, "additionalProperties": False})


def _fusec_config(
    cls: str, params: Mapping[str, Any], cfg: Any, what: str, label: str, key: str, kind: str, name: str
) -> dict[str, Any]:
    """A Keras layer config as the fusec config it amounts to, or a refusal.

    Keys fusec declares are kept (Keras's object forms of initializers and
    regularizers, which do not change shapes, are dropped for fusec's
    defaults) and validated with the spec's own schema; other keys must hold
    a neutral value (``_NEUTRAL``), be a ``*_initializer``/``*_regularizer``/
    ``*_constraint`` object, or a dtype policy fusec accepts.
    """
    if not isinstance(cfg, dict):
        raise RuleError(f"`{label}`: {what} has no config object", key, _RESAVE)
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if k in params:
            if isinstance(v, dict) and k.endswith(_OBJECT_SUFFIXES):
                continue  # an initializer or regularizer object: scanned, shape-neutral
            if k in ("axis", "output_shape") and isinstance(v, list) and len(v) == 1:
                v = v[0]  # Keras writes a one-axis tuple
            out[k] = v
        elif k == "dtype":
            if not _policy_ok(v):
                raise RuleError(
                    f"`{label}`: {what} has dtype policy {_show(v)}, outside fusec's vocabulary "
                    f"(it accepts {', '.join(sorted(_POLICY_NAMES))})",
                    key,
                    _RESAVE,
                )
        elif k.endswith(_OBJECT_SUFFIXES):
            if not (v is None or isinstance(v, (dict, str))):
                raise RuleError(f"`{label}`: {what} has `{k}` {_show(v)}", key, _RESAVE)
        elif k not in _NEUTRAL or not _NEUTRAL[k](v):
            raise RuleError(
                f"`{label}`: {what} has `{k}` {_show(v)}, a setting outside fusec's vocabulary",
                key,
                "fusec computes the sub-model's shapes with its own rules, which do not cover it; " + _RESAVE,
            )
    errors = sorted(_validator(kind, name).iter_errors(out), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        at = ".".join(str(p) for p in err.absolute_path) or "config"
        raise RuleError(
            f"`{label}`: {what} has `{at}` outside fusec's vocabulary ({_brief_text(err.message)})", key, _RESAVE
        )
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _brief_text(text: str) -> str:
    return text if len(text) <= 160 else text[:157] + "..."


# --- config.json: the functional graph ----------------------------------------------------


@dataclass(frozen=True)
class _Ref:
    layer: str
    node: int
    tensor: int


@dataclass
class _Layer:
    name: str
    cls: str
    what: str  # "layer `conv` (Conv2D) of model `m`", for messages
    rule: LayerRule | None = None
    merge: MergeRule | None = None
    config: dict[str, Any] = field(default_factory=dict)
    model: _Graph | None = None
    shape: Shape | None = None  # an InputLayer's
    build: Any = None  # its build_config
    inner_builds: tuple[Any, ...] = ()  # Bidirectional: the wrapped layers' build_configs
    axes: Any = None  # MultiHeadAttention's attention_axes
    calls: list[_Call] = field(default_factory=list)
    frozen: bool = False  # saved with trainable false: Keras keeps its weights non-trainable


@dataclass
class _Call:
    layer: _Layer
    index: int
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass
class _Graph:
    name: str
    layers: dict[str, _Layer]
    order: list[_Call]  # dependencies first
    inputs: list[tuple[str, _Ref]]
    outputs: list[tuple[str, _Ref]]
    input_kind: str  # "dict", "list" or "one"
    output_kind: str
    size: int  # layers, nested models' included


@dataclass
class _Ctx:
    label: str
    key: str
    layers: int = 0
    work: int = 0
    memo: dict[tuple[int, tuple[Shape, ...], bool], tuple[list[Shape], dict[str, tuple[int, int]]]] = field(
        default_factory=dict
    )

    def fail(self, message: str, hint: str = _RESAVE) -> RuleError:
        return RuleError(f"`{self.label}`: {message}", self.key, hint)

    def malformed(self, detail: str) -> RuleError:
        return RuleError(
            f"`{self.label}`'s config.json does not describe a Keras model fusec can read ({detail})", self.key, _RESAVE
        )


#: Call keyword arguments that change nothing fusec computes, with the values allowed.
_CALL_KWARGS: dict[str, Callable[[Any], bool]] = {
    "training": lambda v: v is None or isinstance(v, bool),
    "mask": lambda v: _all_none(v),
    "initial_state": lambda v: v is None,
    "use_causal_mask": lambda v: isinstance(v, bool),
    "return_attention_scores": lambda v: v is False,
    "attention_mask": lambda v: v is None,
    "query_mask": lambda v: v is None,
    "value_mask": lambda v: v is None,
    "key_mask": lambda v: v is None,
}


def _all_none(value: Any) -> bool:
    """None, or a list or dict of Nones (a model's mask, per input)."""
    if isinstance(value, list):
        return all(v is None for v in value)
    if isinstance(value, dict):
        return all(v is None for v in value.values())
    return value is None


def _decode(value: Any, ctx: _Ctx, what: str) -> Any:
    """A call argument with tensor references as ``_Ref``."""
    if isinstance(value, list):
        return [_decode(v, ctx, what) for v in value]
    if isinstance(value, dict):
        cls = value.get("class_name")
        if cls == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            if (
                isinstance(history, list)
                and len(history) == 3
                and isinstance(history[0], str)
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in history[1:])
            ):
                return _Ref(history[0], history[1], history[2])
            raise ctx.fail(f"{what} is called on a malformed tensor reference")
        if cls == "__tuple__":
            inner = (value.get("config") or {}).get("value")
            if isinstance(inner, list):
                return [_decode(v, ctx, what) for v in inner]
            raise ctx.fail(f"{what} is called on a malformed tuple")
        if cls is not None:
            raise ctx.fail(f"{what} is called on a serialized `{cls}`, which fusec does not read")
        return {k: _decode(v, ctx, what) for k, v in value.items()}
    return value


def _refs(value: Any) -> Iterator[_Ref]:
    if isinstance(value, _Ref):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _refs(v)


def _shape(value: Any, ctx: _Ctx, what: str) -> Shape:
    """A declared batch shape: batch axis first, each axis None or a size within fusec's limits."""
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 9
        or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_DIM) for d in value)
    ):
        raise ctx.fail(f"{what} declares the input shape {_show(value)}, which fusec cannot use")
    return tuple(value)


def _parse_layer(d: Any, ctx: _Ctx, owner: str, depth: int, in_sequential: bool) -> _Layer:
    if not isinstance(d, dict) or not isinstance(d.get("class_name"), str):
        raise ctx.malformed(f"model `{owner[:64]}` lists a layer that is not a layer config")
    cls = d["class_name"]
    cfg = d.get("config")
    name = d.get("name") if not in_sequential else None
    if name is None and isinstance(cfg, dict):
        name = cfg.get("name")
    if not isinstance(name, str):
        raise ctx.fail(f"a `{cls}` layer of model `{owner}` has no name")
    what = f"layer `{name[:64]}` ({cls}) of model `{owner[:64]}`"
    ctx.layers += 1
    if ctx.layers > MAX_NODES:
        raise ctx.fail(f"holds more than {MAX_NODES:,} layers", "use a smaller sub-model")
    layer = _Layer(name, cls, what, build=d.get("build_config"))
    layer.frozen = isinstance(cfg, dict) and cfg.get("trainable") is False
    if cls == "InputLayer":
        if not isinstance(cfg, dict):
            raise ctx.fail(f"{what} has no config")
        shape = cfg.get("batch_shape")
        layer.shape = _shape(shape, ctx, what)
        dtype = cfg.get("dtype", "float32")
        if not (isinstance(dtype, str) and dtype in _INPUT_DTYPES) and not _policy_ok(dtype):
            raise ctx.fail(f"{what} takes dtype {_show(dtype)}, outside fusec's vocabulary")
        for flag in ("sparse", "ragged", "optional"):
            if cfg.get(flag, False) is not False:
                raise ctx.fail(f"{what} is {flag}, outside fusec's vocabulary")
        return layer
    if cls in _MODEL_CLASSES:
        layer.model = _parse_model(d, ctx, depth + 1)
        return layer
    if cls in _PASS_THROUGH:
        _fusec_config(cls, {}, cfg, what, ctx.label, ctx.key, "merge", "")
        return layer
    if cls in LAYERS:
        rule = LAYERS[cls]
        layer.rule = rule
        params = dict(rule.param_index)
        if cls == "Bidirectional" and isinstance(cfg, dict):
            cfg = _bidirectional_config(cfg, ctx, what, layer)
        elif cls == "MultiHeadAttention" and isinstance(cfg, dict):
            cfg = dict(cfg)
            layer.axes = cfg.pop("attention_axes", None)
        layer.config = _fusec_config(cls, params, cfg, what, ctx.label, ctx.key, "layer", cls)
        return layer
    if cls in _KERAS_MERGES:
        merge = MERGES[_KERAS_MERGES[cls]]
        layer.merge = merge
        layer.config = _fusec_config(cls, merge.param_index, cfg, what, ctx.label, ctx.key, "merge", merge.name)
        return layer
    raise ctx.fail(
        f"{what} is outside fusec's vocabulary", "only layers of fusec's vocabulary may appear in a sub-model"
    )


def _bidirectional_config(cfg: dict[str, Any], ctx: _Ctx, what: str, layer: _Layer) -> dict[str, Any]:
    """Bidirectional's config with its wrapped layers in fusec's form; a backward layer must mirror the forward one."""
    out = dict(cfg)
    converted = []
    builds = []
    for k in ("layer", "backward_layer"):
        inner = out.pop(k, None)
        if inner is None:
            continue
        if not isinstance(inner, dict) or inner.get("class_name") not in ("LSTM", "GRU", "SimpleRNN"):
            cls = inner.get("class_name") if isinstance(inner, dict) else None
            raise ctx.fail(
                f"{what} wraps {_show(cls)} as its `{k}`; fusec's Bidirectional wraps LSTM, GRU or SimpleRNN"
            )
        rule = LAYERS[inner["class_name"]]
        inner_what = f"the `{k}` of {what}"
        fusec = _fusec_config(
            rule.name, rule.param_index, inner.get("config"), inner_what, ctx.label, ctx.key, "layer", rule.name
        )
        converted.append((inner["class_name"], fusec))
        builds.append(inner.get("build_config"))
    if not converted:
        raise ctx.fail(f"{what} wraps no layer")
    cls, forward = converted[0]
    if len(converted) == 2:
        back_cls, backward = converted[1]
        rule = LAYERS[cls]
        same = {k: v for k, v in rule.resolve(forward).items() if k != "go_backwards"}
        mirror = {k: v for k, v in LAYERS[back_cls].resolve(backward).items() if k != "go_backwards"}
        if back_cls != cls or same != mirror or backward.get("go_backwards") is not True:
            raise ctx.fail(
                f"{what} has a backward layer that is not a backward copy of its forward layer; "
                "fusec's Bidirectional runs one layer both ways"
            )
    out["layer"] = {"layer": cls, "config": forward}
    layer.inner_builds = tuple(builds)
    return out


def _named(refs: Any, ctx: _Ctx, what: str) -> tuple[str, list[tuple[str, list[Any]]]]:
    """Keras saves a model's inputs/outputs as a dict, a list of refs, or one ref."""
    if isinstance(refs, dict) and refs:
        return "dict", [(str(k), v) for k, v in refs.items()]
    if isinstance(refs, list) and refs and all(isinstance(r, list) for r in refs):
        return "list", [(str(r[0]) if r else "", r) for r in refs]
    if isinstance(refs, list) and len(refs) == 3 and isinstance(refs[0], str):
        return "one", [(refs[0], refs)]
    raise ctx.malformed(f"{what} are saved as {_show(refs)}")


def _top_ref(raw: Any, layers: Mapping[str, _Layer], ctx: _Ctx, what: str) -> _Ref:
    """A model input/output reference; Keras counts a nested Functional's calls from 1 there."""
    if not (
        isinstance(raw, list)
        and len(raw) == 3
        and isinstance(raw[0], str)
        and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in raw[1:])
    ):
        raise ctx.malformed(f"{what} has a malformed tensor reference {_show(raw)}")
    layer = layers.get(raw[0])
    if layer is None:
        raise ctx.fail(f"{what} names no layer `{raw[0][:64]}`")
    node = raw[1] - 1 if layer.model is not None and layer.cls != "Sequential" else raw[1]
    return _Ref(raw[0], node, raw[2])


def _parse_model(d: dict[str, Any], ctx: _Ctx, depth: int) -> _Graph:
    cls = d.get("class_name")
    cfg = d.get("config")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    name = name if isinstance(name, str) else "?"
    if depth > MAX_NESTING:
        raise ctx.fail(f"nests models deeper than {MAX_NESTING} levels", "use a flatter sub-model")
    if cls not in _MODEL_CLASSES:
        raise ctx.malformed(f"a model of class {_show(cls)}; fusec reads Functional and Sequential models")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise ctx.malformed(f"model `{name[:64]}` has no list of layers")
    if cls == "Sequential":
        return _parse_sequential(d, cfg, name, ctx, depth)
    if "input_layers" not in cfg or "output_layers" not in cfg:
        raise ctx.malformed(f"model `{name[:64]}` ({cls}) has no inputs and outputs: a subclassed model has no graph")
    layers: dict[str, _Layer] = {}
    for raw in cfg["layers"]:
        layer = _parse_layer(raw, ctx, name, depth, in_sequential=False)
        if layer.name in layers:
            raise ctx.fail(f"model `{name[:64]}` has two layers named `{layer.name[:64]}`")
        layers[layer.name] = layer
        nodes = raw.get("inbound_nodes", [])
        if layer.shape is not None:
            layer.calls.append(_Call(layer, 0, [], {}))
            continue
        if not isinstance(nodes, list):
            raise ctx.fail(f"{layer.what} has malformed calls")
        for i, node in enumerate(nodes):
            if not isinstance(node, dict) or set(node) - {"args", "kwargs"}:
                raise ctx.fail(f"{layer.what} has calls saved in an older Keras format", _RESAVE)
            args = _decode(node.get("args", []), ctx, layer.what)
            kwargs = _decode(node.get("kwargs", {}), ctx, layer.what)
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ctx.fail(f"{layer.what} has malformed calls")
            layer.calls.append(_Call(layer, i, args, kwargs))
    in_kind, ins = _named(cfg.get("input_layers"), ctx, f"the inputs of model `{name[:64]}`")
    out_kind, outs = _named(cfg.get("output_layers"), ctx, f"the outputs of model `{name[:64]}`")
    inputs = [(n, _top_ref(r, layers, ctx, f"model `{name[:64]}`")) for n, r in ins]
    for n, ref in inputs:
        if layers[ref.layer].shape is None or ref.node != 0 or ref.tensor != 0:
            raise ctx.fail(f"input `{n[:64]}` of model `{name[:64]}` is not an InputLayer")
    outputs = [(n, _top_ref(r, layers, ctx, f"model `{name[:64]}`")) for n, r in outs]
    order = _topological(layers, ctx, name)
    size = sum(1 + (layer.model.size if layer.model else 0) for layer in layers.values())
    return _Graph(name, layers, order, inputs, outputs, in_kind, out_kind, size)


def _parse_sequential(d: dict[str, Any], cfg: dict[str, Any], name: str, ctx: _Ctx, depth: int) -> _Graph:
    """A Sequential model as a graph: its input (an InputLayer, else its saved input shape), then each layer once."""
    raws = list(cfg["layers"])
    layers: dict[str, _Layer] = {}
    first = raws[0] if raws else None
    if isinstance(first, dict) and first.get("class_name") == "InputLayer":
        inp = _parse_layer(first, ctx, name, depth, in_sequential=True)
        raws = raws[1:]
    else:
        declared = cfg.get("build_input_shape")
        build = d.get("build_config")
        if declared is None and isinstance(build, dict):
            declared = build.get("input_shape")
        if declared is None:
            raise ctx.fail(
                f"Sequential model `{name[:64]}` declares no input shape",
                "give the model an input (keras.Input(shape=...) as its first layer), then " + _RESAVE,
            )
        inp = _Layer("input", "InputLayer", f"the input of Sequential model `{name[:64]}`")
        inp.shape = _shape(declared, ctx, inp.what)
    inp.calls.append(_Call(inp, 0, [], {}))
    layers[inp.name] = inp
    if not raws:
        raise ctx.fail(f"Sequential model `{name[:64]}` has no layers")
    prev = inp.name
    order = [inp.calls[0]]
    for raw in raws:
        layer = _parse_layer(raw, ctx, name, depth, in_sequential=True)
        if layer.name in layers or layer.shape is not None:
            raise ctx.fail(f"Sequential model `{name[:64]}` has two layers named `{layer.name[:64]}`")
        layers[layer.name] = layer
        call = _Call(layer, 0, [_Ref(prev, 0, 0)], {})
        layer.calls.append(call)
        order.append(call)
        prev = layer.name
    size = sum(1 + (layer.model.size if layer.model else 0) for layer in layers.values())
    return _Graph(
        name, layers, order, [(inp.name, _Ref(inp.name, 0, 0))], [(prev, _Ref(prev, 0, 0))], "one", "one", size
    )


def _topological(layers: Mapping[str, _Layer], ctx: _Ctx, name: str) -> list[_Call]:
    """Every call after the calls it reads (and after its layer's earlier calls, as Keras replays them)."""
    waiting: dict[tuple[str, int], int] = {}
    users: dict[tuple[str, int], list[_Call]] = {}
    ready: deque[_Call] = deque()
    total = 0
    for layer in layers.values():
        for call in layer.calls:
            total += 1
            deps = {(r.layer, r.node) for r in _refs([call.args, call.kwargs])}
            if call.index > 0:
                deps.add((layer.name, call.index - 1))
            for dep in deps:
                src = layers.get(dep[0])
                if src is None or dep[1] >= len(src.calls):
                    raise ctx.fail(
                        f"{layer.what} reads call {dep[1]} of layer `{dep[0][:64]}`, which model `{name[:64]}` "
                        "does not have"
                    )
                users.setdefault(dep, []).append(call)
            waiting[(layer.name, call.index)] = len(deps)
            if not deps:
                ready.append(call)
    order = []
    while ready:
        call = ready.popleft()
        order.append(call)
        for user in users.get((call.layer.name, call.index), ()):
            k = (user.layer.name, user.index)
            waiting[k] -= 1
            if waiting[k] == 0:
                ready.append(user)
    if len(order) != total:
        raise ctx.fail(f"the layer calls of model `{name[:64]}` form a cycle")
    return order


# --- running the graph through fusec's rules ----------------------------------------------


def _jsonish(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonish(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonish(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonish(v) for v in value]
    return value


def _check_build(layer: _Layer, expected: dict[str, Any], ctx: _Ctx) -> None:
    """Keras builds a layer from its build_config before calling it: it must be the call fusec computed.

    A layer called on several arguments is built from all of them
    (``shapes_dict``) or, when its ``build`` takes one, from the first.
    """
    want = _jsonish(expected)
    forms = [want]
    if "shapes_dict" in want:
        forms.append({"input_shape": next(iter(want["shapes_dict"].values()))})
    for build in (layer.build, *layer.inner_builds):
        if not build:
            continue
        if layer.inner_builds and build is not layer.build:
            forms = [{"input_shape": want.get("input_shape")}]
        if build not in forms:
            got = build.get("input_shape", build.get("shapes_dict")) if isinstance(build, dict) else build
            shown = want.get("input_shape", want.get("shapes_dict"))
            raise ctx.fail(
                f"{layer.what} is built for {_show(got)} by its build_config but called on {_show(shown)}: "
                "fusec computes shapes from the layers, and an archive whose build_config disagrees with them "
                "is inconsistent"
            )


def _kwargs_ok(call: _Call, allowed_tensors: Sequence[str], ctx: _Ctx) -> None:
    for k, v in call.kwargs.items():
        if k in allowed_tensors:
            continue
        check = _CALL_KWARGS.get(k)
        if check is None or not check(v):
            raise ctx.fail(
                f"{call.layer.what} is called with `{k}`={_show(_jsonish(_plain(v)))}, outside fusec's vocabulary"
            )


def _plain(value: Any) -> Any:
    if isinstance(value, _Ref):
        return f"<tensor {value.layer}>"
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _tensor_list(value: Any, call: _Call, ctx: _Ctx) -> list[_Ref]:
    if isinstance(value, list) and value and all(isinstance(v, _Ref) for v in value):
        return value
    raise ctx.fail(f"{call.layer.what} is called on something other than a list of tensors")


def _one_tensor(value: Any, call: _Call, ctx: _Ctx) -> _Ref:
    if isinstance(value, _Ref):
        return value
    raise ctx.fail(f"{call.layer.what} is called on something other than one tensor")


def _apply(
    call: _Call, shape_of: Callable[[_Ref], Shape], ctx: _Ctx, depth: int, built: bool
) -> tuple[list[Shape], int, int]:
    """One call through fusec's rule for its layer: (output shapes, trainable, non-trainable).

    ``built``: this run is the one Keras builds the layers in (the model on
    its declared inputs), so a layer's first call must match its build_config.
    """
    layer = call.layer
    first = call.index == 0 and built
    if layer.model is not None:
        return _call_model(call, shape_of, ctx, depth)
    if layer.merge is not None:
        merge = layer.merge
        if merge.slots is None:
            _kwargs_ok(call, (), ctx)
            if len(call.args) != 1:
                raise ctx.fail(f"{layer.what} is called on {len(call.args)} arguments; a merge takes one list")
            refs = _tensor_list(call.args[0], call, ctx)
            sources: Any = [(r.layer, shape_of(r)) for r in refs]
            expected: dict[str, Any] = {"input_shape": [s for _, s in sources]}
        else:
            slots = list(merge.slots)
            _kwargs_ok(call, slots, ctx)
            given = dict(zip(slots, call.args, strict=False))
            given.update({k: v for k, v in call.kwargs.items() if k in slots})
            if len(call.args) > len(slots) or set(given) != set(slots):
                raise ctx.fail(f"{layer.what} is not called on its {' and '.join(slots)}")
            sources = {}
            for slot, kind in merge.slots.items():
                refs = _tensor_list(given[slot], call, ctx) if kind == "list" else [_one_tensor(given[slot], call, ctx)]
                sources[slot] = [(r.layer, shape_of(r)) for r in refs]
            expected = {
                "shapes_dict": {
                    f"{slot}_shape": [s for _, s in sources[slot]] if kind == "list" else sources[slot][0][1]
                    for slot, kind in merge.slots.items()
                }
            }
        lo, hi = merge.arity
        n = (
            len(sources)
            if merge.slots is None
            else len(next(v for k, v in sources.items() if merge.slots[k] == "list"))
        )
        if n < lo or (hi is not None and n > hi):
            raise ctx.fail(f"{layer.what} merges {n} inputs, outside what fusec's `{merge.name}` takes")
        merged = merge.infer(sources, merge.resolve(layer.config))
        if first:
            _check_build(layer, expected, ctx)
        return [merged.shape, *merged.extra], merged.trainable, merged.non_trainable
    rule = layer.rule
    if rule is None and layer.cls in _PASS_THROUGH:
        _kwargs_ok(call, (), ctx)
        if len(call.args) != 1:
            raise ctx.fail(f"{layer.what} is called on {len(call.args)} arguments; it takes one tensor")
        same = shape_of(_one_tensor(call.args[0], call, ctx))
        if first:
            _check_build(layer, {"input_shape": same}, ctx)
        return [same], 0, 0
    if rule is None:
        raise ctx.fail(f"{layer.what} is outside fusec's vocabulary")
    if rule.slots:
        slots = list(rule.slots)
        _kwargs_ok(call, slots, ctx)
        if rule.call_style == "list":
            if len(call.args) != 1:
                raise ctx.fail(f"{layer.what} is not called on one list of tensors")
            refs = _tensor_list(call.args[0], call, ctx)
            if len(refs) > len(slots):
                raise ctx.fail(f"{layer.what} is called on {len(refs)} tensors; it takes at most {len(slots)}")
            named = dict(zip(slots, refs, strict=False))
        else:
            named = dict(zip(slots, call.args, strict=False))
            for k, v in call.kwargs.items():
                if k in slots and v is not None:
                    named[k] = v
            if len(call.args) > len(slots):
                raise ctx.fail(f"{layer.what} is called on {len(call.args)} tensors; it takes at most {len(slots)}")
        missing = [s for s in rule.required_slots if s not in named]
        if missing:
            raise ctx.fail(f"{layer.what} is called without its `{missing[0]}`")
        x: Any = {s: shape_of(_one_tensor(r, call, ctx)) for s, r in named.items()}
        if rule.call_style == "list":
            expected = {"input_shape": [x[s] for s in slots if s in x]}
        else:
            expected = {"shapes_dict": {f"{s}_shape": x[s] for s in slots if s in x}}
        if layer.axes is not None and layer.axes != list(range(1, len(x["query"]) - 1)):
            raise ctx.fail(f"{layer.what} has attention_axes {_show(layer.axes)}, outside fusec's vocabulary")
    else:
        _kwargs_ok(call, (), ctx)
        if len(call.args) != 1:
            raise ctx.fail(f"{layer.what} is called on {len(call.args)} arguments; it takes one tensor")
        x = shape_of(_one_tensor(call.args[0], call, ctx))
        expected = {"input_shape": x}
    out: Out = rule.infer(x, rule.resolve(layer.config))
    if first:
        _check_build(layer, expected, ctx)
    return [out.shape, *out.extra], out.trainable, out.non_trainable


def _call_model(call: _Call, shape_of: Callable[[_Ref], Shape], ctx: _Ctx, depth: int) -> tuple[list[Shape], int, int]:
    """A nested model called on tensors: its graph runs again on their shapes; its weights are its own build's."""
    graph = call.layer.model
    assert graph is not None
    _kwargs_ok(call, (), ctx)
    if len(call.args) != 1:
        raise ctx.fail(f"{call.layer.what} is called on {len(call.args)} arguments; a model takes one")
    arg = call.args[0]
    names = [n for n, _ in graph.inputs]
    if isinstance(arg, dict):
        if set(arg) != set(names):
            raise ctx.fail(f"{call.layer.what} is called on inputs {sorted(arg)}; it takes {names}")
        refs = [_one_tensor(arg[n], call, ctx) for n in names]
    elif isinstance(arg, list):
        refs = [_one_tensor(a, call, ctx) for a in arg]
    else:
        refs = [_one_tensor(arg, call, ctx)]
    if len(refs) != len(names):
        raise ctx.fail(f"{call.layer.what} is called on {len(refs)} tensors; it takes {len(names)}")
    declared = [graph.layers[r.layer].shape for _, r in graph.inputs]
    given = [shape_of(r) for r in refs]
    for n, want, got in zip(names, declared, given, strict=True):
        assert want is not None
        if not _fits(want, got):
            raise ctx.fail(
                f"{call.layer.what} input `{n[:64]}` takes {fmt_shape(want)} but is called on {fmt_shape(got)}"
            )
    _, counts = _run(graph, [s for s in declared if s is not None], ctx, depth + 1, built=True)
    outs, again = _run(graph, given, ctx, depth + 1, built=False)
    if sum(t + n for t, n in again.values()) != sum(t + n for t, n in counts.values()):
        raise ctx.fail(f"{call.layer.what} is called on inputs its weights do not fit")
    if graph.output_kind == "dict":  # Keras flattens a dict of outputs in sorted key order
        keyed = dict(zip([n for n, _ in graph.outputs], outs, strict=True))
        outs = [keyed[k] for k in sorted(keyed)]
    trainable = sum(t for t, _ in counts.values())
    non_trainable = sum(n for _, n in counts.values())
    return outs, trainable, non_trainable


def _run(
    graph: _Graph, inputs: Sequence[Shape], ctx: _Ctx, depth: int = 0, built: bool = True
) -> tuple[list[Shape], dict[str, tuple[int, int]]]:
    """Output shapes (in the graph's output order) and per-layer parameter counts, for given input shapes.

    ``built``: the inputs are the model's declared ones, the run in which
    Keras builds its layers (so build_configs are checked against it).
    """
    memo_key = (id(graph), tuple(inputs), built)
    if memo_key in ctx.memo:
        return ctx.memo[memo_key]
    outputs: dict[tuple[str, int], list[Shape]] = {}
    counts: dict[str, tuple[int, int]] = {}
    given = {ref.layer: shape for (_, ref), shape in zip(graph.inputs, inputs, strict=True)}

    def shape_of(ref: _Ref) -> Shape:
        outs = outputs[(ref.layer, ref.node)]
        if ref.tensor >= len(outs):
            raise ctx.fail(f"{graph.layers[ref.layer].what} has no output {ref.tensor}")
        return outs[ref.tensor]

    for call in graph.order:
        ctx.work += 1
        if ctx.work > MAX_WORK:
            raise ctx.fail(f"takes more than {MAX_WORK:,} layer calls to evaluate", "use a smaller sub-model")
        layer = call.layer
        if layer.shape is not None:
            outputs[(layer.name, 0)] = [given.get(layer.name, layer.shape)]
            continue
        try:
            outs, trainable, non_trainable = _apply(call, shape_of, ctx, depth, built)
            if layer.frozen:
                trainable, non_trainable = 0, trainable + non_trainable
        except RuleError as err:
            if err.message.startswith(f"`{ctx.label}`"):
                raise
            raise ctx.fail(f"{layer.what}: {err.message}", err.hint or _RESAVE) from None
        outputs[(layer.name, call.index)] = outs
        first = counts.get(layer.name)
        if first is None:
            counts[layer.name] = (trainable, non_trainable)
        elif first != (trainable, non_trainable):
            raise ctx.fail(f"{layer.what} is called again on an input its weights do not fit")
    result = [shape_of(ref) for _, ref in graph.outputs], counts
    ctx.memo[memo_key] = result
    return result


def _fits(want: Shape, got: Shape) -> bool:
    return len(want) == len(got) and all(a is None or b is None or a == b for a, b in zip(want, got, strict=True))


# --- the weights file: HDF5 metadata only --------------------------------------------------


@dataclass(frozen=True)
class _Weights:
    """What a weights file stores: values per top-level layer group, values in all, declared bytes."""

    per_layer: dict[str, int]
    values: int
    data_bytes: int
    file_bytes: int


def inspect_h5(fileobj: BinaryIO, file_bytes: int, label: str, key: str) -> _Weights:
    """Walk an HDF5 weights file's metadata (no data is read) and refuse what Keras should not be given.

    Refused: external links and soft links, datasets with external storage or
    virtual datasets (which read other files), data that is not plain
    numbers, more objects or nesting than any Keras model writes, and declared
    sizes out of proportion to the file (a chunked dataset can declare a
    terabyte and store nothing; Keras would allocate it).

    Raises:
        RuleError: naming the object at fault.
    """
    import h5py
    from h5py import h5d, h5l, h5o

    per_layer: dict[str, int] = {}
    values = data_bytes = 0
    with h5py.File(fileobj, "r") as h5:
        links: list[tuple[bytes, int]] = []

        def on_link(name: bytes, info: Any) -> Any:
            links.append((name, info.type))
            return None if len(links) <= MAX_H5_OBJECTS else True  # anything but None stops the visit

        h5.id.links.visit(on_link, info=True)  # every link, recursing through hard links only
        if len(links) > MAX_H5_OBJECTS:
            raise RuleError(f"`{label}`'s weights file holds more objects than any Keras model writes", key)
        for raw, kind in links:
            path = raw.decode("utf-8", "replace")
            if kind != h5l.TYPE_HARD:
                what = {h5l.TYPE_EXTERNAL: "an external link", h5l.TYPE_SOFT: "a soft link"}.get(kind, "a custom link")
                raise RuleError(
                    f"`{label}`'s weights file has {what} at `{path[:120]}`",
                    key,
                    "Keras writes none; an external link reads another file. " + _RESAVE,
                )
            if path.count("/") >= MAX_H5_DEPTH:
                raise RuleError(f"`{label}`'s weights file nests deeper than any Keras model writes", key, _RESAVE)
        for raw, _ in links:
            path = raw.decode("utf-8", "replace")
            obj = h5o.open(h5.id, raw)
            if isinstance(obj, h5py.h5g.GroupID):
                continue
            if not isinstance(obj, h5d.DatasetID):
                raise RuleError(f"`{label}`'s weights file holds an unknown object at `{path[:120]}`", key, _RESAVE)
            plist = obj.get_create_plist()
            if plist.get_external_count():
                raise RuleError(
                    f"`{label}`'s weights file stores `{path[:120]}` in external files",
                    key,
                    "Keras would read those files; " + _RESAVE,
                )
            if plist.get_layout() == h5d.VIRTUAL:
                raise RuleError(
                    f"`{label}`'s weights file has a virtual dataset at `{path[:120]}`",
                    key,
                    "a virtual dataset reads other files; " + _RESAVE,
                )
            dt = obj.get_type().dtype
            if dt.kind not in "fiub" or dt.itemsize > 8 or dt.subdtype is not None or dt.names:
                raise RuleError(
                    f"`{label}`'s weights file holds `{path[:120]}` of type {dt}, not plain numbers", key, _RESAVE
                )
            dims = obj.get_space().get_simple_extent_dims()
            size = math.prod(dims) if dims else 1
            data_bytes += size * dt.itemsize
            if data_bytes > file_bytes:
                what = f"{size * dt.itemsize:,} bytes" if size * dt.itemsize > file_bytes else "more bytes"
                raise RuleError(
                    f"`{label}`'s weights file declares {what} of data (at `{path[:120]}`) "
                    f"than its {file_bytes:,} bytes can hold",
                    key,
                    "Keras stores weights uncompressed, so their data fits in the file; " + _RESAVE,
                )
            if path.startswith("layers/"):
                values += size
                top = path.split("/")[1]
                per_layer[top] = per_layer.get(top, 0) + size
    return _Weights(per_layer, values, data_bytes, file_bytes)


def _read_weights(fh: BinaryIO, zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, key: str) -> _Weights:
    if info.compress_type == zipfile.ZIP_STORED:
        start = _member_start(fh, info)
        size = os.fstat(fh.fileno()).st_size
        if start + info.file_size > size:
            raise RuleError(f"`{label}`'s weights member runs past the end of the archive", key, _RESAVE)
        view: BinaryIO = io.BufferedReader(_Slice(fh, start, info.file_size))
    else:
        view = io.BytesIO(zf.read(info))
    return inspect_h5(view, info.file_size, label, key)


# --- a .keras archive ------------------------------------------------------------------------


@dataclass(frozen=True)
class KerasArchive:
    """A fully inspected .keras archive."""

    sub: SubModel
    weights: _Weights


def inspect_archive(path: Path, label: str, key: str = "model") -> KerasArchive:
    """Inspect a ``.keras`` archive statically, as fully as Keras will read it (see the module doc).

    Raises:
        RuleError: anything refused, naming the archive and the fix.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_ARCHIVE_BYTES:
                raise RuleError(f"`{label}` is over {MAX_ARCHIVE_BYTES >> 30} GiB", key)
            zf, infos = _members(fh, label, key)
            with zf:
                config = json.loads(zf.read(infos["config.json"]))
                scan_config(config, label, key)  # before the graph is read or any weights parsed
                if not isinstance(config, dict):
                    raise RuleError(f"`{label}`'s config.json is not a Keras model config", key, _RESAVE)
                ctx = _Ctx(label, key)
                graph = _parse_model(config, ctx, 0)
                weights = _read_weights(fh, zf, infos[_WEIGHTS], label, key)
    except RuleError:
        raise
    except Exception as exc:  # a hostile archive can break zipfile, json or h5py in many ways
        raise RuleError(f"`{label}` is not a readable .keras archive ({_brief(exc)})", key, _RESAVE) from None
    try:
        return KerasArchive(_signature(path, graph, ctx, weights), weights)
    except RuleError:
        raise
    except Exception as exc:  # a structure no Keras writes, met while running the graph
        raise ctx.malformed(_brief(exc)) from None


def inspect_keras(path: Path) -> SubModel:
    """A ``.keras`` sub-model's signature and counts, computed from its layers and checked against its weights."""
    return inspect_archive(path, path.name).sub


def _signature(path: Path, graph: _Graph, ctx: _Ctx, weights: _Weights) -> SubModel:
    for what, named in (("inputs", graph.inputs), ("outputs", graph.outputs)):
        if len({n for n, _ in named}) != len(named):
            raise ctx.fail(
                f"has two {what} of one name ({', '.join(f'`{n[:64]}`' for n, _ in named)})",
                f"name the {what}: save the model with a dict of {what}",
            )
    declared = [graph.layers[r.layer].shape for _, r in graph.inputs]
    inputs = {n: s for (n, _), s in zip(graph.inputs, declared, strict=True) if s is not None}
    outs, counts = _run(graph, list(inputs.values()), ctx)
    outputs = dict(zip([n for n, _ in graph.outputs], outs, strict=True))
    trainable = sum(t for t, _ in counts.values())
    non_trainable = sum(n for _, n in counts.values())
    layer_params = tuple(sorted(t + n for t, n in counts.values() if t + n))
    stored = tuple(sorted(v for v in weights.per_layer.values() if v))
    if weights.values != trainable + non_trainable or stored != layer_params:
        raise ctx.fail(
            f"its weights file holds {weights.values:,} values in {len(stored)} layers, but its layers, "
            f"computed from config.json, need {trainable + non_trainable:,} in {len(layer_params)}",
            "the archive's weights do not belong to its config; " + _RESAVE,
        )
    names = list(inputs)

    def run(shapes: Mapping[str, Shape]) -> dict[str, Shape]:
        call_ctx = _Ctx(ctx.label, ctx.key)
        got, again = _run(graph, [shapes[n] for n in names], call_ctx, built=False)
        if sum(t + n for t, n in again.values()) != trainable + non_trainable:
            raise call_ctx.fail("is called on inputs its weights do not fit")
        return dict(zip([n for n, _ in graph.outputs], got, strict=True))

    return SubModel(
        path,
        "keras",
        inputs,
        outputs,
        trainable,
        non_trainable,
        max(1, graph.size),
        layer_params,
        weights.data_bytes,
        weights.file_bytes,
        run,
    )


def _brief(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."


# --- weights for a spec sub-model -------------------------------------------------------------


def inspect_weights(path: Path, raw: str, sub: SubModel) -> int:
    """Inspect a spec sub-model's ``weights`` file as fully as Keras will read it; return its load bytes.

    A ``.keras`` archive gets the whole archive inspection (its classes, its
    members, its graph) and must compute to the spec's counts; a
    ``.weights.h5`` file gets the HDF5 inspection. Either way the values
    stored per layer must be the spec's, layer by layer.

    Raises:
        RuleError: at the node's ``weights`` key.
    """
    key = "weights"
    if path.suffix == ".keras":
        archive = inspect_archive(path, raw, key)
        found = archive.sub.layer_params
        total = archive.sub.params
        load = archive.weights.file_bytes + 2 * 4 * archive.sub.params  # a second model, and its weights copied
    else:
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > MAX_ARCHIVE_BYTES:
                    raise RuleError(f"`{raw}` is over {MAX_ARCHIVE_BYTES >> 30} GiB", key)
                weights = inspect_h5(fh, size, raw, key)
        except RuleError:
            raise
        except Exception as exc:  # h5py refuses a malformed file in many ways
            raise RuleError(f"`{raw}` is not a readable weights file ({_brief(exc)})", key, _RESAVE) from None
        found = tuple(sorted(v for v in weights.per_layer.values() if v))
        total = weights.values
        load = weights.file_bytes
    if total != sub.params or found != sub.layer_params:
        raise RuleError(
            f"`{raw}` holds {total:,} weight values in {len(found)} layers; the sub-model's spec has "
            f"{sub.params:,} in {len(sub.layer_params)}",
            key,
            "give the weights saved from this spec's compiled model (fusec compile, then its .keras archive)",
        )
    return load


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
        tuple(sorted(i.params for i in checked.info.values() if i.params)),
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
        max_memory: the memory budget in bytes for compiling the outermost
            spec (None: ``budget.default_budget()``).
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
    max_memory: int | None = None
    weights: dict[tuple[Path, Path], int | RuleError] = field(default_factory=dict, compare=False, repr=False)


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


def infer_model_node(
    node: Mapping[str, Any], refs: Sequence[Any], shapes: Mapping[str, Shape], ctx: ModelContext
) -> tuple[SubModel, str, dict[str, str]]:
    """Resolve a ``model`` node: its sub-model, chosen output, and input mapping.

    Returns:
        (sub-model, output name, {sub-model input name: source node id}).
        The sub-model's outputs are those of this call (an archive's layers
        run again on the shapes it is called with), and its ``load_bytes``
        include this node's weights file.

    Raises:
        RuleError: bad path, unreadable or refused file, a nested spec that
            does not check, weights that do not fit, inputs that do not
            match, or an ambiguous output.
    """
    from ..errors import FusecError

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
            weights_raw = node["weights"]
            weights = resolve_path(weights_raw, ctx.spec_dir, ctx.allowed, "weights")
            if not (weights.name.endswith(".weights.h5") or weights.suffix == ".keras"):
                raise RuleError("`weights` must be a .weights.h5 file or a compiled .keras archive", "weights")
            load = _weights_load(weights, weights_raw, sub, ctx)
            sub = replace(sub, load_bytes=sub.load_bytes + load)
    else:
        raise RuleError(
            f"`{raw}` is neither a .keras archive nor a .json fusec spec",
            "model",
            "name a .keras archive saved by Keras, or a fusec spec (.json)",
        )

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
            raise RuleError(
                f"sub-model `{raw}` input `{name}` takes {fmt_shape(sub.inputs[name])}. "
                f"Received: {fmt_shape(shapes[source])} from `{source}`"
            )
    if sub.run is not None and any(sub.inputs[n] != shapes[s] for n, s in mapping.items()):
        try:
            outs = sub.run({n: shapes[s] for n, s in mapping.items()})
        except RuleError as err:
            raise RuleError(err.message, "model", err.hint) from None
        except Exception as exc:  # a structure no Keras writes, met on these shapes
            raise RuleError(f"`{raw}` cannot be run on these inputs ({_brief(exc)})", "model", _RESAVE) from None
        sub = replace(sub, outputs=outs)
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


def _weights_load(path: Path, raw: str, sub: SubModel, ctx: ModelContext) -> int:
    """Inspect a spec sub-model's weights file once per (file, spec) pair and check."""
    key = (path, sub.path)
    if key not in ctx.weights:
        try:
            ctx.weights[key] = inspect_weights(path, raw, sub)
        except RuleError as err:
            ctx.weights[key] = err
    found = ctx.weights[key]
    if isinstance(found, RuleError):
        raise RuleError(found.message, found.key, found.hint)
    return found


def load_submodel(node: Mapping[str, Any], sub: SubModel, ctx: ModelContext, name: str) -> Any:
    """Load a sub-model for the build stage (safe mode for archives)."""
    import keras

    from ..keras import fusion  # noqa: F401  (registers fusec's own layers, which a compiled archive may hold)

    if sub.kind == "keras":
        model = keras.saving.load_model(sub.path, compile=False, safe_mode=True)
        if isinstance(model, keras.Sequential):  # a Sequential has no `input` to call it by: wrap it in a graph
            (spec,) = model.inputs
            given = keras.Input(batch_shape=tuple(spec.shape), dtype=spec.dtype, name=next(iter(sub.inputs)))
            model = keras.Model(given, model(given))
    else:
        from ..keras.build import build_model
        from .check import check_spec

        # Nested, as at check time: its weights are budgeted in the outermost spec's estimate.
        checked = check_spec(sub.path, ctx.max_params, allowed=ctx.allowed, _stack=(*ctx.stack, sub.path))
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
