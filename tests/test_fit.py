"""``fusec fit``: the loop against Keras's ``fit``, outputs, resume after SIGKILL, two workers on localhost.

Subprocess runs (SIGKILL, TF_CONFIG clusters) cost a TensorFlow start each;
everything else runs in the test process, on tiny data.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SPECS
from helpers import spec, write

MULTITASK = SPECS / "multitask_shared.json"  # x[20] -> task1, task2, task3 (mse, mse, mae)


def _multitask_data(path: Path, n: int = 96, seed: int = 0, nan_at: int | None = None) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20)).astype("float32")
    if nan_at is not None:
        x[nan_at, 3] = np.nan
    np.savez(path, x=x, task1=2 * x[:, 1:2], task2=x[:, 2:3] - x[:, 5:6], task3=0.5 * x[:, 3:4])
    return path


def _cli(*args: str) -> Any:
    from fusec.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# One process ---------------------------------------------------------------------------------


def test_loop_equals_keras_fit(keras: Any, tmp_path: Path) -> None:
    """Same data, same batches, same seed: fusec's loop and ``model.fit`` give the same losses and weights."""
    import fusec
    from fusec.data import expected_fields, make_batches, open_data
    from fusec.keras.build import build_model
    from fusec.train.fit import FitOptions, fit_checked

    data = _multitask_data(tmp_path / "d.npz", n=80)
    checked = fusec.check_spec(MULTITASK)
    fitted = fit_checked(
        checked, FitOptions(data=str(data), output=tmp_path / "out", epochs=3, batch_size=16, validation_split=0.25)
    )
    train, val = open_data(str(data), expected_fields(checked)).split(0.25)
    model = build_model(checked, compile=True)
    reference = []
    for epoch in range(3):
        history = model.fit(
            make_batches(train, 16, shuffle=True, seed=11, epoch=epoch),
            validation_data=make_batches(val, 16, shuffle=False, seed=11, epoch=0),
            epochs=1,
            verbose=0,
            shuffle=False,  # the batches are shuffled already, as fusec shuffles them
        ).history
        reference.append({k: v[0] for k, v in history.items()})
    assert len(fitted.history) == 3
    for ours, theirs in zip(fitted.history, reference, strict=True):
        assert set(ours) - {"epoch"} == set(theirs)
        for name, value in theirs.items():
            assert ours[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    saved = fusec.load_model(tmp_path / "out")
    for mine, ref in zip(saved.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-6)


def test_outputs_record_the_run(keras: Any, tmp_path: Path) -> None:
    """compile's layout plus history.json, history.png and a training record with the data's hash."""
    data = _multitask_data(tmp_path / "d.npz")
    out = tmp_path / "out"
    serving = tmp_path / "serving"
    result = _cli(
        "fit",
        MULTITASK,
        "--data",
        data,
        "-o",
        out,
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--serving-dir",
        serving,
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["serving"] == str(serving.absolute() / "multitask_shared" / "1")
    assert (serving / "multitask_shared" / "1" / "saved_model.pb").is_file()
    assert report["ok"] and report["epochs"] == 2 and report["workers"] == 1 and report["strategy"] == "default"
    for name in ("saved_model/saved_model.pb", "multitask_shared.keras", "spec.json", "history.json", "history.png"):
        assert (out / name).is_file(), name
    assert (out / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert history["epochs"][1]["loss"] < history["epochs"][0]["loss"]
    assert {"loss", "task1_loss", "task1_mae"} <= set(history["metrics"])
    manifest = json.loads((out / "fusec.json").read_text())
    training = manifest["training"]
    assert training["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert training["data"]["examples"] == 96 and training["epochs"] == 2 and training["batch_size"] == 32
    assert training["final"] == history["epochs"][-1] == report["final"]
    assert not (tmp_path / "out.fit-backup").exists()  # removed once the outputs are in place


def test_spec_training_section_sets_defaults_and_the_command_line_wins(keras: Any, tmp_path: Path) -> None:
    doc = spec(training={"optimizer": "adam", "epochs": 3, "batch_size": 8, "validation_split": 0.25})
    path = write(tmp_path, doc)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 8)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=x[:, :1])
    result = _cli("fit", path, "--data", tmp_path / "d.npz", "-o", tmp_path / "a", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "a" / "fusec.json").read_text())["training"]
    assert (record["epochs"], record["batch_size"], record["validation"]["examples"]) == (3, 8, 10)
    assert "val_loss" in record["final"]
    result = _cli("fit", path, "--data", tmp_path / "d.npz", "-o", tmp_path / "b", "--epochs", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "b" / "fusec.json").read_text())["training"]["epochs"] == 1


