"""``fusec export``: serving layouts loaded by plain TensorFlow, version numbers, and every bad input.

The TensorFlow-heavy tests compile two bundled specs once per module
(``multitask_shared``: one input, three outputs, exported from its output
folder; ``late_fusion_weighted``: two inputs and fusec's own WeightedMerge,
exported from its ``.keras`` archive) and read every export back in a
separate Python process that never imports fusec.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import SPECS
from fusec.cli import cli
from fusec.keras.save.owner import write_owner
from fusec.train import export as ex
from fusec.train import export_formats

# --- helpers -------------------------------------------------------------------


def run(*argv: str | Path) -> Any:
    """``fusec export ARGV...`` in this process."""
    return CliRunner().invoke(cli, ["export", *map(str, argv)])


def fake_output(folder: Path, name: str = "m", saved_model: bool = True) -> Path:
    """A folder that looks like a compile output to every check made before TensorFlow is imported."""
    folder.mkdir(parents=True)
    (folder / "fusec.json").write_text(json.dumps({"name": name}))
    if saved_model:
        (folder / "saved_model").mkdir()
        (folder / "saved_model" / "saved_model.pb").write_bytes(b"not a protobuf")
    return folder


def tree(folder: Path) -> list[str]:
    """Every path under ``folder``, relative, sorted (hidden ones included)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


_PLAIN = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    out = {}
    for kind, path, feeds_path in json.loads(sys.argv[1]):
        feeds = dict(np.load(feeds_path, allow_pickle=False))
        if kind == "savedmodel":
            fn = tf.saved_model.load(path).signatures["serving_default"]
            got = fn(**{k: tf.constant(v) for k, v in feeds.items()})
            out[path] = {k: v.numpy().tolist() for k, v in got.items()}
        else:
            runner = tf.lite.Interpreter(model_path=path).get_signature_runner("serving_default")
            out[path] = {k: v.tolist() for k, v in runner(**feeds).items()}
    assert "fusec" not in sys.modules and not any(m.startswith("fusec.") for m in sys.modules)
    print(json.dumps(out))
    """
)


def run_plain(jobs: list[tuple[str, Path, Path]], cwd: Path) -> dict[str, dict[str, Any]]:
    """Run each (kind, exported path, feeds .npz) in one fresh Python that imports TensorFlow, not fusec."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    payload = json.dumps([[kind, str(path), str(feeds)] for kind, path, feeds in jobs])
    done = subprocess.run(
        [sys.executable, "-I", "-c", _PLAIN, payload], capture_output=True, text=True, env=env, cwd=cwd, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def feeds_for(model: Any, path: Path) -> dict[str, Any]:
    """Random inputs for ``model`` (2 examples), saved to ``path`` as .npz; returns them."""
    import numpy as np

    rng = np.random.default_rng(0)
    feeds = {}
    for t in model.inputs:
        shape = [2, *t.shape[1:]]
        dtype = np.dtype(str(t.dtype))
        feeds[t.name] = rng.integers(0, 50, shape).astype(dtype) if dtype.kind == "i" else rng.random(shape, "float32")
    np.savez(path, **feeds)
    return feeds


def expected(model: Any, feeds: dict[str, Any]) -> dict[str, Any]:
    """The model's outputs here, keyed by output name."""
    result = model([feeds[t.name] for t in model.inputs], training=False)
    pairs = result.items() if isinstance(result, dict) else zip(model.output_names, result, strict=True)
    return {name: value.numpy() for name, value in pairs}


def assert_close(got: dict[str, Any], want: dict[str, Any], tol: float = 1e-5) -> None:
    import numpy as np

    assert sorted(got) == sorted(want)
    for name, value in want.items():
        np.testing.assert_allclose(np.asarray(got[name]), value, rtol=tol, atol=tol, err_msg=name)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory, keras: Any) -> dict[str, Path]:
    """The two specs compiled once: name -> output folder."""
    from fusec import compile_spec

    root = tmp_path_factory.mktemp("compiled")
    return {
        name: compile_spec(SPECS / f"{name}.json", root / name).root
        for name in ("multitask_shared", "late_fusion_weighted")
    }


# --- TensorFlow: layouts read back without fusec ----------------------------------------


