"""Property tests: random valid specs agree with Keras; random broken ones fail cleanly.

``valid_specs()`` draws small specs over the whole vocabulary: chains and
branches of every layer of ``LAYERS``, merges in every mode of ``MERGES``,
shared-layer calls and blocks with shared or separate weights. Layers,
merges and their configs come from the rules themselves (each rule's
examples, with keys redrawn from each parameter's schema), so a new entry is
generated without touching this file. It asks fusec's own rules whether a
step fits, so every spec it returns should check; the differential test then
builds each one with Keras and compares every node's static shape and the
parameter totals with what Keras built (fusec's static checker against Keras).

``test_mutations_fail_cleanly`` breaks valid specs at random (keys deleted,
references swapped, values of the wrong type) and requires nothing but a
FusecError (or a pass) from ``check_spec``.

``test_accepted_specs_build_and_run`` draws specs from the vocabulary tables
themselves (every layer, merge and dtype, configs from each parameter's
schema, edge-case ids, ports, shared calls, odd file names) and requires that
every spec ``check`` accepts builds, serves and train-calls without an
exception: no exit 3 after a passing check.

Examples are derandomized so CI sees the same ones every run; set
FUSEC_HYPOTHESIS_SCALE=20 (``make test-deep``) for a longer, random search
that also writes and reloads each accepted spec's SavedModel.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fusec.errors import FusecError, RuleError
from fusec.spec.load import parse_spec
from fusec.static.check import check_spec
from fusec.vocab.layers import LAYERS
from fusec.vocab.merges import MERGES, MergeRule
from fusec.vocab.rule import LayerRule, Rule

SCALE = int(os.environ.get("FUSEC_HYPOTHESIS_SCALE", "1"))
RANDOM = SCALE > 1
MAX_NODES = 12
MAX_DIM = 16  # no generated tensor grows past this on any axis

Shape = tuple[int | None, ...]


def _settings(examples: int) -> Any:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# --- the generator -------------------------------------------------------------------


class Builder:
    """A spec under construction, with fusec's static shape of every tensor so far."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        self.draw = draw
        self.doc: dict[str, Any] = {"fusec": 1, "name": "generated", "seed": 3, "inputs": {}, "nodes": {}}
        self.shapes: dict[str, Shape] = {}
        self.consumed: set[str] = set()
        self.count = 0

    # -- bookkeeping

    def full(self) -> bool:
        return len(self.doc["nodes"]) >= MAX_NODES

    def new_id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def pick(self, rank: int | None = None, known_last: bool = False, prefer_fresh: bool = True) -> str | None:
        pool = [
            t
            for t, s in self.shapes.items()
            if (rank is None or len(s) - 1 == rank)
            and (not known_last or s[-1] is not None)
            and self.doc["inputs"].get(t, {}).get("dtype", "float32") == "float32"
        ]
        if not pool:
            return None
        fresh = [t for t in pool if t not in self.consumed]
        if prefer_fresh and fresh and self.draw(st.booleans()):
            pool = fresh
        return str(self.draw(st.sampled_from(sorted(pool))))

    def _fits(self, shape: Shape) -> bool:
        return all(d is None or 1 <= d <= MAX_DIM for d in shape[1:]) and len(shape) >= 2

    # -- steps

    def add_input(self, iid: str, shape: list[int | None], dtype: str = "float32") -> None:
        spec: dict[str, Any] = {"shape": shape}
        if dtype != "float32":
            spec["dtype"] = dtype
        self.doc["inputs"][iid] = spec
        self.shapes[iid] = (None, *shape)

    def layer(self, src: str, layer: str, config: dict[str, Any], trainable: bool = True) -> str | None:
        rule = LAYERS[layer]
        try:
            out = rule.infer(self.shapes[src], rule.resolve(config))
        except RuleError:
            return None
        shape = out.shape
        if not self._fits(shape):
            return None
        nid = self.new_id("n")
        node: dict[str, Any] = {"layer": layer, "inputs": src}
        if config:
            node["config"] = config
        if not trainable:
            node["trainable"] = False
        self.doc["nodes"][nid] = node
        self.shapes[nid] = shape
        for i, extra in enumerate(out.extra, start=1):  # an RNN's states: `id.1`, `id.2`
            self.shapes[f"{nid}.{i}"] = extra
        self.consumed.add(src.partition(".")[0])
        return nid

    def layer_on(self, inputs: str | dict[str, str], layer: str, config: dict[str, Any]) -> str | None:
        """A layer with named inputs (attention): one id for all its required slots, or a slot object."""
        rule = LAYERS[layer]
        if isinstance(inputs, str):
            shapes = dict.fromkeys(rule.required_slots, self.shapes[inputs])
        else:
            shapes = {slot: self.shapes[ref] for slot, ref in inputs.items()}
        try:
            out = rule.infer(shapes, rule.resolve(config))
        except RuleError:
            return None
        if not self._fits(out.shape):
            return None
        nid = self.new_id("a")
        self.doc["nodes"][nid] = {"layer": layer, "config": config, "inputs": inputs}
        self.shapes[nid] = out.shape
        self.consumed.update([inputs] if isinstance(inputs, str) else inputs.values())
        return nid

    def merge(self, mode: str, inputs: Any, config: dict[str, Any]) -> str | None:
        rule = MERGES[mode]
        if isinstance(inputs, dict):
            sources: Any = {
                slot: [(r, self.shapes[r]) for r in ([v] if isinstance(v, str) else v)] for slot, v in inputs.items()
            }
            refs = [r for v in inputs.values() for r in ([v] if isinstance(v, str) else v)]
        else:
            sources, refs = [(r, self.shapes[r]) for r in inputs], list(inputs)
        try:
            shape = rule.infer(sources, rule.resolve(config)).shape
        except RuleError:
            return None
        if not self._fits(shape):
            return None
        nid = self.new_id("m")
        node: dict[str, Any] = {"merge": mode, "inputs": inputs}
        if config:
            node["config"] = config
        self.doc["nodes"][nid] = node
        self.shapes[nid] = shape
        self.consumed.update(r.partition(".")[0] for r in refs)
        return nid

    def dense(self, src: str, units: int, activation: str | None = None) -> str | None:
        config: dict[str, Any] = {"units": units}
        if activation:
            config["activation"] = activation
        return self.layer(src, "Dense", config)


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


