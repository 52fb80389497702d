"""Which tf.distribute strategy trains the model, and this process's place in the cluster.

The convention is TensorFlow's own: ``TF_CONFIG`` (set by Kubernetes
TFJob, Vertex AI and SageMaker, or by hand) names the cluster's tasks and
this process's task. Without it, one process trains: on every GPU of the
machine with ``MirroredStrategy`` when there are several, else on the
default strategy. With it, ``MultiWorkerMirroredStrategy`` trains across
the ``chief`` and ``worker`` tasks; the chief (the ``chief`` task, or
worker 0 when there is none) writes the outputs.

``TF_CONFIG`` is data: it is parsed as JSON and checked, and a malformed
one is an error naming the variable and what to fix.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import FusecError, printable

ENV = "TF_CONFIG"
#: Task types MultiWorkerMirroredStrategy trains with.
TRAINING_TASKS = ("chief", "worker")
#: The RPC layers TensorFlow's builds register a server for (``rpc_layer``; unset means grpc).
RPC_LAYERS = ("grpc",)
#: ``host:port`` or ``[ipv6]:port``: what TensorFlow's gRPC server parses its own address as.
_ADDRESS = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")


class ClusterError(FusecError):
    """``TF_CONFIG`` does not describe a cluster fusec can train on."""


@dataclass(frozen=True)
class Cluster:
    """This process's place in the training cluster.

    Attributes:
        kind: ``single`` (no TF_CONFIG) or ``multiworker``.
        task: this process's task type (``chief`` or ``worker``; ``worker`` when single).
        index: its index among the tasks of that type.
        workers: how many processes train together (1 when single).
        rank: this process's position among all of them (chief first).
    """

    kind: str = "single"
    task: str = "worker"
    index: int = 0
    workers: int = 1
    rank: int = 0

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the outputs."""
        return self.rank == 0

    @property
    def multiworker(self) -> bool:
        return self.kind == "multiworker"


def _fail(message: str, hint: str) -> ClusterError:
    return ClusterError.single((), message, hint, "cluster", file=f"${ENV}")


def cluster_from_env(environ: dict[str, str] | None = None) -> Cluster:
    """The cluster ``TF_CONFIG`` names, or a single process when it is unset or empty.

    Raises:
        ClusterError: TF_CONFIG is not JSON, or lacks the cluster or this
            task, names a task type fusec does not train with, an address
            that is not ``host:port`` or an ``rpc_layer`` other than grpc
            (checked here, before TensorFlow would fail on them).
    """
    text = (environ if environ is not None else dict(os.environ)).get(ENV, "").strip()
    if not text:
        return Cluster()
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise _fail(
            f"is not JSON: {exc}", 'set it to {"cluster": {...}, "task": {"type": ..., "index": ...}}'
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise _fail(
            "has no `cluster` object", 'give the tasks, e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}}'
        )
    tasks = _tasks(config["cluster"])
    _check_rpc_layer(config.get("rpc_layer"))
    task = config.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("type"), str) or type(task.get("index", 0)) is not int:
        raise _fail("has no valid `task`", 'name this process, e.g. "task": {"type": "worker", "index": 0}')
    kind, index = task["type"], task.get("index", 0)
    if kind not in TRAINING_TASKS:
        raise _fail(
            f"names task type `{printable(kind)}`, which fusec does not train with",
            "fusec trains with MultiWorkerMirroredStrategy: use `chief` and `worker` tasks "
            "(no parameter servers or evaluators)",
        )
    order = [(t, i) for t in TRAINING_TASKS for i in range(len(tasks.get(t, [])))]
    if (kind, index) not in order:
        raise _fail(
            f"names task {kind} {index}, but the cluster has {len(tasks.get(kind, []))} `{kind}` task(s)",
            "give each process its own index, from 0",
        )
    return Cluster("multiworker", kind, index, len(order), order.index((kind, index)))


def _tasks(cluster: dict[str, Any]) -> dict[str, list[str]]:
    """The cluster's task lists, checked: addresses are strings, only chief/worker tasks, one chief at most."""
    for kind, addresses in cluster.items():
        if kind not in TRAINING_TASKS:
            raise _fail(
                f"`cluster` has `{printable(kind)}` tasks, which fusec does not train with",
                "list only `chief` and `worker` tasks (MultiWorkerMirroredStrategy)",
            )
        if not isinstance(addresses, list) or not all(isinstance(a, str) and a for a in addresses):
            raise _fail(f"`cluster.{kind}` is not a list of host:port strings", 'e.g. "worker": ["host1:2222"]')
        for index, address in enumerate(addresses):
            _check_address(kind, index, address)
    if len(cluster.get("chief", [])) > 1:
        raise _fail("`cluster.chief` lists more than one chief", "list one chief, or none (worker 0 is then the chief)")
    if not any(cluster.get(kind) for kind in TRAINING_TASKS):
        raise _fail("`cluster` lists no tasks", 'e.g. "cluster": {"worker": ["host1:2222", "host2:2222"]}')
    return {kind: list(cluster.get(kind, [])) for kind in TRAINING_TASKS}


def _check_address(kind: str, index: int, address: str) -> None:
    """Refuse a task address TensorFlow's gRPC server cannot parse: ``host:port``, port 1 to 65535.

    Raises:
        ClusterError: naming the task and the address.
    """
    match = _ADDRESS.fullmatch(address)
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise _fail(
            f"`cluster.{kind}[{index}]`, `{printable(address)}`, is not a host:port address with a port 1 to 65535",
            'give each task as "host:port", e.g. "10.0.0.1:2222" or "[::1]:2222"',
        )


def _check_rpc_layer(layer: Any) -> None:
    """Refuse an ``rpc_layer`` TensorFlow has no server for (only gRPC is built in).

    Raises:
        ClusterError: naming the value.
    """
    if layer is None or layer in RPC_LAYERS:
        return
    shown = printable(layer) if isinstance(layer, str) else printable(json.dumps(layer))
    raise _fail(
        f"`rpc_layer` is `{shown}`, which TensorFlow has no server for",
        f'set "rpc_layer": "grpc", or leave it out (TensorFlow\'s servers: {", ".join(RPC_LAYERS)})',
    )


def make_strategy(cluster: Cluster) -> tuple[Any, str]:
    """The strategy for this cluster, and its name for reports.

    Must run before TensorFlow runs any operation: a multi-worker strategy
    configures the collective ops of the eager context.
    """
    import tensorflow as tf

    if cluster.multiworker:
        return tf.distribute.MultiWorkerMirroredStrategy(), "MultiWorkerMirroredStrategy"
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy(), "MirroredStrategy"
    return tf.distribute.get_strategy(), "default"