def test_savedmodel_versions_served_by_plain_tensorflow(compiled: dict[str, Path], tmp_path: Path, keras: Any) -> None:
    from fusec import load_model

    out = compiled["multitask_shared"]
    serve = tmp_path / "serve"
    (serve / "multitask_shared" / "notes").mkdir(parents=True)  # not a number: ignored, kept
    (serve / "multitask_shared" / ".hidden").write_text("x")
    (serve / "other").mkdir()
    first = run(out, "--serving-dir", serve)
    assert first.exit_code == 0, first.output
    assert "serving_default: x -> task1, task2, task3" in first.output
    second = ex.export_model(out, serve)
    assert (second.version, second.name, second.fmt) == (2, "multitask_shared", "savedmodel")
    seventh = run(out, "--serving-dir", serve, "--version", "7", "--json")
    assert json.loads(seventh.stdout) == {
        "ok": True, "path": str(serve / "multitask_shared" / "7"), "version": 7, "format": "savedmodel",
        "name": "multitask_shared",
    }  # fmt: skip
    before = tree(serve)
    again = run(out, "--serving-dir", serve, "--version", "2")
    assert again.exit_code == 1 and "version 2 already exists" in again.output
    assert tree(serve) == before
    assert ex.export_model(out, serve).version == 8
    model_dir = serve / "multitask_shared"
    assert sorted(os.listdir(model_dir)) == [".hidden", "1", "2", "7", "8", "notes"]  # no staging folder left
    assert (model_dir / "1" / "saved_model.pb").is_file() and (model_dir / "1" / "variables").is_dir()

    model = load_model(out, compile=False)
    feeds = feeds_for(model, tmp_path / "feeds.npz")
    got = run_plain([("savedmodel", model_dir / "1", tmp_path / "feeds.npz")], tmp_path)
    assert_close(got[str(model_dir / "1")], expected(model, feeds))


def test_keras_archive_to_savedmodel_and_tflite(compiled: dict[str, Path], tmp_path: Path, keras: Any) -> None:
    from fusec import load_model

    archive = compiled["late_fusion_weighted"] / "late_fusion_weighted.keras"
    copy = tmp_path / "fused.keras"  # a lone archive: its name comes from the file
    copy.write_bytes(archive.read_bytes())
    serve = tmp_path / "serve"
    saved = ex.export_model(copy, serve)
    assert saved.path == serve / "fused" / "1" and saved.inputs == ("image", "text") and saved.outputs == ("class",)
    lite = run(copy, "--serving-dir", serve, "--format", "tflite", "--name", "fused_lite")
    assert lite.exit_code == 0, lite.output
    assert tree(serve / "fused_lite") == ["1", "1/model.tflite"]
    multi = ex.export_model(compiled["multitask_shared"], serve, fmt="tflite", version=3)
    assert multi.path == serve / "multitask_shared" / "3"

    model = load_model(copy, compile=False)
    feeds = feeds_for(model, tmp_path / "a.npz")
    multitask = load_model(compiled["multitask_shared"], compile=False)
    multi_feeds = feeds_for(multitask, tmp_path / "b.npz")
    got = run_plain(
        [
            ("savedmodel", saved.path, tmp_path / "a.npz"),
            ("tflite", serve / "fused_lite" / "1" / "model.tflite", tmp_path / "a.npz"),
            ("tflite", multi.path / "model.tflite", tmp_path / "b.npz"),
        ],
        tmp_path,
    )
    assert_close(got[str(saved.path)], expected(model, feeds))
    assert_close(got[str(serve / "fused_lite" / "1" / "model.tflite")], expected(model, feeds), 1e-4)
    assert_close(got[str(multi.path / "model.tflite")], expected(multitask, multi_feeds), 1e-4)


@pytest.mark.skipif(not export_formats.onnx_available(), reason="tf2onnx is not installed (pip install 'fusec[onnx]')")
def test_onnx_runs_in_onnxruntime(compiled: dict[str, Path], tmp_path: Path, keras: Any) -> None:
    ort = pytest.importorskip("onnxruntime")
    from fusec import load_model

    out = compiled["late_fusion_weighted"]
    done = ex.export_model(out, tmp_path / "serve", fmt="onnx")
    assert tree(done.path) == ["model.onnx"]
    model = load_model(out, compile=False)
    feeds = feeds_for(model, tmp_path / "f.npz")
    session = ort.InferenceSession(str(done.path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    assert_close(got, expected(model, feeds), 1e-4)


def test_failures_leave_nothing(compiled: dict[str, Path], tmp_path: Path, keras: Any, monkeypatch: Any) -> None:
    serve = tmp_path / "deep" / "serve"
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    result = run(broken, "--serving-dir", serve)
    assert result.exit_code == 1 and "is not a .keras archive (not a zip file)" in result.output, result.output
    assert not (tmp_path / "deep").exists()

    damaged = fake_output(tmp_path / "damaged")
    write_owner(damaged, None)  # a record of what is there: only the SavedModel itself is unreadable
    result = run(damaged, "--serving-dir", serve)
    assert result.exit_code == 1 and "is not a readable SavedModel" in result.output, result.output
    assert not (tmp_path / "deep").exists()

    def boom(saved: Path, stage: Path) -> None:
        (stage / "half-written").write_text("x")
        raise OSError(errno.ENOSPC, "No space left on device")

    (serve / "multitask_shared" / "1").mkdir(parents=True)
    monkeypatch.setitem(ex.WRITERS, "savedmodel", boom)
    result = run(compiled["multitask_shared"], "--serving-dir", serve)
    assert result.exit_code == 1 and "No space left on device" in result.output, result.output
    assert tree(serve) == ["multitask_shared", "multitask_shared/1"]


# --- no TensorFlow: bad inputs refused before anything is written ---------------------------


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda t: t / "missing", [], "does not exist"),
        (lambda t: (t / "plain").mkdir() or t / "plain", [], "is not a fusec compile or fit output"),
        (lambda t: (t / "m.txt").write_text("x") and t / "m.txt", [], "is not a .keras archive or a fusec output"),
        (lambda t: fake_output(t / "o", saved_model=False), [], "holds no SavedModel"),
        (lambda t: fake_output(t / "o", name="a/b"), [], "is not a plain folder name"),
    ],
)
def test_bad_model_refused(tmp_path: Path, make: Any, args: list[str], message: str) -> None:
    model = make(tmp_path)
    result = run(model, "--serving-dir", tmp_path / "serve", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "serve").exists()


