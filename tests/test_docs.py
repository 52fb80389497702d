"""The documentation tells the truth.

* A ```json block whose introducing paragraph (the text lines just above the
  fence, up to the previous blank line) names one ``specs/...json`` file is
  that file, compared as parsed JSON.
* Every ```json block that is a whole spec (``"fusec": 1``) passes
  ``check_spec`` -- unless its introducing paragraph says "broken": such a
  block is a deliberately broken example and must *fail* the check, so the
  marker cannot outlive the mistake it shows.
* Relative links and images in README.md and docs/ resolve to files inside
  the repository (anchors to Markdown files must match a heading), and so do
  ``../`` paths written as code.
* User-facing text names scenarios by what they are, never by internal
  labels such as "seed 001".
* The schema's hover text writes defaults as JSON, and every documented
  default is a value ``check`` accepts.
* Every key the schema documents outside per-layer configs is used by a
  bundled spec.
* ``fusec.load_model`` reloads a compiled archive, fusion layers included,
  in a process that never imported ``fusec.keras.fusion`` itself.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import fusec
from conftest import ROOT, SPECS
from fusec.errors import FusecError
from fusec.spec.schema import generate_schema
from fusec.static.check import check_spec
from fusec.vocab.layers import LAYERS
from fusec.vocab.rule import config_schema
from helpers import write

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
ALL_SPECS = sorted([*SPECS.glob("*.json"), *SPECS.glob("parts/*.json")])


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- Markdown ---------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
SPEC_NAME = re.compile(r"(?:\.\./)*(specs/[\w./-]+?\.json)\b")


@dataclass(frozen=True)
class Block:
    """A fenced code block and the paragraph that introduces it."""

    file: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    intro: str

    @property
    def where(self) -> str:
        return f"{_rel(self.file)}:{self.line}"


def _split(path: Path) -> tuple[list[Block], list[tuple[int, str]]]:
    """The fenced blocks of a Markdown file, and its other lines (numbered)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            prose.append((i + 1, lines[i]))
            i += 1
            continue
        fence, lang = m.group(1), m.group(2)
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        intro: list[str] = []
        while k >= 0 and lines[k].strip() and not FENCE.match(lines[k]):
            intro.insert(0, lines[k])
            k -= 1
        blocks.append(Block(path, i + 1, lang, "\n".join(lines[i + 1 : j]), "\n".join(intro)))
        i = j + 1
    return blocks, prose


def _json_blocks() -> Iterator[Block]:
    for path in DOCS:
        for block in _split(path)[0]:
            if block.lang == "json":
                yield block


JSON_BLOCKS = list(_json_blocks())


def _named(block: Block) -> list[str]:
    return sorted(set(SPEC_NAME.findall(block.intro)))


def test_markdown_parser_finds_the_readme_spec() -> None:
    named = [b for b in JSON_BLOCKS if b.file.name == "README.md" and _named(b)]
    assert [_named(b) for b in named] == [["specs/image_tag.json"]]


@pytest.mark.parametrize("block", [b for b in JSON_BLOCKS if _named(b)], ids=lambda b: b.where)
def test_json_block_is_the_file_it_names(block: Block) -> None:
    names = _named(block)
    assert len(names) == 1, f"{block.where}: the paragraph above names several specs {names}; name one"
    target = ROOT / names[0]
    assert target.is_file(), f"{block.where}: names {names[0]}, which does not exist"
    try:
        shown = json.loads(block.text)
    except ValueError as err:
        pytest.fail(f"{block.where}: the block introduced as {names[0]} is not JSON: {err}")
    assert shown == json.loads(target.read_text(encoding="utf-8")), f"{block.where} differs from {names[0]}"


def _whole_spec(block: Block) -> Any:
    try:
        doc = json.loads(block.text)
    except ValueError:
        return None  # a fragment ("image": {...}), shown for its shape only
    return doc if isinstance(doc, dict) and doc.get("fusec") == 1 else None


WHOLE_SPECS = [b for b in JSON_BLOCKS if _whole_spec(b) is not None]


def test_docs_show_whole_specs() -> None:
    assert len(WHOLE_SPECS) >= 2  # README's and docs/spec.md's at least: the parser has not gone blind


@pytest.mark.parametrize("block", WHOLE_SPECS, ids=lambda b: b.where)
def test_whole_spec_blocks_check(block: Block, tmp_path: Path) -> None:
    shutil.copytree(SPECS / "parts", tmp_path / "parts")  # sub-model paths resolve as beside the bundled specs
    path = write(tmp_path, _whole_spec(block), "example.json")
    if re.search(r"\bbroken\b", block.intro, re.I):
        with pytest.raises(FusecError):
            check_spec(path)
        return
    try:
        check_spec(path)
    except FusecError as err:
        pytest.fail(f"{block.where}: the example spec does not check:\n{err}")