# --- configs from the rules ----------------------------------------------------------
#
# Both generators draw every layer and merge from the registries themselves: a rule's
# examples say which input shapes it takes and give a config that fits them, and each
# parameter's JSON Schema gives other values to try. A new entry in LAYERS or MERGES is
# generated without any change here; test_every_rule_can_be_drawn fails for one that
# gives the generators nothing to draw.


def _from_schema(schema: Any) -> st.SearchStrategy[Any]:
    """Small values valid under one parameter's JSON Schema (the subset the layer tables use)."""
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "oneOf" in schema:
        return st.one_of([_from_schema(b) for b in schema["oneOf"]])
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return st.one_of([_from_schema({**schema, "type": k}) for k in kinds])
    if kinds == "null":
        return st.none()
    if kinds == "boolean":
        return st.booleans()
    if kinds == "integer":
        lo = max(schema.get("minimum", -4), -4)
        return st.integers(lo, min(schema.get("maximum", 8), max(lo, 0) + 8))
    if kinds == "number":
        values = [0.0, 0.1, 0.5, 1.0, 2.0]
        ok = [
            v
            for v in values
            if schema.get("minimum", -1e9) <= v <= schema.get("maximum", 1e9)
            and v > schema.get("exclusiveMinimum", -1e9)
            and v < schema.get("exclusiveMaximum", 1e9)
        ]
        return st.sampled_from(ok) if ok else st.nothing()
    if kinds == "array":
        lo = schema.get("minItems", 0)
        return st.lists(
            _from_schema(schema["items"]), min_size=lo, max_size=min(schema.get("maxItems", lo + 3), lo + 3)
        )
    if kinds == "object" and "allOf" not in schema:
        props = schema.get("properties", {})
        keys = st.lists(st.sampled_from(sorted(props)), min_size=schema.get("minProperties", 0), unique=True)
        return keys.flatmap(lambda ks: st.fixed_dictionaries({k: _from_schema(props[k]) for k in ks}))
    return st.nothing()  # an object the tables describe with if/then (Bidirectional's layer): examples only


#: Keys kept as the examples give them, because the generated models also run on data here.
RUN_LIMITS = {("Conv2DTranspose", "dilation_rate"): "TensorFlow's CPU kernels refuse a dilated transposed convolution"}


def _redraw(draw: Callable[[Any], Any], rule: Rule, config: dict[str, Any], odds: int = 4) -> dict[str, Any]:
    """A copy of ``config`` with about one key in ``odds`` redrawn from its parameter's schema."""
    config = copy.deepcopy(config)
    for param in rule.params:
        if (rule.name, param.name) in RUN_LIMITS:
            continue
        if draw(st.integers(0, odds - 1)) == 0:
            strategy = _from_schema(param.schema if param.default is not None else {"type": "null"})
            if param.default is None and draw(st.booleans()):
                strategy = _from_schema(param.schema)
            if not strategy.is_empty:
                config[param.name] = draw(strategy)
    return config


def _rank(shape: Any) -> int:
    """The rank (without batch) of an example's input: its first slot's for a layer with slots."""
    return len(next(iter(shape.values())) if isinstance(shape, dict) else shape)


def _rule_example(draw: Callable[[Any], Any], rule: Rule, rank: int | None = None) -> tuple[Any, dict[str, Any]]:
    """One of the rule's examples, one whose input has ``rank`` (without batch) when any has."""
    fitting = [e for e in rule.examples if rank is None or _rank(e[0]) == rank]
    return copy.deepcopy(draw(st.sampled_from(fitting or list(rule.examples))))


#: Layers called on one tensor, by the input ranks their examples show (``ids`` layers only
#: ever start from an integer input); layers with named inputs; layers of integer ids; merges.
SINGLE = sorted(n for n, r in LAYERS.items() if not r.slots)
BY_RANK = {
    rank: sorted(n for n in SINGLE if LAYERS[n].dtypes != "ids" and any(len(s) == rank for s, _ in LAYERS[n].examples))
    for rank in range(1, 9)
}
SLOTTED = sorted(n for n, r in LAYERS.items() if r.slots)
IDS = sorted(n for n in SINGLE if LAYERS[n].dtypes == "ids")
MODES = sorted(MERGES)