def test_early_stopping_keeps_the_best_epoch(keras: Any, tmp_path: Path) -> None:
    """A learning rate that diverges: the run stops after PATIENCE epochs and keeps epoch 1's weights."""
    doc = spec(training={"optimizer": "sgd", "learning_rate": 0.2})
    path = write(tmp_path, doc)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 8)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=3 * x[:, :1])
    out = tmp_path / "out"
    args = ("fit", path, "--data", tmp_path / "d.npz", "-o", out, "--epochs", "8", "--batch-size", "8")
    result = _cli(*args, "--validation-split", "0.25", "--early-stopping", "2", "--json")
    assert result.exit_code == 0, result.output
    history = json.loads((out / "history.json").read_text())
    assert history["stopped_early"] is True and len(history["epochs"]) < 8
    best = history["best_epoch"]
    losses = [e["val_loss"] for e in history["epochs"]]
    finite = [v for v in losses if v is not None]
    assert losses[best - 1] == min(finite)
    assert json.loads((out / "fusec.json").read_text())["training"]["final"]["epoch"] == best


def test_early_stopping_without_validation_is_refused(tmp_path: Path) -> None:
    data = _multitask_data(tmp_path / "d.npz", n=8)
    result = _cli("fit", MULTITASK, "--data", data, "-o", tmp_path / "out", "--early-stopping", "2")
    assert result.exit_code == 1
    assert "validation" in result.output and "--validation-split" in result.output
    assert not (tmp_path / "out").exists()


def test_bad_data_later_leaves_a_finished_output_alone(keras: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = _multitask_data(tmp_path / "good.npz", n=32)
    assert _cli("fit", MULTITASK, "--data", good, "-o", out, "--epochs", "1").exit_code == 0
    before = _tree(out)
    bad = _multitask_data(tmp_path / "bad.npz", n=32, nan_at=7)
    result = _cli("fit", MULTITASK, "--data", bad, "-o", out, "--epochs", "1")
    assert result.exit_code == 1
    assert "bad.npz" in result.output and "x" in result.output and "7" in result.output
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "good.npz", "out"]


def test_a_backup_of_another_run_is_not_resumed(keras: Any, tmp_path: Path) -> None:
    data = _multitask_data(tmp_path / "d.npz", n=32)
    from fusec.train.backup import Backup
    from fusec.train.cluster import cluster_from_env

    backup = tmp_path / "out.fit-backup"
    made = Backup(backup, cluster_from_env(), {"spec_sha256": "0" * 64, "batch_size": 32})
    made.inspect()
    made.start()  # a backup fusec made, of another run
    result = _cli("fit", MULTITASK, "--data", data, "-o", tmp_path / "out", "--epochs", "1")
    assert result.exit_code == 1
    assert "different run" in result.output and "--restart" in result.output
    result = _cli("fit", MULTITASK, "--data", data, "-o", tmp_path / "out", "--epochs", "1", "--restart")
    assert result.exit_code == 0, result.output
    assert not backup.exists() and (tmp_path / "out" / "history.json").is_file()