# --- links --------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
UP_PATH = re.compile(r"^(?:\.\./)+[\w.-][\w./-]*$")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    out: set[str] = set()
    for _, line in _split(path)[1]:
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug, n = _slug(m.group(1)), 1
            while slug in out:  # GitHub numbers repeated headings
                slug = f"{_slug(m.group(1))}-{n}"
                n += 1
            out.add(slug)
    return out


def _targets(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, target, is_code) for every link, image and ``../`` code path outside code blocks."""
    for number, line in _split(path)[1]:
        spans = [m.group(2) for m in CODE_SPAN.finditer(line)]
        text = CODE_SPAN.sub("", line)
        for regex in (LINK, REF_DEF, HTML):
            for m in regex.finditer(text):
                yield number, m.group(1), False
        for span in spans:
            if UP_PATH.match(span.strip()):
                yield number, span.strip(), True


def _link_problems(path: Path) -> list[str]:
    problems = []
    for number, target, is_code in _targets(path):
        where = f"{_rel(path)}:{number}: `{target}`"
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # https:, mailto:...: not a file in the repository
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{where} points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where} does not exist")
        elif anchor and not is_code and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            problems.append(f"{where}: no heading `#{anchor}` in {_rel(resolved)}")
    return problems


def test_link_checker_catches_bad_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Real heading\n")
    page = tmp_path / "docs" / "b.md"
    page.write_text(
        "[ok](a.md) [ok](a.md#real-heading) ![img](../docs/a.md) [web](https://example.com)\n"
        "[gone](missing.md) [out](../../x.md) [anchor](a.md#nope) `../../shared/DESIGN.md`\n"
        "```\n[in a code block](ignored.md)\n```\n"
    )
    problems = _link_problems(page)
    assert [p.split(": ", 1)[0] for p in problems] == ["docs/b.md:2"] * 4, problems
    assert "missing.md" in problems[0] and "#nope" in problems[2], problems
    assert "outside" in problems[1] and "outside" in problems[3], problems


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_links_resolve_inside_the_repo(path: Path) -> None:
    problems = _link_problems(path)
    assert not problems, "\n".join(problems)


# --- internal labels ----------------------------------------------------------------

#: Names the project used internally for its scenarios. Users know the networks
#: by what they are ("the gated mixture of experts"); the benchmark scripts'
#: file names (bench/handwritten/seed000.py) may keep them.
LABELS = re.compile(
    r"\bseed[ _-]?#?\d{3}\b(?!\.py)|\bthe seed's\b|\bseed (?:answer|formulation)s?\b",
    re.IGNORECASE,
)


def test_label_pattern() -> None:
    for bad in ("seed 001", "Seed 003's gate", "the seed's BERT", "the seed answers' formulations", "seed-002"):
        assert LABELS.search(bad), bad
    for fine in ('"seed": 7', "the same spec and seed give", "bench/handwritten/seed000.py", "the spec's seed"):
        assert not LABELS.search(fine), fine


def _python_strings(path: Path) -> Iterator[tuple[int, str]]:
    """String literals and docstrings of a module (comments are not user-facing)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _user_facing_text() -> Iterator[tuple[str, str]]:
    for path in [*DOCS, *sorted((ROOT / "docs").rglob("*.svg")), *ALL_SPECS]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            yield f"{_rel(path)}:{number}", line
    for path in sorted((ROOT / "compiler").glob("*.py")):
        for number, text in _python_strings(path):
            yield f"{_rel(path)}:{number}", text
    yield "fusec schema", json.dumps(generate_schema())


def test_no_internal_labels_in_user_facing_text() -> None:
    found = [f"{where}: {m.group(0)!r}" for where, text in _user_facing_text() for m in LABELS.finditer(text)]
    assert not found, "name scenarios by what they are:\n" + "\n".join(found)


# --- schema defaults ----------------------------------------------------------------


def _descriptions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            yield node["description"]
        for value in node.values():
            yield from _descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _descriptions(value)


PY_DEFAULT = re.compile(r"Default: (?:True|False|None)\b|Default: '|'none'")