def _layer_on(b: Builder, src: str, name: str, config: dict[str, Any], example: dict[str, Any]) -> str | None:
    """``name`` on ``src`` with ``config``, else with the example's config; None when neither fits."""
    trainable = b.draw(st.integers(0, 9)) > 0
    return b.layer(src, name, config, trainable) or b.layer(src, name, example, trainable)


def _step_layer(b: Builder, src: str | None = None) -> str | None:
    src = src or b.pick()
    if src is None:
        return None
    rank = len(b.shapes[src]) - 1
    for _ in range(4):  # a few tries: some draws do not fit the shape
        name = b.draw(st.sampled_from(BY_RANK[rank] or SINGLE))
        rule = LAYERS[name]
        _, example = _rule_example(b.draw, rule, rank)
        nid = _layer_on(b, src, name, _redraw(b.draw, rule, example), example)
        if nid:
            return nid
    return None


def _step_attention(b: Builder) -> str | None:
    """A layer with named inputs: on one sequence (self-attention), or a query over another sequence."""
    query = b.pick(rank=2, known_last=True)
    if query is None:
        return None
    rule = LAYERS[b.draw(st.sampled_from(SLOTTED))]
    _, example = _rule_example(b.draw, rule)
    cfg = _redraw(b.draw, rule, example)
    value = b.pick(rank=2, known_last=True)
    if value is None or value == query or b.draw(st.booleans()):
        return b.layer_on(query, rule.name, cfg) or b.layer_on(query, rule.name, example)
    first, second, *rest = rule.slots
    inputs = {first: query, second: value}
    key = b.pick(rank=2, known_last=True)
    if rest and key is not None and b.draw(st.booleans()):
        inputs[rest[0]] = key
    return b.layer_on(inputs, rule.name, cfg) or b.layer_on(inputs, rule.name, example)


def _step_branch_merge(b: Builder) -> str | None:
    """A merge of one of its examples' shapes: vectors as Dense branches of one tensor, others as new inputs."""
    src = b.pick(rank=1, known_last=True)
    rule = MERGES[b.draw(st.sampled_from(MODES))]
    shapes, example = _rule_example(b.draw, rule)
    widths = {w: b.draw(st.sampled_from([w, b.draw(_ints(1, 6))])) for (w, *_) in shapes}
    plan = [(None, widths[s[0]]) if len(s) == 1 and s[0] and src is not None else (s, 0) for s in shapes]
    planned = [(f"p{i}", (None, w) if s is None else (None, *s)) for i, (s, w) in enumerate(plan)]
    config = _redraw(b.draw, rule, example)
    if rule.slots is not None:
        slots = rule.example_sources(planned)
        sources: Any = {k: [planned[i] for i in idx] for k, idx in slots.items()}
    else:
        sources = planned
    if not any(_infers(rule, sources, c) for c in (config, example)):
        return None
    config = config if _infers(rule, sources, config) else example
    refs: list[str | None] = []
    for shape, width in plan:
        if shape is None:
            refs.append(b.dense(str(src), width, b.draw(st.sampled_from([None, "relu", "tanh", "softmax"]))))
        else:
            refs.append(b.new_id("in"))
            b.add_input(str(refs[-1]), list(shape))
    if None in refs:
        return None
    if rule.slots is None:
        return b.merge(rule.name, refs, config)
    named = {k: [refs[i] for i in idx] if rule.slots[k] == "list" else refs[idx[0]] for k, idx in slots.items()}
    return b.merge(rule.name, named, config)


def _infers(rule: Any, sources: Any, config: dict[str, Any]) -> bool:
    try:
        rule.infer(sources, rule.resolve(config))
    except RuleError:
        return False
    return True


def _step_merge_existing(b: Builder) -> str | None:
    """Merge tensors already in the graph, of one shape or any two or three (the rule decides)."""
    groups: dict[Shape, list[str]] = {}
    for t, s in b.shapes.items():
        if b.doc["inputs"].get(t, {}).get("dtype", "float32") == "float32":
            groups.setdefault(s, []).append(t)
    same = [sorted(g) for g in groups.values() if len(g) >= 2]
    pool = sorted(t for g in groups.values() for t in g)
    if same and b.draw(st.booleans()):
        pool = b.draw(st.sampled_from(same))
    if len(pool) < 2:
        return None
    rule = MERGES[b.draw(st.sampled_from([m for m in MODES if MERGES[m].slots is None]))]
    lo, hi = rule.arity
    chosen = b.draw(st.lists(st.sampled_from(pool), min_size=lo, max_size=max(lo, min(3, hi or 3)), unique=True))
    if len(chosen) < lo:
        return None
    _, example = _rule_example(b.draw, rule)
    return b.merge(rule.name, chosen, _redraw(b.draw, rule, example)) or b.merge(rule.name, chosen, example)


def _step_shared(b: Builder) -> str | None:
    """A shared layer called on two tensors of one shape (projected from one or two sources)."""
    a, c = b.pick(rank=1, known_last=True), b.pick(rank=1, known_last=True)
    if a is None or c is None:
        return None
    width = b.draw(_ints(1, 6))
    p, q = b.dense(a, width), b.dense(c, width)
    if p is None or q is None:
        return None
    rule = LAYERS[b.draw(st.sampled_from(BY_RANK[1]))]
    _, example = _rule_example(b.draw, rule, 1)
    shape = None
    for cfg in (_redraw(b.draw, rule, example), example):
        try:
            shape = rule.infer(b.shapes[p], rule.resolve(cfg)).shape
        except RuleError:
            continue
        if b._fits(shape):
            break
        shape = None
    if shape is None:
        return None
    sid = b.new_id("s")
    entry: dict[str, Any] = {"layer": rule.name}
    if cfg:
        entry["config"] = cfg
    if b.draw(st.integers(0, 5)) == 0:
        entry["trainable"] = False
    b.doc.setdefault("shared", {})[sid] = entry
    calls = []
    for src in (p, q):
        nid = b.new_id("c")
        b.doc["nodes"][nid] = {"shared": sid, "inputs": src}
        b.shapes[nid] = shape
        b.consumed.add(src)
        calls.append(nid)
    return calls[-1]