def test_tensorboard_logs(keras: Any, tmp_path: Path) -> None:
    data = _multitask_data(tmp_path / "d.npz", n=32)
    board = tmp_path / "tb"
    args = ("fit", MULTITASK, "--data", data, "-o", tmp_path / "out", "--epochs", "2", "--validation-split", "0.25")
    assert _cli(*args, "--tensorboard", board).exit_code == 0
    for part in ("train", "validation"):
        assert any(p.name.startswith("events.out.tfevents") for p in (board / part).iterdir()), part


# Processes: SIGKILL and clusters -------------------------------------------------------------


def _fit_process(out: Path, data: Path, *extra: str, tf_config: dict[str, Any] | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    args = ["fit", str(MULTITASK), "--data", str(data), "-o", str(out), "--batch-size", "8", "--json", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "fusec", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 240) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return dict(json.loads(out))


def _wait_for_mid_epoch_backup(backup: Path, procs: list[subprocess.Popen[str]], timeout: float = 180) -> None:
    """Until the chief has a checkpoint taken inside an epoch (its number is epoch * 1e9 + step)."""
    index = backup / "chief" / "checkpoint"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = index.read_text() if index.is_file() else ""
        numbers = [int(n) for n in __import__("re").findall(r"ckpt-(\d+)", text)]
        if any(n % 1_000_000_000 for n in numbers):
            return
        assert all(p.poll() is None for p in procs), "a process ended before its first backup"
        time.sleep(0.05)
    raise AssertionError("no mid-epoch backup appeared")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _cluster(ports: list[int], index: int) -> dict[str, Any]:
    return {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}


def _reference(tmp_path: Path, data: Path, epochs: int) -> dict[str, float]:
    """The uninterrupted single-process run the others must reproduce."""
    from fusec.train.fit import fit_spec

    fitted = fit_spec(MULTITASK, str(data), output=tmp_path / "reference", epochs=epochs, batch_size=8)
    return fitted.history[-1]


def _same_metrics(got: dict[str, Any], want: dict[str, Any], rel: float) -> None:
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=rel, abs=1e-6), name


def test_resume_after_sigkill(keras: Any, tmp_path: Path) -> None:
    """SIGKILL mid-epoch, rerun the same command: it resumes from the backup and ends where an unbroken run ends."""
    data = _multitask_data(tmp_path / "d.npz", n=2400)
    out = tmp_path / "out"
    args = ("--epochs", "2", "--backup-every", "20")
    first = _fit_process(out, data, *args)
    _wait_for_mid_epoch_backup(tmp_path / "out.fit-backup", [first])
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not out.exists()
    report = _finish(_fit_process(out, data, *args))
    assert report["resumed_from"] is not None and report["resumed_from"] != [0, 0]
    _same_metrics(report["final"], _reference(tmp_path, data, 2), rel=1e-5)
    assert not (tmp_path / "out.fit-backup").exists()


def test_two_workers_on_localhost(keras: Any, tmp_path: Path) -> None:
    """MultiWorkerMirroredStrategy across two processes: one chief writes, both agree with one process."""
    data = _multitask_data(tmp_path / "d.npz", n=200)
    out = tmp_path / "out"
    ports = _free_ports(2)
    procs = [_fit_process(out, data, "--epochs", "2", tf_config=_cluster(ports, i)) for i in (0, 1)]
    chief, worker = (_finish(p) for p in procs)
    assert chief["strategy"] == "MultiWorkerMirroredStrategy" and chief["workers"] == 2
    assert chief["chief"] and not worker["chief"] and worker["output"] is None
    assert chief["final"] == worker["final"]
    assert json.loads((out / "fusec.json").read_text())["training"]["workers"] == 2
    _same_metrics(chief["final"], _reference(tmp_path, data, 2), rel=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "out", "reference"]


