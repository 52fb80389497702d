"""Nothing is lost: outputs are replaced only on success, and builds are deterministic.

A compile writes into a staging folder (``.fusec-stage-<pid>-*``, in the system
temp folder when it shares the output's filesystem) and swaps it into place in
one rename. These tests kill a compile with SIGKILL while it writes, make a
save fail half-way, and check that the earlier output is still there, byte for
byte and loadable, that no partial folder is left beside it, and that the next
compile removes what the killed one left in the temp folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fusec.cli import cli
from helpers import spec, write

STAGE = ".fusec-stage-"

#: a small model, and a different, slower-to-export one that replaces it
FIRST = spec(name="first")
SECOND = spec(
    name="second",
    inputs={"img": {"shape": [16, 16, 3]}},
    nodes={
        "c1": {"layer": "Conv2D", "config": {"filters": 8, "kernel_size": 3, "activation": "relu"}, "inputs": "img"},
        "c2": {"layer": "Conv2D", "config": {"filters": 8, "kernel_size": 3, "activation": "relu"}, "inputs": "c1"},
        "r": {"layer": "LSTM", "config": {"units": 8}, "inputs": "seq"},
        "seq": {"layer": "Reshape", "config": {"target_shape": [12, 96]}, "inputs": "c2"},
        "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "r"},
    },
)


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (folders as "dir")."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def stages(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{STAGE}*"))


@pytest.fixture
def systemp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private system temp folder on the output's filesystem (where staging happens)."""
    tmp = tmp_path / "systemp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def compile_in_process(spec_path: Path, out: Path) -> Any:
    result = CliRunner().invoke(cli, ["compile", str(spec_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return result


def assert_loadable(out: Path, keras: Any, name: str) -> None:
    manifest = json.loads((out / "fusec.json").read_text())
    assert manifest["name"] == name
    model = keras.models.load_model(out / f"{name}.keras", compile=False)
    assert sorted(t.name for t in model.inputs) == sorted(manifest["signature"]["inputs"])


def test_sigkill_midway_leaves_the_earlier_output(tmp_path: Path, systemp: Path, keras: Any) -> None:
    out = tmp_path / "models" / "net"
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)
    before = tree_digest(out)
    second = write(tmp_path, SECOND, "second.json")

    env = {**os.environ, "TMPDIR": str(systemp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    exe = Path(sys.executable).with_name("fusec")
    proc = subprocess.Popen(
        [str(exe), "compile", str(second), "-o", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        mine = f"{STAGE}{proc.pid}-"
        while time.monotonic() < deadline and proc.poll() is None:
            # midway: the staging folder exists and the SavedModel export has begun
            if any(s.name.startswith(mine) and any(s.iterdir()) for s in stages(systemp)):
                break
            time.sleep(0.002)
        assert proc.poll() is None, f"the compile ended before it could be killed: {proc.stderr.read()!r}"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    assert tree_digest(out) == before, "the earlier output changed"
    assert_loadable(out, keras, "first")
    assert stages(out.parent) == [], "a partial folder was left beside the output"
    assert sorted(p.name for p in out.parent.iterdir()) == ["net"]
    left = stages(systemp)
    assert [p.name.startswith(f"{STAGE}{proc.pid}-") for p in left] == [True], left

    # The next compile replaces the output and removes the dead process's staging folder.
    compile_in_process(second, out)
    assert stages(systemp) == []
    assert json.loads((out / "fusec.json").read_text())["name"] == "second"
    assert (out / "spec.json").read_bytes() == second.read_bytes()
    assert_loadable(out, keras, "second")


def test_failed_save_keeps_the_earlier_output(
    tmp_path: Path, systemp: Path, keras: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save that raises half-way (after the SavedModel is written) changes nothing."""
    import fusec.save

    out = tmp_path / "net"
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)
    before = tree_digest(out)
    second = write(tmp_path, SECOND, "second.json")

    def fail(*args: Any, **kwargs: Any) -> None:
        assert any(stages(systemp)), "the failure should come mid-way, after staging began"
        raise RuntimeError("simulated crash while saving")

    monkeypatch.setattr(fusec.save, "_swap_into_place", fail)
    result = CliRunner().invoke(cli, ["compile", str(second), "-o", str(out)])
    assert result.exit_code == 3  # an unexpected exception: reported as a bug, cleanly
    assert "Traceback" not in result.output and "simulated crash" in result.output
    assert tree_digest(out) == before
    assert stages(systemp) == [] and stages(out.parent) == []
    assert_loadable(out, keras, "first")


def test_disk_full_is_a_clean_error(tmp_path: Path, systemp: Path, keras: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError while writing (disk full) is exit 1 with the reason, the earlier output intact."""
    import fusec.save

    out = tmp_path / "net"
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)
    before = tree_digest(out)

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fusec.save, "_swap_into_place", full)
    result = CliRunner().invoke(cli, ["compile", str(write(tmp_path, SECOND, "second.json")), "-o", str(out)])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: output `{out}`: cannot be written: No space left on device")
    assert tree_digest(out) == before
    assert stages(systemp) == []


def test_new_parent_folders_are_removed_on_failure(
    tmp_path: Path, systemp: Path, keras: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fusec.save

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(fusec.save, "_swap_into_place", full)
    out = tmp_path / "a" / "b" / "net"
    result = CliRunner().invoke(cli, ["compile", str(write(tmp_path, FIRST, "first.json")), "-o", str(out)])
    assert result.exit_code == 1
    assert not (tmp_path / "a").exists()


def test_stale_stages_of_dead_processes_only_are_removed(tmp_path: Path, systemp: Path, keras: Any) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (systemp / f"{STAGE}{dead.pid}-abc" / "saved_model").mkdir(parents=True)
        (systemp / f"{STAGE}{alive.pid}-def").mkdir()
        (systemp / f"{STAGE}notapid-x").mkdir()
        compile_in_process(write(tmp_path, FIRST, "first.json"), tmp_path / "net")
        assert sorted(p.name for p in stages(systemp)) == [f"{STAGE}{alive.pid}-def", f"{STAGE}notapid-x"]
    finally:
        alive.kill()
        alive.wait()


def test_replaces_its_own_output_only(tmp_path: Path, systemp: Path, keras: Any) -> None:
    out = tmp_path / "net"
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)
    compile_in_process(write(tmp_path, FIRST, "first.json"), out)  # its own: replaced
    (out / "fusec.json").write_text("{}")  # no longer a fusec manifest
    result = CliRunner().invoke(cli, ["compile", str(tmp_path / "first.json"), "-o", str(out)])
    assert result.exit_code == 1
    assert "did not write" in result.output


# --- determinism --------------------------------------------------------------------


def test_same_spec_same_weights_and_signature(tmp_path: Path, systemp: Path, keras: Any) -> None:
    """Two compiles of one spec: identical initial weights, manifest and signature."""
    import numpy as np

    src = write(tmp_path, SECOND, "second.json")
    outs = [tmp_path / "one", tmp_path / "two"]
    for out in outs:
        compile_in_process(src, out)
    manifests = [json.loads((out / "fusec.json").read_text()) for out in outs]
    assert manifests[0] == manifests[1]
    assert manifests[0]["signature"]["inputs"] == {"img": {"shape": [None, 16, 16, 3], "dtype": "float32"}}
    weights = [keras.models.load_model(out / "second.keras", compile=False).get_weights() for out in outs]
    assert len(weights[0]) == len(weights[1]) > 0
    for a, b in zip(*weights, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert (outs[0] / "spec.json").read_bytes() == (outs[1] / "spec.json").read_bytes()


def test_render_twice_gives_identical_bytes(tmp_path: Path) -> None:
    from conftest import SPECS

    for path in sorted(SPECS.glob("*.json")):
        runs = [CliRunner().invoke(cli, ["render", str(path), "--format", "dot", "-o", "-"]) for _ in range(2)]
        assert all(r.exit_code == 0 for r in runs), runs[0].output
        assert runs[0].stdout_bytes == runs[1].stdout_bytes and runs[0].stdout_bytes.startswith(b"digraph")