def _step_block(b: Builder) -> str | None:
    """A block (shared or separate weights) instantiated on two tensors of one shape."""
    a, c = b.pick(rank=1, known_last=True), b.pick(rank=1, known_last=True)
    if a is None or c is None:
        return None
    width = b.draw(_ints(1, 6))
    p, q = b.dense(a, width), b.dense(c, width)
    if p is None or q is None:
        return None
    k = b.draw(_ints(1, 6))
    inner: dict[str, Any] = {"h": {"layer": "Dense", "config": {"units": k, "activation": "relu"}, "inputs": "x"}}
    if b.draw(st.booleans()):  # a residual inside the block
        inner["h2"] = {"layer": "Dense", "config": {"units": k}, "inputs": "h"}
        inner["o"] = {"merge": "add", "inputs": ["h", "h2"]}
    else:
        inner["o"] = {"layer": "Dense", "config": {"units": b.draw(_ints(1, 6))}, "inputs": "h"}
    bid = b.new_id("blk")
    shared = b.draw(st.booleans())
    b.doc.setdefault("blocks", {})[bid] = {
        "inputs": ["x"],
        "nodes": inner,
        "outputs": {"out": "o"},
        "shared_weights": shared,
    }
    out_shape = (None, inner["o"]["config"]["units"]) if "config" in inner["o"] else (None, k)
    last = None
    for src in (p, q):
        nid = b.new_id("i")
        b.doc["nodes"][nid] = {"block": bid, "inputs": src if b.draw(st.booleans()) else {"x": src}}
        b.shapes[nid] = out_shape
        b.consumed.add(src)
        last = nid
    return last


@st.composite
def valid_specs(draw: Callable[[Any], Any]) -> dict[str, Any]:
    """A small spec that should check, compile and agree with Keras."""
    b = Builder(draw)
    starts = draw(st.lists(st.sampled_from(["vec", "seq", "img", "rule", "ids"]), min_size=1, max_size=3))
    for i, start in enumerate(starts):
        iid = f"in{i}"
        if start in ("rule", "ids"):  # an input shaped like an example of a layer, fed to that layer
            rule = LAYERS[draw(st.sampled_from(IDS if start == "ids" else SINGLE))]
            shape, example = _rule_example(draw, rule)
            b.add_input(iid, list(shape), "int32" if rule.dtypes == "ids" else "float32")
            if _layer_on(b, iid, rule.name, _redraw(draw, rule, example), example):
                continue
            del b.doc["inputs"][iid], b.shapes[iid]  # its output is past MAX_DIM: a vector instead
            start = "vec"
        if start == "vec":
            b.add_input(iid, [draw(_ints(1, 8))])
        elif start == "seq":
            b.add_input(iid, [draw(st.sampled_from([None, 3, 4, 6, 8])), draw(_ints(1, 6))])
        else:
            b.add_input(iid, [draw(_ints(3, 8)), draw(_ints(3, 8)), draw(_ints(1, 3))])
        nid = None
        for _ in range(6):  # every input used at least once
            nid = _step_layer(b, iid)
            if nid:
                break
        if nid is None:
            nid = b.layer(iid, "Flatten", {}) if len(b.shapes[iid]) > 2 else b.dense(iid, 2)
        assert nid is not None
    steps = {
        "layer": _step_layer,
        "branch_merge": _step_branch_merge,
        "merge_existing": _step_merge_existing,
        "shared": _step_shared,
        "block": _step_block,
        "attention": _step_attention,
    }
    kinds_of_step = [
        "layer", "layer", "layer", "branch_merge", "branch_merge", "merge_existing", "shared", "block", "attention",
    ]  # fmt: skip
    for _ in range(draw(_ints(1, 10))):
        if b.full():
            break
        steps[draw(st.sampled_from(kinds_of_step))](b)
    ends = [t for t in b.doc["nodes"] if t not in b.consumed]
    b.doc["outputs"] = {f"out_{t}": {"from": t, "loss": draw(st.sampled_from(["mse", None]))} for t in sorted(ends)}
    return b.doc


def _write(doc: Any, folder: str) -> Path:
    path = Path(folder) / "spec.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _example(shape: Any, dtype: str, rng: Any) -> Any:
    import numpy as np

    dims = [2, *shape[1:]]
    if "int" in dtype:
        return np.zeros(dims, dtype)  # id 0 exists in every Embedding
    return rng.normal(size=dims).astype(dtype)


# --- the properties --------------------------------------------------------------------


