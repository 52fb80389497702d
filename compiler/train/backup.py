"""The training backup: what lets a rerun of the same command resume a run that died.

Like Keras's ``BackupAndRestore``, but for fusec's loop (which runs on
every strategy, multi-worker included): a ``tf.train.Checkpoint`` of the
model's weights, the optimizer's slots and step, the metrics' running
totals, the epoch and step reached and the early-stopping state, written
every ``backup_every`` steps and at the end of each epoch.

Layout of the backup folder (``<OUT>.fit-backup`` unless ``--backup-dir``):

    run.json            what the run is (spec and data hashes, batch size, seed, workers)
    chief/              the chief's checkpoints (the last two), which every worker restores
    history.json        the finished epochs' metrics (the chief's)
    best.weights.h5     the best epoch's weights, when early stopping keeps them
    worker-<rank>/      a non-chief worker's save, deleted as soon as it is written

Every worker takes part in each save (reading the metrics' totals is a
collective operation under MultiWorkerMirroredStrategy) and restores from
``chief/``, so with several machines the folder must be on storage they
share, as Keras's ``BackupAndRestore`` requires. The folder is removed
once the final outputs are in place.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FusecError, printable
from .cluster import Cluster

RUN_FILE = "run.json"
HISTORY = "history.json"
BEST = "best.weights.h5"


class BackupError(FusecError):
    """A backup exists but belongs to another run, or cannot be read."""


def backup_dir(out: Path) -> Path:
    """The default backup folder of output folder ``out``: beside it, on the same disk."""
    return out.parent / f"{out.name}.fit-backup"


@dataclass
class State:
    """Where the run is: epochs finished, steps done in the current one, early stopping."""

    epoch: int = 0
    step: int = 0
    best: float = float("inf")
    wait: int = 0


class Backup:
    """One run's backup folder: its fingerprint, checkpoints and finished epochs."""

    def __init__(self, folder: Path, cluster: Cluster, run: dict[str, Any]) -> None:
        self.folder = folder
        self.cluster = cluster
        self.run = run
        self._ckpt: Any = None
        self._manager: Any = None
        self._vars: dict[str, Any] = {}

    # The fingerprint -----------------------------------------------------------------

    def check_run(self, restart: bool) -> bool:
        """Whether a backup of this same run exists (then it is resumed).

        With ``restart`` an existing backup is discarded (by the chief).

        Raises:
            BackupError: the backup is of another run (another spec, data,
                batch size, seed or number of workers).
        """
        record = self.folder / RUN_FILE
        if restart and self.cluster.is_chief and self.folder.exists():
            shutil.rmtree(self.folder)
        if not record.is_file():
            return False
        try:
            previous = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise self._error(f"cannot be read: {exc}", "pass --restart to discard it") from None
        changed = [k for k in self.run if isinstance(previous, dict) and previous.get(k) != self.run[k]]
        if not isinstance(previous, dict) or changed:
            what = ", ".join(f"`{k}` was {previous.get(k)!r}, now {self.run[k]!r}" for k in changed[:4])
            raise self._error(
                f"is the backup of a different run ({what or 'not a fusec run record'})",
                "rerun with the same spec, data and options to resume it, or pass --restart to discard it",
            )
        return (self.folder / "chief" / "checkpoint").is_file()

    def _error(self, message: str, hint: str) -> BackupError:
        return BackupError.single((), f"backup folder `{printable(str(self.folder))}` {message}", hint, "backup")

    def start(self) -> None:
        """Create the folder and its run record (the chief), before the first step."""
        if self.cluster.is_chief:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_json(self.folder / RUN_FILE, self.run)

    # Checkpoints -----------------------------------------------------------------------

    def attach(self, model: Any) -> None:
        """Track the model, its optimizer and metrics, and the loop's state (inside the strategy's scope)."""
        import tensorflow as tf

        self._vars = {
            "epoch": tf.Variable(0, dtype=tf.int64, trainable=False),
            "step": tf.Variable(0, dtype=tf.int64, trainable=False),
            "best": tf.Variable(float("inf"), dtype=tf.float64, trainable=False),
            "wait": tf.Variable(0, dtype=tf.int64, trainable=False),
        }
        metrics = [v for metric in model.metrics for v in metric.variables]
        self._ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer, metrics=metrics, **self._vars)
        where = "chief" if self.cluster.is_chief else f"worker-{self.cluster.rank}"
        self._manager = tf.train.CheckpointManager(self._ckpt, str(self.folder / where), max_to_keep=2)

    def restore(self) -> State:
        """Load the chief's latest checkpoint into the model; the state it was saved at."""
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(str(self.folder / "chief"))
        if latest is None:
            return State()
        try:
            self._ckpt.read(latest).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as exc:
            raise self._error(
                f"holds a checkpoint that does not fit this model: {str(exc).splitlines()[0]}",
                "pass --restart to discard it",
            ) from None
        v = self._vars
        return State(int(v["epoch"].numpy()), int(v["step"].numpy()), float(v["best"].numpy()), int(v["wait"].numpy()))

    def save(self, state: State) -> None:
        """Checkpoint now; every worker calls it at the same step."""
        for key in ("epoch", "step", "best", "wait"):
            self._vars[key].assign(getattr(state, key))
        self._manager.save(checkpoint_number=state.epoch * 1_000_000_000 + state.step)
        if not self.cluster.is_chief:  # only the chief's copy is ever restored
            shutil.rmtree(self.folder / f"worker-{self.cluster.rank}", ignore_errors=True)

    # The chief's records ---------------------------------------------------------------

    def history(self, epochs: int) -> list[dict[str, float]]:
        """The finished epochs' metrics saved so far, the first ``epochs`` of them."""
        try:
            saved = json.loads((self.folder / HISTORY).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return saved[:epochs] if isinstance(saved, list) else []

    def save_history(self, history: list[dict[str, float]]) -> None:
        if self.cluster.is_chief:
            _write_json(self.folder / HISTORY, history)

    @property
    def best_weights(self) -> Path:
        return self.folder / BEST

    def remove(self) -> None:
        """Delete the folder once the outputs are in place (the chief; workers their own part)."""
        target = self.folder if self.cluster.is_chief else self.folder / f"worker-{self.cluster.rank}"
        shutil.rmtree(target, ignore_errors=True)


def _write_json(path: Path, payload: Any) -> None:
    """Write a small JSON file atomically (a kill mid-write leaves the old one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