def test_bad_serving_dir_and_version_refused(tmp_path: Path) -> None:
    model = fake_output(tmp_path / "o")
    (tmp_path / "file").write_text("x")
    result = run(model, "--serving-dir", tmp_path / "file")
    assert result.exit_code == 1 and "is a regular file, not a folder" in result.stderr
    (tmp_path / "serve" / "m" / "07").mkdir(parents=True)  # TF Serving reads 07 as version 7
    result = run(model, "--serving-dir", tmp_path / "serve", "--version", "7", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and "version 7 already exists" in report["files"][0]["errors"][0]["message"]
    assert run(model, "--serving-dir", tmp_path / "serve", "--version", "0").exit_code == 2
    assert run(model, "--serving-dir", "").exit_code == 2
    for bad in ("", "..", "../up", ".hidden", "a/b"):  # a bad --name is a usage error, like a bad --version
        named = run(model, "--serving-dir", tmp_path / "serve", "--name", bad)
        assert named.exit_code == 2 and "is not a plain folder name" in named.output, named.output
    inside = run(model, "--serving-dir", model / "serve")
    assert inside.exit_code == 1 and "lies inside the model's folder" in inside.stderr
    assert not (model / "serve").exists()
    assert tree(tmp_path / "serve") == ["m", "m/07"]


def test_onnx_without_tf2onnx_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_formats, "onnx_available", lambda: False)
    result = run(fake_output(tmp_path / "o"), "--serving-dir", tmp_path / "serve", "--format", "onnx")
    assert result.exit_code == 1 and "pip install 'fusec[onnx]'" in result.stderr, result.output
    assert not (tmp_path / "serve").exists()


def test_next_version_ignores_names_that_are_not_numbers(tmp_path: Path) -> None:
    assert ex._next_version(tmp_path / "missing") == 1
    for name in ("3", "10", "v11", "12a", ".13", "notes"):
        (tmp_path / name).mkdir()
    assert ex._next_version(tmp_path) == 11


@pytest.mark.parametrize("renameat2", [True, False])
def test_a_version_taken_meanwhile_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renameat2: bool
) -> None:
    if not renameat2:  # the fallback where the system has no renameat2
        monkeypatch.setattr(ex.files, "renameat2", lambda a, b, flags: False)
    model_dir = tmp_path / "m"
    stage = model_dir / ".stage"
    stage.mkdir(parents=True)
    (stage / "saved_model.pb").write_text("new")
    (model_dir / "4").mkdir()
    (model_dir / "4" / "saved_model.pb").write_text("theirs")
    (model_dir / "5").mkdir()  # an empty folder: still never replaced
    assert not ex._rename_new(stage, model_dir / "4") and not ex._rename_new(stage, model_dir / "5")
    taken = iter([4, 5])  # another export takes each number as it is chosen; the third try wins
    monkeypatch.setattr(ex, "_next_version", lambda folder: next(taken, 6))
    assert ex._place(stage, model_dir, None) == 6
    assert (model_dir / "6" / "saved_model.pb").read_text() == "new"
    assert (model_dir / "4" / "saved_model.pb").read_text() == "theirs" and not os.listdir(model_dir / "5")
    stage.mkdir()
    monkeypatch.setattr(ex, "_refuse_taken", lambda folder, version: None)  # it appears after the last look
    (model_dir / "9").mkdir()
    with pytest.raises(ex.ExportError, match=r"version 9 of .* was taken by another export"):
        ex._place(stage, model_dir, 9)
    assert stage.is_dir() and not os.listdir(model_dir / "9")
