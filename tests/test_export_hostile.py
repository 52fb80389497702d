"""Hostile inputs to ``fusec export`` and ``TF_CONFIG``: versions past int64, tampered outputs, bad addresses.

Most tests build an output folder by hand, signed with fusec's own
``write_owner``, and stop at a refusal made before TensorFlow is imported.
The slow ones run the real ``fusec`` in a child process on a tiny spec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fusec.cli import cli
from fusec.keras.save.owner import OWNER, write_owner
from fusec.train import export as ex
from fusec.train import export_formats as xf
from fusec.train.cluster import ClusterError, cluster_from_env

TINY = {
    "fusec": 1,
    "name": "tiny",
    "seed": 1,
    "inputs": {"x": {"shape": [4]}},
    "nodes": {"h": {"layer": "Dense", "config": {"units": 3, "activation": "softmax"}, "inputs": "x"}},
    "outputs": {"y": {"from": "h", "loss": "sparse_categorical_crossentropy"}},
    "training": {"epochs": 1, "batch_size": 4},
}


def export(*argv: str | Path) -> Any:
    """``fusec export ARGV...`` in this process."""
    return CliRunner().invoke(cli, ["export", *map(str, argv)])


def signed_output(folder: Path) -> Path:
    """A folder shaped like a compile output, with a record listing its files as fusec writes one."""
    (folder / "saved_model" / "variables").mkdir(parents=True)
    (folder / "fusec.json").write_text(json.dumps({"name": "m"}))
    (folder / "spec.json").write_text(json.dumps(TINY))
    (folder / "m.keras").write_bytes(b"PK" + bytes(200))
    (folder / "saved_model" / "saved_model.pb").write_bytes(b"pb" * 50)
    (folder / "saved_model" / "variables" / "variables.index").write_bytes(b"ix")
    write_owner(folder, None)
    return folder


# --- 13: version numbers stay within what TF Serving reads (int64) ----------------------------


def test_versions_past_int64_are_not_versions(tmp_path: Path) -> None:
    for name in ("3", "99999999999999999999999", str(ex.MAX_VERSION + 1), "0" * 30 + "5"):
        (tmp_path / name).mkdir()
    assert ex._next_version(tmp_path) == 6  # 000...05 is 5; the two past int64 are left out


def test_no_version_left_past_the_largest(tmp_path: Path) -> None:
    model = signed_output(tmp_path / "o")
    (tmp_path / "serve" / "m" / str(ex.MAX_VERSION)).mkdir(parents=True)
    result = export(model, "--serving-dir", tmp_path / "serve")
    assert result.exit_code == 1, result.output
    assert f"would be {ex.MAX_VERSION + 1}, past {ex.MAX_VERSION}" in result.stderr
    assert "give a free --version below it" in result.stderr
    assert sorted(os.listdir(tmp_path / "serve" / "m")) == [str(ex.MAX_VERSION)]


# --- 14: an output is exported only as fusec wrote it ------------------------------------------


def test_an_untouched_output_passes(tmp_path: Path) -> None:
    listing = xf.check_output(signed_output(tmp_path / "o"))
    assert listing["spec.json"][0] == "f" and listing["saved_model"] == ("d", 0, "")


def _replace(path: Path, data: bytes) -> None:
    path.write_bytes(data)


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (lambda o: _replace(o / "spec.json", b'{"fusec": 1, "name": "other"}'), "spec.json` changed"),
        (lambda o: _replace(o / "m.keras", b"PK"), "m.keras` changed"),
        (lambda o: _replace(o / "saved_model" / "saved_model.pb", b"pb" * 50 + b"x"), "saved_model.pb` changed"),
        (lambda o: (o / "spec.json").unlink(), "spec.json` is missing"),
        (lambda o: _replace(o / "saved_model" / "variables" / "extra", b"x"), "extra` is not a file fusec wrote"),
        (lambda o: (o / OWNER).unlink(), f"has no `{OWNER}`"),
        (lambda o: _replace(o / OWNER, b"[" * 100_000), "is not a fusec ownership record"),
        (lambda o: _replace(o / OWNER, b'{"entries": [["../x", "d"]]}'), "is not a fusec ownership record"),
        (lambda o: _replace(o / OWNER, b"\xff\xfe"), "is not a fusec ownership record"),
    ],
)
def test_a_tampered_output_is_refused(tmp_path: Path, tamper: Any, named: str) -> None:
    model = signed_output(tmp_path / "o")
    tamper(model)
    result = export(model, "--serving-dir", tmp_path / "serve")
    assert result.exit_code == 1, result.output
    assert named in result.stderr and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "serve").exists()


def test_a_record_that_is_a_link_or_fifo_is_refused(tmp_path: Path) -> None:
    model = signed_output(tmp_path / "o")
    (model / OWNER).rename(tmp_path / "record")
    (model / OWNER).symlink_to(tmp_path / "record")
    with pytest.raises(xf.ExportError, match="cannot be read"):
        xf.check_output(model)
    (model / OWNER).unlink()
    os.mkfifo(model / OWNER)
    with pytest.raises(xf.ExportError, match="is not a fusec ownership record"):
        xf.check_output(model)


def test_a_copy_that_changed_is_refused(tmp_path: Path) -> None:
    model = signed_output(tmp_path / "o")
    listing = xf.check_output(model)
    stage = tmp_path / "stage"
    xf.write_savedmodel(model / "saved_model", stage)
    xf.check_copy(stage, listing, model / "saved_model")
    (stage / "variables" / "variables.index").write_bytes(b"IX")
    with pytest.raises(xf.ExportError, match="changed while it was exported"):
        xf.check_copy(stage, listing, model / "saved_model")


# --- 17: TF_CONFIG addresses and rpc_layer are checked before TensorFlow sees them ---------------


def _config(workers: list[str], **extra: Any) -> dict[str, str]:
    doc = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}, **extra}
    return {"TF_CONFIG": json.dumps(doc)}


@pytest.mark.parametrize(
    ("workers", "extra", "message"),
    [
        (["noport"], {}, "`cluster.worker[0]`, `noport`, is not a host:port"),
        (["h:2222", "h:"], {}, "`cluster.worker[1]`"),
        (["h:0"], {}, "port 1 to 65535"),
        (["h:65536"], {}, "port 1 to 65535"),
        (["h:99999999999"], {}, "port 1 to 65535"),
        (["h:1:2"], {}, "is not a host:port"),
        (["h :22"], {}, "is not a host:port"),
        (["::1:2222"], {}, "is not a host:port"),
        (["h:22"], {"rpc_layer": "bogus"}, "`rpc_layer` is `bogus`"),
        (["h:22"], {"rpc_layer": ""}, "`rpc_layer` is ``"),
        (["h:22"], {"rpc_layer": ["grpc"]}, "TensorFlow has no server for"),
    ],
)
def test_bad_addresses_and_rpc_layers_refused(workers: list[str], extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ClusterError) as caught:
        cluster_from_env(_config(workers, **extra))
    assert message in str(caught.value.problems[0].message)


@pytest.mark.parametrize("address", ["10.0.0.1:2222", "worker-0.svc.cluster.local:2222", "[::1]:2222", "h:65535"])
def test_good_addresses_accepted(address: str) -> None:
    found = cluster_from_env(_config([address], rpc_layer="grpc"))
    assert found.multiworker and found.workers == 1


@pytest.mark.slow
def test_bad_tf_config_is_exit_1_without_tensorflow_logs(tmp_path: Path) -> None:
    spec, data = tmp_path / "tiny.json", tmp_path / "d.csv"
    spec.write_text(json.dumps(TINY))
    data.write_text("x,y\n" + "".join(f"{i} 0 1 2,{i % 3}\n" for i in range(8)))
    fusec = Path(sys.executable).with_name("fusec")
    for bad in (_config(["noport"]), _config(["h:22"], rpc_layer="bogus")):
        env = {**os.environ, **bad}
        done = subprocess.run(
            [str(fusec), "fit", str(spec), "--data", str(data), "-o", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=300,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("$TF_CONFIG: error: ") and "E0000" not in done.stderr, done.stderr
        assert not (tmp_path / "out").exists()