@_settings(25)
@given(doc=valid_specs())
def test_generated_specs_check(doc: dict[str, Any]) -> None:
    """Every generated spec checks (the generator and the checker agree on validity)."""
    with tempfile.TemporaryDirectory() as folder:
        check_spec(_write(doc, folder))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning")
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis:UserWarning")
@_settings(25)
@given(doc=valid_specs())
def test_static_shapes_and_params_equal_keras(doc: dict[str, Any], keras: Any) -> None:
    """Differential test: fusec's static shapes and parameter counts equal Keras's after build."""
    import numpy as np

    from fusec.keras.build import build_model

    keras.backend.clear_session()
    with tempfile.TemporaryDirectory() as folder:
        checked = check_spec(_write(doc, folder))
        model = build_model(checked)  # compiled for training: losses, metrics, optimizer
    for nid in checked.order:
        info = checked.info[nid]
        if info.kind in ("layer", "merge"):
            output = model.get_layer(nid).output
            outputs = list(output) if isinstance(output, (list, tuple)) else [output]
            static = [info.shape, *checked.shapes.extras.get(nid, ())]
            got = [tuple(t.shape) for t in outputs]
            assert got == static, f"node {nid} ({info.op}): Keras {got}, fusec {static}"
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    assert (trainable, frozen) == (checked.totals.trainable, checked.totals.non_trainable)
    if any(None in checked.info[i].shape[1:] for i in doc["inputs"]):
        return  # which lengths fit together at run time is the data's business, not the checker's
    if any(w.code == "serving" for w in checked.warnings):
        return  # the checker already says this one does not run on every machine (this CPU included)
    rng = np.random.default_rng(0)
    x = {i: _example(checked.info[i].shape, checked.info[i].op, rng) for i in doc["inputs"]}
    y = model(x, training=False)
    if not isinstance(y, dict):  # several outputs: a list in the spec's order
        y = dict(zip(model.output_names, y, strict=True))
    for name, ref in checked.graph.graph["outputs"].items():
        static = checked.shapes.of(ref.source)
        assert len(y[name].shape) == len(static)
        assert all(s is None or s == d for s, d in zip(static[1:], y[name].shape[1:], strict=True)), name


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning")
@_settings(3)
@given(doc=valid_specs())
def test_generated_specs_compile_to_artifacts(doc: dict[str, Any], keras: Any) -> None:
    """The whole compile: SavedModel, .keras archive and manifest, through the CLI."""
    from click.testing import CliRunner

    from fusec.cli import cli

    keras.backend.clear_session()
    with tempfile.TemporaryDirectory() as folder:
        path = _write(doc, folder)
        out = Path(folder) / "out"
        result = CliRunner().invoke(cli, ["compile", str(path), "-o", str(out)])
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / "fusec.json").read_text())
        assert sorted(manifest["signature"]["outputs"]) == sorted(doc["outputs"])
        assert (out / "saved_model" / "saved_model.pb").is_file()


def _drawable(rule: Rule, shapes: Any, config: dict[str, Any]) -> bool:
    """Whether an example is one the generators can use: its config fits its own shapes."""
    if isinstance(rule, LayerRule):
        given = {k: (None, *v) for k, v in shapes.items()} if rule.slots else (None, *shapes)
        try:
            rule.infer(given, rule.resolve(config))
        except RuleError:
            return False
        return True
    planned = [(f"p{i}", (None, *s)) for i, s in enumerate(shapes)]
    if isinstance(rule, MergeRule) and rule.slots is not None:
        planned = {k: [planned[i] for i in idx] for k, idx in rule.example_sources(planned).items()}  # type: ignore[assignment]
    return _infers(rule, planned, config)


@pytest.mark.parametrize("name", [f"layer:{n}" for n in sorted(LAYERS)] + [f"merge:{m}" for m in MODES])
def test_every_rule_can_be_drawn(name: str) -> None:
    """Every registry entry is in the generators' tables and gives them an example that fits."""
    kind, _, key = name.partition(":")
    rule: Rule = LAYERS[key] if kind == "layer" else MERGES[key]
    if kind == "layer":
        assert key in SINGLE + SLOTTED
        assert rule.slots or any(key in names for names in BY_RANK.values()) or rule.dtypes == "ids"
    else:
        assert key in MODES
    assert rule.examples, f"{name} has no examples: the generators have nothing to draw"
    assert all(_drawable(rule, shapes, config) for shapes, config in rule.examples), f"{name}: an example does not fit"


# --- mutations -------------------------------------------------------------------------

_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 1 << 24, (1 << 24) + 1, 10**12]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "x", "..", "../x", "/etc/passwd", "Lambda", "os.system", "a.b", "x.1", "\x00", "\u202e"]),
    st.text(max_size=8),
    st.lists(st.integers(-2, 9), max_size=3),
    st.dictionaries(st.sampled_from(["units", "layer", "inputs", "x", "$ref"]), st.integers(0, 3), max_size=2),
)