def test_two_workers_resume_after_one_is_killed(keras: Any, tmp_path: Path) -> None:
    """SIGKILL one worker mid-epoch; the job restarts (both processes): training resumes from the backup."""
    data = _multitask_data(tmp_path / "d.npz", n=2400)
    out = tmp_path / "out"
    ports = _free_ports(2)
    args = ("--epochs", "2", "--backup-every", "20")
    procs = [_fit_process(out, data, *args, tf_config=_cluster(ports, i)) for i in (0, 1)]
    _wait_for_mid_epoch_backup(tmp_path / "out.fit-backup", procs)
    procs[1].send_signal(signal.SIGKILL)
    try:  # the chief waits on its peer inside a collective: a job controller restarts the job
        procs[0].wait(timeout=10)
    except subprocess.TimeoutExpired:
        procs[0].send_signal(signal.SIGKILL)
    for p in procs:
        p.communicate()
    assert not out.exists()
    ports = _free_ports(2)
    chief, worker = (_finish(p) for p in [_fit_process(out, data, *args, tf_config=_cluster(ports, i)) for i in (0, 1)])
    assert chief["resumed_from"] is not None and chief["resumed_from"] == worker["resumed_from"]
    _same_metrics(chief["final"], _reference(tmp_path, data, 2), rel=1e-4)
    assert (out / "history.json").is_file() and not (tmp_path / "out.fit-backup").exists()


def test_a_diverged_run_writes_nothing(keras: Any, tmp_path: Path) -> None:
    path = write(tmp_path, spec(training={"optimizer": "sgd", "learning_rate": 0.5}))
    x = np.random.default_rng(2).normal(size=(64, 8)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=3 * x[:, :1])
    result = _cli(
        "fit", path, "--data", tmp_path / "d.npz", "-o", tmp_path / "out", "--epochs", "5", "--batch-size", "8"
    )
    assert result.exit_code == 1
    assert "training diverged" in result.output and "learning_rate" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "spec.json"]


_MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import fusec.train.fit as fit
# Two replicas in one process, as on a machine with two GPUs (make_strategy picks MirroredStrategy there).
fit.make_strategy = lambda cluster: (tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), "MirroredStrategy")
fitted = fit.fit_spec(sys.argv[1], sys.argv[2], output=sys.argv[3], epochs=2, batch_size=8)
print(json.dumps({"replicas": 2, "final": fitted.history[-1], "strategy": fitted.strategy}))
"""


def test_mirrored_strategy_over_two_replicas(keras: Any, tmp_path: Path) -> None:
    """Two replicas in one process (MirroredStrategy, as over two GPUs) train as one process does."""
    data = _multitask_data(tmp_path / "d.npz", n=120)
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED, str(MULTITASK), str(data), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["strategy"] == "MirroredStrategy"
    _same_metrics(report["final"], _reference(tmp_path, data, 2), rel=1e-4)
    assert (tmp_path / "out" / "saved_model" / "saved_model.pb").is_file()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_lines_elsewhere(keras: Any, tmp_path: Path) -> None:
    """Keras's bar where the stream is a terminal (written to that stream, not stdout); one line per epoch otherwise."""
    from fusec.train.fit import fit_spec

    data = _multitask_data(tmp_path / "d.npz", n=64)
    terminal, log = _Terminal(), io.StringIO()
    fit_spec(MULTITASK, data, output=tmp_path / "a", epochs=2, batch_size=16, stream=terminal)
    fit_spec(MULTITASK, data, output=tmp_path / "b", epochs=2, batch_size=16, stream=log)
    bar = terminal.getvalue()
    assert "Epoch 1/2" in bar and "Epoch 2/2" in bar and "4/4" in bar and "task1_mae" in bar
    lines = log.getvalue().splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("loss: " in line for line in lines)


@pytest.mark.parametrize("option", ["--tensorboard", "--backup-dir", "--serving-dir"])
def test_folders_inside_the_output_are_refused(tmp_path: Path, option: str) -> None:
    data = _multitask_data(tmp_path / "d.npz", n=8)
    out = tmp_path / "out"
    result = _cli("fit", MULTITASK, "--data", data, "-o", out, option, out / "inner")
    assert result.exit_code == 1
    assert option in result.output and "inside the output folder" in result.output
    assert not out.exists()
