"""The command line, end to end: every bundled spec compiles and serves.

Compiles run in-process (one TensorFlow import for the whole session); the
SavedModels are then loaded and served in a separate Python process in which
importing fusec fails, exactly as an app without fusec would load them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import SPECS
from fusec.cli import cli
from fusec.spec.schema import SCHEMA_PATH
from helpers import BLOCK_FUSEC, spec, write

ALL_SPECS = sorted(SPECS.glob("*.json"))


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory, keras: Any) -> dict[str, Path]:
    """Every bundled spec compiled once, by the CLI, in this process."""
    root = tmp_path_factory.mktemp("compiled")
    outs = {}
    for path in ALL_SPECS:
        out = root / path.stem
        result = run("compile", str(path), "-o", str(out))
        assert result.exit_code == 0, result.output
        assert f"SavedModel: {out / 'saved_model'}" in result.output
        outs[path.stem] = out
    return outs


def test_artifacts_written(compiled: dict[str, Path]) -> None:
    import hashlib

    for stem, out in compiled.items():
        manifest = json.loads((out / "fusec.json").read_text())
        spec_bytes = (SPECS / f"{stem}.json").read_bytes()
        assert (out / "spec.json").read_bytes() == spec_bytes
        digest = hashlib.sha256(spec_bytes).hexdigest()
        assert manifest["spec_sha256"] == digest
        assert (out / "spec.json.sha256").read_text().split()[0] == digest
        assert (out / "saved_model" / "saved_model.pb").is_file()
        assert (out / f"{manifest['name']}.keras").is_file()
        doc = json.loads(spec_bytes)
        assert sorted(manifest["signature"]["inputs"]) == sorted(doc["inputs"])
        assert sorted(manifest["signature"]["outputs"]) == sorted(doc["outputs"])


def test_saved_models_serve_without_fusec(compiled: dict[str, Path]) -> None:
    """An app with plain TensorFlow loads and calls every SavedModel by the spec's names."""
    script = BLOCK_FUSEC + textwrap.dedent(
        """
        import json, os, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np
        import tensorflow as tf
        try:
            import fusec  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("fusec was importable")
        report = {}
        for out in sys.argv[1:]:
            manifest = json.load(open(os.path.join(out, "fusec.json")))
            serve = tf.saved_model.load(os.path.join(out, "saved_model")).signatures["serving_default"]
            kwargs = {}
            for name, sig in manifest["signature"]["inputs"].items():
                shape = [2 if d is None else d for d in sig["shape"]]
                kwargs[name] = tf.zeros(shape, dtype=sig["dtype"])
            result = serve(**kwargs)
            report[os.path.basename(out)] = {k: list(v.shape) for k, v in result.items()}
        print(json.dumps(report))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *map(str, compiled.values())],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for stem, out in compiled.items():
        manifest = json.loads((out / "fusec.json").read_text())
        expected = {k: [2 if d is None else d for d in v["shape"]] for k, v in manifest["signature"]["outputs"].items()}
        assert report[stem] == expected, stem


def test_keras_archive_reloads_and_trains(compiled: dict[str, Path], keras: Any) -> None:
    import numpy as np

    import fusec.keras.fusion  # noqa: F401  (registers fusec's own layers for specs that use them)

    rng = np.random.default_rng(0)

    for stem, out in compiled.items():
        manifest = json.loads((out / "fusec.json").read_text())
        model = keras.models.load_model(out / f"{manifest['name']}.keras")
        before = [w.copy() for w in model.get_weights()]
        x = {}
        for name, sig in manifest["signature"]["inputs"].items():
            shape = [4 if d is None else d for d in sig["shape"]]
            x[name] = np.ones(shape, "int32") if "int" in sig["dtype"] else rng.normal(size=shape).astype(sig["dtype"])
        doc = json.loads((out / "spec.json").read_text())
        y = {}
        for name, sig in manifest["signature"]["outputs"].items():
            loss = doc["outputs"][name].get("loss") or ""
            shape = [4 if d is None else d for d in sig["shape"]]
            if loss.startswith("sparse"):
                shape = shape[:-1]  # sparse losses take class ids
            if loss:
                y[name] = np.ones(shape, "float32") if loss.startswith("sparse") else np.full(shape, 0.5, "float32")
        model.fit(x, y, epochs=1, verbose=0)
        after = model.get_weights()
        assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)), stem


@pytest.mark.slow
def test_console_script_is_quiet_and_prints_location(tmp_path: Path) -> None:
    """The installed `fusec` command: no TensorFlow banner, the SavedModel's path printed."""
    exe = Path(sys.executable).with_name("fusec")
    out = tmp_path / "model"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    proc = subprocess.run(
        [str(exe), "compile", str(SPECS / "multitask_shared.json"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert f"SavedModel: {out / 'saved_model'}" in proc.stdout


@pytest.mark.parametrize("command", ["check", "summary"])
def test_static_commands_never_import_tensorflow(no_tf: Path, command: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(no_tf)}
    # `check` takes every spec in one process; the others take one spec each.
    runs = [[str(p) for p in ALL_SPECS]] if command == "check" else [[str(p)] for p in ALL_SPECS]
    for paths in runs:
        proc = subprocess.run(
            [sys.executable, "-m", "fusec", command, *paths],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, (paths, proc.stderr)


BROKEN = [
    (
        "cycle",
        spec(
            nodes={
                "h": {"layer": "Dense", "config": {"units": 4}, "inputs": "y"},
                "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "h"},
            }
        ),
        "$.nodes.",
        "cycle: h -> y -> h",
    ),
    (
        "dangling",
        spec(
            nodes={
                "h": {"layer": "Dense", "config": {"units": 4}, "inputs": "xx"},
                "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "h"},
            }
        ),
        "$.nodes.h.inputs",
        "did you mean `x`?",
    ),
    (
        "layer-typo",
        spec(nodes={"y": {"layer": "Dnese", "config": {"units": 1}, "inputs": "x"}}),
        "$.nodes.y.layer",
        "did you mean `Dense`?",
    ),
    (
        "config-key",
        spec(nodes={"y": {"layer": "Dense", "config": {"units": 1, "activaton": "relu"}, "inputs": "x"}}),
        "$.nodes.y.config.activaton",
        "did you mean `activation`?",
    ),
    (
        "merge-shape",
        spec(
            inputs={"a": {"shape": [32]}, "b": {"shape": [16]}},
            nodes={"y": {"merge": "add", "inputs": ["a", "b"]}},
        ),
        "$.nodes.y.inputs",
        "Received: (None, 32) from `a`, (None, 16) from `b`",
    ),
    ("duplicate-id", spec(inputs={"x": {"shape": [8]}, "y": {"shape": [1]}}), "$.nodes.y", "used in both"),
    ("unused-input", spec(inputs={"x": {"shape": [8]}, "z": {"shape": [1]}}), "$.inputs.z", "not used"),
    (
        "dead-node",
        spec(
            nodes={
                "h": {"layer": "Dense", "config": {"units": 4}, "inputs": "x"},
                "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "x"},
            }
        ),
        "$.nodes.h",
        "does not reach any output",
    ),
    ("lambda", spec(nodes={"y": {"layer": "Lambda", "inputs": "x"}}), "$.nodes.y.layer", "refused"),
    ("version", {**spec(), "fusec": 99}, "$.fusec", "reads version 1"),
    ("not-json", "{nodes: []}", "$", "not valid JSON"),
    ("duplicate-key", '{"fusec": 1, "fusec": 1}', "$.fusec", "more than once"),
]


@pytest.mark.parametrize(("doc", "path", "fragment"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_spec_one_clean_line(tmp_path: Path, doc: Any, path: str, fragment: str) -> None:
    file = write(tmp_path, doc, "broken.json")
    result = CliRunner().invoke(cli, ["check", str(file)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert re.match(rf"{re.escape(str(file))}:\d+:\d+: error: {re.escape(path)}", lines[0]), lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_json_errors(tmp_path: Path) -> None:
    file = write(tmp_path, BROKEN[1][1])
    result = CliRunner().invoke(cli, ["check", "--json", str(file)])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["ok"] is False
    (err,) = payload["files"][0]["errors"]
    line, col, end = err.pop("line"), err.pop("column"), err.pop("end_column")
    assert err.pop("end_line") == line
    assert file.read_text().splitlines()[line - 1][col - 1 : end - 1] == '"inputs": "xx"'
    assert err == {
        "file": str(file),
        "path": "$.nodes.h.inputs",
        "code": "reference",
        "message": "no node or input named `xx`",
        "hint": "did you mean `x`?",
        "severity": "error",
    }


def test_check_many_reports_each(tmp_path: Path) -> None:
    good = write(tmp_path, spec(), "good.json")
    bad = write(tmp_path, BROKEN[2][1], "bad.json")
    result = CliRunner().invoke(cli, ["check", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"ok: {good}" in result.output and re.search(rf"{re.escape(str(bad))}:1:\d+: error: \$", result.output)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["check"],
        ["compile"],
        ["frobnicate"],
        ["check", "--bogus", "x.json"],
        ["compile", "x.json", "--format", "onnx"],
    ],
    ids=["none", "check-no-spec", "compile-no-spec", "unknown-command", "unknown-option", "bad-format"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "fusec", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr


BAD_VALUES = [
    ("timeout-inf", ["render", "S", "--timeout", "inf"], "more than 0 and at most 86400"),
    ("timeout-nan", ["render", "S", "--timeout", "nan"], "more than 0 and at most 86400"),
    ("timeout-negative", ["render", "S", "--timeout", "-1"], "more than 0 and at most 86400"),
    ("timeout-zero", ["render", "S", "--timeout", "0"], "more than 0 and at most 86400"),
    ("timeout-overflow", ["render", "S", "--timeout", "1e400"], "more than 0 and at most 86400"),
    ("timeout-word", ["render", "S", "--timeout", "soon"], "more than 0 and at most 86400"),
    ("allow-dir-empty-check", ["check", "S", "--allow-dir", ""], "would allow the current folder"),
    ("allow-dir-empty-compile", ["compile", "S", "--allow-dir", ""], "would allow the current folder"),
    ("allow-dir-empty-render", ["render", "S", "--allow-dir", ""], "would allow the current folder"),
    ("allow-dir-empty-summary", ["summary", "S", "--allow-dir", "x", "--allow-dir", ""], "would allow the current"),
    ("allow-dir-missing-check", ["check", "S", "--allow-dir", "nowhere"], "'nowhere' is not a folder"),
    ("allow-dir-device-render", ["render", "S", "--allow-dir", "/dev/null"], "'/dev/null' is not a folder"),
    ("spec-empty-check", ["check", ""], "an empty path names no spec"),
    ("spec-empty-compile", ["compile", "", "-o", "out"], "an empty path names no spec"),
    ("spec-empty-summary", ["summary", ""], "an empty path names no spec"),
    ("output-empty-compile", ["compile", "S", "-o", ""], "an empty path is not a folder"),
    ("output-empty-render", ["render", "S", "-o", ""], "is not a file name"),
    ("output-folder-render", ["render", "S", "-o", "out/"], "is not a file name"),
]


@pytest.mark.parametrize(("args", "fragment"), [b[1:] for b in BAD_VALUES], ids=[b[0] for b in BAD_VALUES])
def test_bad_option_values_are_usage_errors(tmp_path: Path, args: list[str], fragment: str) -> None:
    """Exit 2 with the valid range or the reason, before anything is read or written."""
    good = write(tmp_path, spec(), "good.json")
    argv = [str(good) if a == "S" else a for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "fusec", *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json"]


def test_a_name_too_long_for_the_file_system_blames_the_name(tmp_path: Path) -> None:
    """`out/<name>` and `<name>.keras` come from the spec's file name when it has no `name`."""
    from types import SimpleNamespace

    from fusec.errors import OutputError
    from fusec.keras.pipeline import output_folder as _output_path

    derived = SimpleNamespace(name="n" * 252, doc={})
    with pytest.raises(OutputError) as exc:
        _output_path(derived, "all")
    message = exc.value.problems[0].message + " (" + exc.value.problems[0].hint + ")"
    assert f"the archive name `{'n' * 252}.keras` (from the spec's file name, as the spec has no `name`)" in message
    assert "258 bytes" in message and "rename the file" in message and "--format savedmodel" in message
    assert _output_path(derived, "savedmodel") == Path("out") / ("n" * 252)
    with pytest.raises(OutputError, match="default output name"):
        _output_path(SimpleNamespace(name="n" * 256, doc={}), "savedmodel")
    with pytest.raises(OutputError, match="archive name"):  # -o does not shorten the archive's name
        _output_path(SimpleNamespace(name="n" * 252, doc={"name": "x"}), "keras", tmp_path / "o")
    assert _output_path(SimpleNamespace(name="n" * 64, doc={}), "all", tmp_path / "o") == tmp_path / "o"


@pytest.mark.slow
def test_compile_with_a_long_file_name_never_fails_on_the_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 250-character file name and no `name`: a shortened model name, or a clean error naming the name."""
    long = write(tmp_path, {k: v for k, v in spec().items() if k != "name"}, "n" * 250 + ".json")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["compile", str(long)])
    assert "File name too long" not in result.output and "Traceback" not in result.output
    if result.exit_code == 0:
        (made,) = (tmp_path / "out").iterdir()
        assert (made / f"{made.name}.keras").is_file() and len(made.name) < 250
    else:
        assert result.exit_code == 1 and "name" in result.stderr, result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == [long.name]


def test_version_and_schema() -> None:
    assert run("--version").output.startswith("fusec, version ")
    assert json.loads(run("schema").output) == json.loads(SCHEMA_PATH.read_text())


def test_summary_table() -> None:
    result = run("summary", str(SPECS / "multitask_shared.json"))
    assert result.exit_code == 0
    assert "Total params: 2,273" in result.output
    assert "Dense (out call 3)" in result.output
    payload = json.loads(run("summary", "--json", str(SPECS / "multitask_shared.json")).output)
    assert payload["params"] == {"total": 2273, "trainable": 2273, "non_trainable": 0}


def test_weights_command(compiled: dict[str, Path], keras: Any, tmp_path: Path) -> None:
    import numpy as np

    import fusec.keras.fusion  # noqa: F401

    out = compiled["late_fusion_weighted"]
    fresh = json.loads(run("weights", "--json", str(out)).output)["weights"]
    assert fresh == {"fuse": {"image_probs": 0.5, "text_probs": 0.5}}  # equal start: an average
    model = keras.models.load_model(out / "late_fusion_weighted.keras")
    rng = np.random.default_rng(0)
    x = {
        "image": rng.uniform(0, 255, (32, 32, 32, 3)).astype("float32"),
        "text": rng.integers(0, 5000, (32, 24)),
    }
    model.fit(x, {"class": np.eye(5, dtype="float32")[rng.integers(0, 5, 32)]}, epochs=3, verbose=0)
    trained = tmp_path / "trained.keras"
    model.save(trained)
    result = run("weights", str(trained), "--node", "fuse")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "fuse:"
    values = [float(line.split()[-1]) for line in lines[1:]]
    assert abs(sum(values) - 1) < 1e-4 and values[0] != 0.5
    missing = CliRunner().invoke(cli, ["weights", str(out), "--node", "fuze"])
    assert missing.exit_code == 1 and "did you mean `fuse`?" in missing.output