def _locations(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path in a JSON document (the root included)."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _locations(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _locations(v, (*path, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _mutate(doc: Any, draw: Callable[[Any], Any]) -> Any:
    doc = copy.deepcopy(doc)
    paths = _locations(doc)
    kind = draw(st.sampled_from(["delete", "replace", "swap", "rename", "insert", "self_loop"]))
    path = draw(st.sampled_from(paths))
    if kind == "swap":
        refs = [
            p for p in paths if (p and p[-1] in ("inputs", "from", "shared", "block")) or (len(p) > 1 and "inputs" in p)
        ]
        refs = [p for p in refs if isinstance(_get(doc, p), str)]
        if len(refs) >= 2:
            a, b = draw(st.lists(st.sampled_from(refs), min_size=2, max_size=2, unique=True))
            va, vb = _get(doc, a), _get(doc, b)
            _get(doc, a[:-1])[a[-1]], _get(doc, b[:-1])[b[-1]] = vb, va
            return doc
        kind = "replace"
    if kind == "self_loop":
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        if isinstance(nodes, dict) and nodes:
            nid = draw(st.sampled_from(sorted(nodes)))
            if isinstance(nodes[nid], dict):
                nodes[nid]["inputs"] = nid
                return doc
        kind = "replace"
    if not path:
        return draw(_JUNK) if kind == "replace" else doc
    parent, key = _get(doc, path[:-1]), path[-1]
    if kind == "delete":
        del parent[key]
    elif kind == "replace":
        parent[key] = draw(_JUNK)
    elif kind == "rename" and isinstance(parent, dict):
        parent[draw(st.sampled_from(["", "x", "units", "inputs", "layer", "$ref", "n1", "in0", "my-id", "é"]))] = (
            parent.pop(key)
        )
    elif kind == "insert":
        target = _get(doc, path)
        if isinstance(target, dict):
            target[draw(st.sampled_from(["units", "module", "class_name", "safe_mode", "config", "inputs", "zz"]))] = (
                draw(_JUNK)
            )
        elif isinstance(target, list):
            target.append(draw(_JUNK))
    return doc


def _assert_clean(err: FusecError) -> None:
    assert err.problems
    for problem in err.problems:
        assert problem.jsonpath.startswith("$")
        assert problem.message
    for line in err.lines():
        assert "\n" not in line and "\x1b" not in line


@_settings(150)
@given(doc=valid_specs(), data=st.data())
def test_mutations_fail_cleanly(doc: dict[str, Any], data: st.DataObject) -> None:
    """Deleted keys, swapped references, wrong types: a FusecError or a pass, never anything else."""
    mutated = doc
    for _ in range(data.draw(_ints(1, 3))):
        mutated = _mutate(mutated, data.draw)
    with tempfile.TemporaryDirectory() as folder:
        try:
            check_spec(_write(mutated, folder))
        except FusecError as err:
            _assert_clean(err)


@_settings(200)
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_random_bytes_fail_cleanly(data: bytes) -> None:
    try:
        parse_spec(data, "fuzz.json")
    except FusecError as err:
        _assert_clean(err)


@_settings(100)
@given(
    doc=st.recursive(
        _JUNK,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=12,
    )
)
def test_random_documents_fail_cleanly(doc: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        try:
            check_spec(_write(doc, folder))
        except FusecError as err:
            _assert_clean(err)


# --- accepted specs: nothing check accepts crashes the build ---------------------------
#
# ``accepted_specs()`` draws specs from the vocabulary tables themselves (every layer of
# ``LAYERS``, every merge of ``MERGES``, every dtype of the schema), with configs drawn
# from each parameter's own JSON Schema, edge-case ids (64 characters, digits and ``__``
# inside, Python keywords where they are allowed, a non-ASCII one that must be refused),
# port references (``x.0``, ``enc.2``), shared layers called twice and file names that need
# the derived-name mapping. It asks the layer rules whether a step fits its input, but not
# whether the dtypes, the shared weights or the ports work out: that is what ``check``
# decides, and every spec it accepts must build, serve and train-call without an exception.
# FUSEC_HYPOTHESIS_SCALE=20 (``make test-deep``) runs 20 times more examples and also
# writes and reloads the SavedModel of each.

from fusec.spec.graph import flat_refs  # noqa: E402
from fusec.spec.schema import DTYPES, RESERVED  # noqa: E402

DEEP = SCALE > 1
_EDGE_IDS = ["a" * 64, "Z" * 63 + "9", "x", "a__b", "n0_1", "A1", "Input", "dense", "output_0", "serving_default"]
_KEYWORD_IDS = ["class", "lambda", "None", "self", "True"]  # fine for nodes and outputs, not for inputs
_STEMS = ["spec", "my model (copy)", "modèle", "2024", "_private", "lambda", "a-b-c", "日本語", "x" * 80]


class Accepted:
    """A spec drawn for ``test_accepted_specs_build_and_run``, with the static shape of every tensor so far."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        self.draw = draw
        self.doc: dict[str, Any] = {"fusec": 1, "inputs": {}, "nodes": {}, "outputs": {}}
        self.tensors: dict[str, Shape] = {}  # reference -> static shape
        self.dtypes: dict[str, str] = {}  # reference -> element type, as far as the generator knows
        self.taken: set[str] = set()
        self.bad_id = draw(st.integers(0, 14)) == 0  # one id outside the names rule: check must refuse the spec

    def new_id(self, is_input: bool = False) -> str:
        d = self.draw
        if self.bad_id and not is_input:
            self.bad_id = False
            return str(d(st.sampled_from(["é", "ñode", "x\u200b", "h\n", "_h", "9a", "a" * 65])))
        for _ in range(20):
            pick = d(st.integers(0, 9))
            if pick == 0:
                nid = d(st.sampled_from(_EDGE_IDS))
            elif pick == 1 and not is_input:
                nid = d(st.sampled_from(_KEYWORD_IDS))
            else:
                nid = d(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,11}", fullmatch=True))
            if nid not in self.taken and not (is_input and nid in RESERVED):
                self.taken.add(nid)
                return nid
        nid = f"n{len(self.taken)}"
        self.taken.add(nid)
        return nid

    def ref(self, tensor: str) -> str:
        """A reference to ``tensor``, sometimes written ``id.0``."""
        if "." not in tensor and self.draw(st.integers(0, 4)) == 0:
            return f"{tensor}.0"
        return tensor

    def new_input(self, shape: Shape, kinds: str = "float") -> str:
        """A new input; its dtype is mostly one ``kinds`` takes (``rules.DTYPE_RULES``), sometimes any."""
        d = self.draw
        iid = self.new_id(is_input=True)
        entry: dict[str, Any] = {"shape": list(shape)}
        fitting = [t for t in DTYPES if _takes(kinds, t)]
        dtype = d(st.sampled_from(DTYPES if d(st.integers(0, 4)) == 0 else fitting))
        if dtype != "float32":
            entry["dtype"] = dtype
        self.doc["inputs"][iid] = entry
        self.tensors[iid] = (None, *shape)
        self.dtypes[iid] = dtype
        return iid

    def add(self, nid: str, node: dict[str, Any], out: Any, dtype: str = "float32") -> None:
        self.doc["nodes"][nid] = node
        self.tensors[nid] = out.shape
        self.dtypes[nid] = dtype
        for i, extra in enumerate(out.extra, start=1):
            self.tensors[f"{nid}.{i}"] = extra
            self.dtypes[f"{nid}.{i}"] = dtype

    def _fits(self, rule: LayerRule, config: dict[str, Any], inputs: Any) -> Any:
        """The rule's output on ``inputs`` (a tensor, or {slot: tensor}), or None when it does not fit."""
        if isinstance(inputs, dict):
            shapes: Any = {s: self.tensors[t] for s, t in inputs.items()}
        elif rule.slots:
            shapes = dict.fromkeys(rule.required_slots, self.tensors[inputs])
        else:
            shapes = self.tensors[inputs]
        try:
            out = rule.infer(shapes, rule.resolve(config))
        except (RuleError, KeyError, TypeError, ValueError):
            return None  # the config or the input does not fit: check would say so too
        return out if max((x or 0) for x in out.shape[1:]) <= 64 else None

    def _call_of(self, rule: LayerRule, config: dict[str, Any]) -> tuple[Any, Any]:
        """Inputs the layer fits (existing tensors, else a new input shaped like one of its examples)."""
        d = self.draw
        candidates: list[Any] = sorted(self.tensors)
        if rule.slots and self.tensors:
            candidates += [
                {s: t for s, t in zip(rule.slots, ts, strict=True) if t is not None}
                for ts in [d(st.tuples(*[st.sampled_from(sorted(self.tensors))] * 2, st.none()))]
            ]
        fitting = [(c, out) for c in candidates if (out := self._fits(rule, config, c)) is not None]
        typed = [(c, out) for c, out in fitting if all(_takes(rule.dtypes, self.dtypes[t]) for t in _flat(c))]
        if d(st.integers(0, 4)) > 0:
            fitting = typed  # mostly inputs of a type the layer takes; sometimes any, for check to refuse
        if fitting:
            return d(st.sampled_from(fitting))
        shape, config_example = d(st.sampled_from(rule.examples))
        if rule.slots:
            inputs: Any = {s: self.new_input(sh, rule.dtypes) for s, sh in shape.items()}
        else:
            inputs = self.new_input(shape, rule.dtypes)
        config.clear()
        config.update(copy.deepcopy(config_example))
        return inputs, self._fits(rule, config, inputs)

    def _refs(self, inputs: Any) -> Any:
        return {s: self.ref(t) for s, t in inputs.items()} if isinstance(inputs, dict) else self.ref(inputs)

    def layer(self, shared: bool = False) -> None:
        d = self.draw
        rule = LAYERS[d(st.sampled_from(sorted(LAYERS)))]
        _, example = _rule_example(d, rule)
        config = _redraw(d, rule, example)
        inputs, out = self._call_of(rule, config)
        if out is None:
            return
        if not shared:
            node: dict[str, Any] = {"layer": rule.name, "inputs": self._refs(inputs)}
            if config:
                node["config"] = config
            if d(st.integers(0, 5)) == 0:
                node["trainable"] = False
            kept = self.dtypes[_flat(inputs)[0]]
            self.add(self.new_id(), node, out, kept if rule.dtypes == "keep" and kept not in FLOATS else "float32")
            return
        sid = self.new_id()
        self.doc.setdefault("shared", {})[sid] = {"layer": rule.name, "config": config}
        self.add(self.new_id(), {"shared": sid, "inputs": self._refs(inputs)}, out)
        # A second call on any tensor the layer fits: check decides whether the weights fit it too.
        others = [t for t in sorted(self.tensors) if self._fits(rule, config, t) is not None] or [inputs]
        second = d(st.sampled_from(others))
        self.add(self.new_id(), {"shared": sid, "inputs": self._refs(second)}, self._fits(rule, config, second))

    def merge(self) -> None:
        d = self.draw
        rule = MERGES[d(st.sampled_from(sorted(MERGES)))]
        shapes, config = copy.deepcopy(d(st.sampled_from(rule.examples)))
        lo, hi = rule.arity
        n_one = sum(kind == "one" for kind in (rule.slots or {}).values())
        for attempt in range(9):
            if attempt < 8:
                picks = d(st.lists(st.sampled_from(sorted(self.tensors)), min_size=lo + n_one, max_size=4))
                if hi is not None:
                    picks = picks[: hi + n_one]
            else:  # nothing fitted: new inputs shaped like one of the merge's examples
                picks = [self.new_input(sh) for sh in shapes]
            if rule.slots is not None:
                slots = rule.example_sources(picks)
                inputs: Any = {
                    k: [self.ref(picks[i]) for i in idx] if rule.slots[k] == "list" else self.ref(picks[idx[0]])
                    for k, idx in slots.items()
                }
                sources: Any = {k: [(picks[i], self.tensors[picks[i]]) for i in idx] for k, idx in slots.items()}
            else:
                inputs = [self.ref(p) for p in picks]
                sources = [(p, self.tensors[p]) for p in picks]
            try:
                out = rule.infer(sources, rule.resolve(config))
            except RuleError:
                continue
            node: dict[str, Any] = {"merge": rule.name, "inputs": inputs}
            if config:
                node["config"] = config
            self.add(self.new_id(), node, out)
            return


FLOATS = ("float16", "bfloat16", "float32", "float64")


def _takes(kinds: str, dtype: str) -> bool:
    """Whether a layer of ``kinds`` (``rules.DTYPE_RULES``) takes ``dtype``, as the generator guesses it."""
    if kinds == "ids":
        return dtype in ("int32", "int64", "uint8")
    return kinds in ("number", "keep") or dtype in FLOATS


def _flat(inputs: Any) -> list[str]:
    return list(inputs.values()) if isinstance(inputs, dict) else [inputs]


@st.composite
def accepted_specs(draw: Callable[[Any], Any]) -> tuple[str, dict[str, Any]]:
    """A file stem and a spec drawn over the whole vocabulary (check decides whether it is accepted)."""
    b = Accepted(draw)
    for _ in range(draw(st.integers(1, 5))):
        step = draw(st.sampled_from(["layer", "layer", "layer", "merge", "shared"]))
        if step == "merge" and b.tensors:
            b.merge()
        else:
            b.layer(shared=step == "shared")
    used = {r.partition(".")[0] for n in b.doc["nodes"].values() for r in flat_refs(n["inputs"])}
    ends = [t for t in sorted(b.tensors) if t.partition(".")[0] not in used or draw(st.integers(0, 5)) == 0]
    for t in ends:
        if "." not in t and t not in b.doc["outputs"] and draw(st.booleans()):
            b.doc["outputs"][t] = {"from": t}  # named after its node: no Identity layer
        else:
            b.doc["outputs"][b.new_id()] = {"from": b.ref(t)}
    for out in b.doc["outputs"].values():
        out["loss"] = draw(st.sampled_from([None, None, "mse"]))
    if draw(st.booleans()):
        b.doc["name"] = b.new_id()
    b.doc["seed"] = 5
    return draw(st.sampled_from(_STEMS)), b.doc


def _feed(tf: Any, shape: Shape, dtype: str) -> Any:
    dims = [2, *(d for d in shape[1:])]
    if dtype.startswith(("float", "bfloat")):
        return tf.cast(tf.random.stateless_normal(dims, seed=(1, 2)), dtype)
    return tf.zeros(dims, dtype)  # id 0 exists in every Embedding


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(_settings(20), phases=[Phase.explicit, Phase.reuse, Phase.generate])  # shrinking a build takes minutes
@given(drawn=accepted_specs())
def test_accepted_specs_build_and_run(drawn: tuple[str, dict[str, Any]], keras: Any) -> None:
    """Every spec check accepts builds, traces its serving function, and runs on a batch (serving and training)."""
    import tensorflow as tf
    from hypothesis import assume

    from fusec.keras.build import build_model
    from fusec.spec.schema import is_id

    stem, doc = drawn
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{stem}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        try:
            checked = check_spec(path)
        except FusecError as err:
            _assert_clean(err)
            assume(False)  # refused cleanly: nothing to build
        names = [k for section in ("inputs", "shared", "nodes", "outputs") for k in doc.get(section, {})]
        assert all(is_id(k) for k in names), "an id outside the names rule was accepted"
        assert is_id(checked.name)
        keras.backend.clear_session()
        model = build_model(checked)
        assert model.name == checked.name
        specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]
        serve = tf.function(lambda *a: model(list(a), training=False), input_signature=specs)
        serve.get_concrete_function()  # what writing the SavedModel traces
        if DEEP:
            from fusec.keras.save import save_artifacts

            art = save_artifacts(model, checked, Path(folder) / "out")
            loaded = tf.saved_model.load(str(art.root / "saved_model"))
            assert sorted(loaded.signatures["serving_default"].structured_outputs) == sorted(doc["outputs"])
        if any(d is None for t in model.inputs for d in t.shape[1:]):
            return  # which lengths fit together at run time is the data's business
        x = [_feed(tf, checked.info[i].shape, checked.info[i].op) for i in doc["inputs"]]
        for training in (False, True):
            y = model(x, training=training)
            got = list(y.values()) if isinstance(y, dict) else list(y) if isinstance(y, (list, tuple)) else [y]
            for declared, tensor in zip(model.outputs, got, strict=True):
                assert tensor.dtype == declared.dtype, f"declared {declared.dtype}, served {tensor.dtype}"
