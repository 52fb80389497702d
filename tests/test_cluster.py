"""TF_CONFIG, read as data: the cluster fusec trains on, and clear errors for what it cannot train on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fusec.train.cluster import Cluster, ClusterError, cluster_from_env


def _env(config: object) -> dict[str, str]:
    return {"TF_CONFIG": config if isinstance(config, str) else json.dumps(config)}


def test_no_tf_config_is_one_process() -> None:
    for env in ({}, {"TF_CONFIG": ""}, {"TF_CONFIG": "  "}):
        assert cluster_from_env(env) == Cluster()
    assert Cluster().is_chief and not Cluster().multiworker


@pytest.mark.parametrize(
    ("cluster", "task", "rank", "workers"),
    [
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, 0, 2),
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, 1, 2),
        ({"chief": ["c:1"], "worker": ["a:1", "b:1"]}, {"type": "chief", "index": 0}, 0, 3),
        ({"chief": ["c:1"], "worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, 1, 3),
        ({"worker": ["a:1"]}, {"type": "worker"}, 0, 1),
    ],
)
def test_clusters(cluster: dict[str, list[str]], task: dict[str, object], rank: int, workers: int) -> None:
    found = cluster_from_env(_env({"cluster": cluster, "task": task}))
    assert found.multiworker and (found.rank, found.workers) == (rank, workers)
    assert found.is_chief == (rank == 0)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "no `cluster`"),
        ({"cluster": {"worker": ["a:1"]}}, "no valid `task`"),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}, "no valid `task`"),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}, "has 1 `worker` task"),
        ({"cluster": {"worker": ["a:1"], "ps": ["p:1"]}, "task": {"type": "worker"}}, "`ps` tasks"),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator"}}, "does not train with"),
        ({"cluster": {"worker": "a:1"}, "task": {"type": "worker"}}, "not a list of host:port"),
        ({"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief"}}, "more than one chief"),
        ({"cluster": {}, "task": {"type": "worker"}}, "lists no tasks"),
    ],
)
def test_bad_tf_config_is_a_clear_error(config: object, words: str) -> None:
    with pytest.raises(ClusterError) as caught:
        cluster_from_env(_env(config))
    text = str(caught.value)
    assert text.startswith("$TF_CONFIG") and words in text
    assert caught.value.exit_code == 1


def test_fit_refuses_a_bad_tf_config_before_tensorflow(no_tf: Path, tmp_path: Path) -> None:
    """The cluster is read before TensorFlow is imported, and before any output is written."""
    env = {**os.environ, "PYTHONPATH": str(no_tf), "TF_CONFIG": '{"cluster": {"ps": ["h:1"]}, "task": {}}'}
    out = tmp_path / "out"
    spec = Path(__file__).parent.parent / "specs" / "multitask_shared.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fusec", "fit", str(spec), "--data", str(tmp_path / "d.npz"), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "$TF_CONFIG" in proc.stderr and "`ps` tasks" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