def test_schema_defaults_are_json() -> None:
    bad = [d for d in _descriptions(generate_schema()) if PY_DEFAULT.search(d)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_config_defaults_described_as_json(name: str) -> None:
    props = config_schema(LAYERS[name])["properties"]
    for p in LAYERS[name].params:
        text = props[p.name]["description"]
        if p.required:
            assert "Default:" not in text, f"{name}.{p.name}"
        else:
            assert f"Default: {json.dumps(p.default)}" in text, f"{name}.{p.name}: {text}"


def _layer_spec(name: str, shape: Any, config: dict[str, Any]) -> dict[str, Any]:
    """A one-layer spec feeding ``shape`` (a shape, or shapes by slot) to ``name``."""
    rule = LAYERS[name]
    dtype = "int32" if name == "Embedding" else "float32"
    if rule.slots:
        inputs = {slot: {"shape": list(s)} for slot, s in shape.items()}
        refs: Any = {slot: slot for slot in shape}
    else:
        inputs = {"x": {"shape": list(shape), "dtype": dtype}}
        refs = "x"
    return {
        "fusec": 1,
        "name": "defaults",
        "inputs": inputs,
        "nodes": {"h": {"layer": name, "config": config, "inputs": refs}},
        "outputs": {"h": {"from": "h"}},
    }


DEFAULT_CASES = [
    pytest.param(name, p.name, id=f"{name}.{p.name}")
    for name, rule in sorted(LAYERS.items())
    for p in rule.params
    if not p.required
]


@pytest.mark.parametrize(("name", "key"), DEFAULT_CASES)
def test_every_documented_default_is_accepted(name: str, key: str, tmp_path: Path) -> None:
    """Writing a key's documented default explicitly is a spec `check` accepts."""
    rule = LAYERS[name]
    default = json.loads(json.dumps(rule.param_index[key].default))  # as the user writes it: tuples are lists
    errors = []
    for i, (shape, config) in enumerate(rule.examples):
        path = write(tmp_path, _layer_spec(name, shape, {**config, key: default}), f"example{i}.json")
        try:
            check_spec(path)
            return
        except FusecError as err:
            errors.append(str(err))
    pytest.fail(f"{name}: `{key}: {json.dumps(default)}` fails with every example:\n" + "\n".join(errors))


# --- every documented construct is used by a bundled spec ----------------------------


def _documented() -> dict[str, set[str]]:
    """Documented keys by context: the spec's sections, each node kind, each merge's config and inputs."""
    schema = generate_schema()
    top = schema["properties"]
    node = schema["$defs"]["node"]
    out: dict[str, set[str]] = {
        "spec": set(top),
        "input": set(top["inputs"]["additionalProperties"]["properties"]),
        "output": set(top["outputs"]["additionalProperties"]["properties"]),
        "training": set(top["training"]["properties"]),
        "shared layer": set(top["shared"]["additionalProperties"]["properties"]),
        "block": set(top["blocks"]["additionalProperties"]["properties"]),
    }
    every = set(node["properties"])
    for branch in node["allOf"]:
        cond, then = branch["if"], branch["then"]
        if set(cond) == {"required"}:  # a node kind: every key except those it may not set
            kind = cond["required"][0]
            out[f"{kind} node"] = every - set(then["properties"])
        elif "merge" in cond.get("properties", {}):
            mode = cond["properties"]["merge"]["const"]
            cfg = then["properties"]["config"]
            cfg = cfg.get("else", cfg)  # a config that may hold block params is {"if": with_param, "else": CONFIG}
            out[f"{mode} config"] = set(cfg["properties"])
            if "inputs" in then["properties"]:
                out[f"{mode} inputs"] = set(then["properties"]["inputs"]["properties"])
    return out


KINDS = ("layer", "merge", "shared", "block", "model")


def _node_keys(nodes: dict[str, Any], used: dict[str, set[str]]) -> None:
    for node in nodes.values():
        kind = next(k for k in KINDS if k in node)
        used.setdefault(f"{kind} node", set()).update(node)
        if kind == "merge":
            used.setdefault(f"{node['merge']} config", set()).update(node.get("config", {}))
            if isinstance(node["inputs"], dict):
                used.setdefault(f"{node['merge']} inputs", set()).update(node["inputs"])


def _used() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for path in ALL_SPECS:
        doc = json.loads(path.read_text(encoding="utf-8"))
        used.setdefault("spec", set()).update(doc)
        for section, context in (("inputs", "input"), ("outputs", "output"), ("shared", "shared layer")):
            for item in doc.get(section, {}).values():
                used.setdefault(context, set()).update(item)
        used.setdefault("training", set()).update(doc.get("training", {}))
        for block in doc.get("blocks", {}).values():
            used.setdefault("block", set()).update(block)
            _node_keys(block["nodes"], used)
        _node_keys(doc["nodes"], used)
    return used


def test_construct_walk_sees_the_fusion_options() -> None:
    documented = _documented()
    assert {"normalize", "per_feature", "epsilon"} <= documented["weighted config"]
    assert {"softmax", "top_k"} <= documented["gated config"]
    assert {"experts", "gate"} <= documented["gated inputs"]
    assert {"weights", "output", "trainable"} <= documented["model node"]
    assert {"clipnorm", "weight_decay"} <= documented["training"]


#: Documented keys no bundled spec can use, and why (each has its own end-to-end test).
NOT_BUNDLED = {
    "model node": {
        # a model-zoo archive needs its package (keras_hub) and `--trust`: tests/test_trust.py builds one
        "trust",
        "shapes",
    },
}


def test_every_documented_construct_is_used_by_a_bundled_spec() -> None:
    used = _used()
    missing = [
        f"{context}: `{key}`"
        for context, keys in sorted(_documented().items())
        for key in sorted(keys - used.get(context, set()) - NOT_BUNDLED.get(context, set()))
    ]
    assert not missing, "no bundled spec in specs/ uses:\n" + "\n".join(missing)


# --- fusec.load_model ---------------------------------------------------------------


def test_load_model_keeps_fusec_import_light() -> None:
    code = (
        "import sys, fusec\n"
        "assert callable(fusec.load_model)\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_load_model_refuses_what_is_not_a_compiled_model(tmp_path: Path) -> None:
    no_manifest = tmp_path / "plain"
    no_manifest.mkdir()
    escaping = tmp_path / "escaping"
    escaping.mkdir()
    (escaping / "fusec.json").write_text(json.dumps({"name": "../plain/model"}))
    keras_missing = tmp_path / "savedmodel_only"
    keras_missing.mkdir()
    (keras_missing / "fusec.json").write_text(json.dumps({"name": "net"}))
    not_keras = tmp_path / "spec.json"
    not_keras.write_text("{}")
    cases = {
        tmp_path / "nowhere": "does not exist",
        no_manifest: "is not a fusec compile output",
        escaping: "is not a fusec compile output",
        keras_missing: "holds no `net.keras` archive",
        not_keras: "is not a .keras archive",
    }
    for path, message in cases.items():
        with pytest.raises(FusecError) as info:
            fusec.load_model(path)
        assert message in str(info.value) and str(path) in str(info.value), str(info.value)


RELOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras

    folder, archive, feeds_file = sys.argv[1:4]
    try:  # without fusec, Keras cannot rebuild fusec's fusion layers
        keras.models.load_model(archive)
        plain = "loaded"
    except Exception as exc:
        plain = type(exc).__name__
    assert not [m for m in sys.modules if m.startswith("fusec")], "fusec imported too early"
    import fusec
    assert "fusec.keras.fusion" not in sys.modules

    feeds = dict(np.load(feeds_file))
    report = {"plain": plain, "predictions": []}
    for model in (fusec.load_model(folder), fusec.load_model(archive)):
        assert model.optimizer is not None  # compiled: ready for more training
        out = model(feeds, training=False)
        if not isinstance(out, dict):
            out = dict(zip(model.output_names, out if isinstance(out, (list, tuple)) else [out]))
        report["predictions"].append({k: np.asarray(v).tolist() for k, v in out.items()})
    print(json.dumps(report))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["late_fusion_weighted", "gated_experts"])
def test_load_model_reloads_fusion_layers(name: str, tmp_path: Path, keras: Any) -> None:
    import numpy as np
    import tensorflow as tf

    out = tmp_path / name
    fusec.compile_spec(str(SPECS / f"{name}.json"), str(out))
    manifest = json.loads((out / "fusec.json").read_text())
    rng = np.random.default_rng(0)
    feeds = {}
    for key, sig in manifest["signature"]["inputs"].items():
        shape = [3, *(4 if d is None else d for d in sig["shape"][1:])]
        if "int" in sig["dtype"]:
            feeds[key] = rng.integers(0, 100, shape).astype(sig["dtype"])
        else:
            feeds[key] = rng.uniform(0, 1, shape).astype(sig["dtype"])
    np.savez(tmp_path / "feeds.npz", **feeds)

    # The reference: the SavedModel exported by the same compile, read without Keras.
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    want = {k: v.numpy() for k, v in serve(**{k: tf.constant(v) for k, v in feeds.items()}).items()}

    proc = subprocess.run(
        [sys.executable, "-c", RELOAD, str(out), str(out / f"{name}.keras"), str(tmp_path / "feeds.npz")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["plain"] != "loaded", "Keras loaded fusec's layers unregistered: the README's reason is stale"
    for got in report["predictions"]:
        assert sorted(got) == sorted(want)
        for key, value in want.items():
            np.testing.assert_allclose(np.asarray(got[key]), value, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_load_model_reports_a_damaged_archive(tmp_path: Path) -> None:
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(FusecError) as info:
        fusec.load_model(bad)
    assert "is not a .keras archive (not a zip file)" in str(info.value) and str(bad) in str(info.value)
