"""The training loop: Keras's own train and test steps, run by tf.distribute, driven by fusec.

Why not ``model.fit``: under ``MultiWorkerMirroredStrategy`` Keras 3's
``fit`` fails before the first step (keras-team/keras#20585). The cause is
in ``fit``'s driver, not in its step: ``_maybe_symbolic_build`` reduces a
per-replica batch eagerly, and the logs each step returns are reduced with
a rule that fails on scalars. The step itself (``model.train_step``:
forward pass, the compiled losses scaled for the number of replicas,
gradients, ``apply_gradients``, the compiled metrics) is written for
``strategy.run``. So this loop builds what ``_maybe_symbolic_build``
would (the compiled losses, metrics and optimizer, through public calls,
eagerly inside the scope), runs ``strategy.run(model.train_step)`` in a
``tf.function`` per step, and reads the metrics where tf.distribute
aggregates them: in cross-replica context, across every replica and
worker. One loop for every strategy; on one process it gives the same
losses and weights as ``model.fit`` (tests/test_fit.py compares them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .backup import Backup, State
from .cluster import Cluster
from .history import Epoch, clean
from .progress import Progress


@dataclass(frozen=True)
class Plan:
    """How long and how the run trains.

    Attributes:
        epochs: the most epochs to train.
        steps: training steps per epoch (batches of the training data).
        backup_every: checkpoint every this many steps too (None: at epoch ends only).
        patience: early stopping on the validation loss (None: off).
        val_steps: validation steps (batches of the validation data) after each epoch.
    """

    epochs: int
    steps: int
    backup_every: int | None = None
    patience: int | None = None
    val_steps: int = 0


def prepare(model: Any, strategy: Any, sample: tuple[Any, Any]) -> None:
    """Build the compiled losses, metrics and optimizer: eagerly, in the scope, on one local batch.

    ``model.fit`` does this in ``_maybe_symbolic_build``; doing it here,
    with public calls, creates their variables where tf.distribute wants
    them (cross-replica context), never inside a traced step.
    """
    x, y = sample
    with strategy.scope():
        y_pred = model(x, training=False)
        model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
        model.compute_metrics(x, y, y_pred, sample_weight=None)
        model.optimizer.build(model.trainable_variables)
        model.reset_metrics()


def step_functions(model: Any, strategy: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The train and test steps: ``strategy.run`` of Keras's steps on an iterator's next batch, each a ``tf.function``.

    Compiled with XLA where ``model.fit`` would be (``model.jit_compile``:
    Keras turns it on with a GPU, off on CPU only).
    """
    import tensorflow as tf

    jit = bool(getattr(model, "jit_compile", False))

    # The iterator goes into the function, as ``fit`` passes it: the batch then has the dataset's
    # shapes (batch axis unknown), so Keras's per-output loss means are weighted as ``fit`` weights them.
    def train(iterator: Any) -> None:
        strategy.run(model.train_step, args=(next(iterator),))

    def test(iterator: Any) -> None:
        strategy.run(model.test_step, args=(next(iterator),))

    # No AutoGraph, as ``fit`` runs its step (``do_not_convert``): Keras's steps are plain graph code.
    return (
        tf.function(train, reduce_retracing=True, jit_compile=jit, autograph=False),
        tf.function(test, reduce_retracing=True, jit_compile=jit, autograph=False),
    )


def read_metrics(model: Any) -> dict[str, float]:
    """The metrics' running values over every replica and worker (a collective across workers)."""
    return {name: float(value) for name, value in model.get_metrics_result().items()}


class Loop:
    """One run: epochs of training steps, validation, backups, early stopping, the display.

    Args:
        model: the compiled Keras model, built in the strategy's scope and ``prepare``d.
        strategy: the tf.distribute strategy.
        cluster: this process's place in the cluster.
        train_data: ``epoch, steps to skip -> tf.data.Dataset`` of global batches.
        val_data: the validation batches, or None.
        plan: epochs, steps, backup and early-stopping settings.
        backup: the run's backup (attached to the model).
        progress: the display.
        on_epoch: called with each finished epoch's record (the chief writes logs, TensorBoard).
    """

    def __init__(
        self,
        model: Any,
        strategy: Any,
        cluster: Cluster,
        train_data: Callable[[int, int], Any],
        val_data: Callable[[], Any] | None,
        plan: Plan,
        backup: Backup,
        progress: Progress,
        on_epoch: Callable[[list[Epoch]], None] = lambda history: None,
    ) -> None:
        self.model, self.strategy, self.cluster = model, strategy, cluster
        self.train_data, self.val_data, self.plan = train_data, val_data, plan
        self.backup, self.progress, self.on_epoch = backup, progress, on_epoch
        self.train_step, self.test_step = step_functions(model, strategy)
        self.stopped_early = False
        self.diverged: int | None = None

    def _distribute(self, dataset: Any) -> Any:
        import tensorflow as tf

        options = tf.data.Options()
        # Every worker reads the same (seeded) batches and keeps its share of each: no file sharding to get wrong.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def run(self, state: State, history: list[Epoch]) -> list[Epoch]:
        """Train from ``state`` (a fresh run or a restored backup) to the last epoch or an early stop."""
        for epoch in range(state.epoch, self.plan.epochs):
            if state.step == 0:
                self.model.reset_metrics()  # a resumed epoch keeps the totals its checkpoint restored
            logs = self._train_epoch(epoch, state)
            logs.update(self._validate())
            record: Epoch = {"epoch": epoch + 1, **clean(logs)}  # type: ignore[dict-item]
            history = [*history, record]
            stop = self._early_stop(state, logs)
            state.epoch, state.step = epoch + 1, 0
            self.backup.save_history(history)  # before the checkpoint: a restore never lacks its epochs
            self.backup.save(state)
            self.progress.epoch_end(epoch, clean(logs))
            self.on_epoch(history)
            if not math.isfinite(logs.get("loss", 0.0)):
                self.diverged = epoch + 1  # as Keras's TerminateOnNaN: nothing more can be learnt
                self.progress.note(f"stopping: the loss is {logs['loss']} after epoch {epoch + 1} (training diverged)")
                break
            if stop:
                self.stopped_early = True
                self.progress.note(f"early stopping: no lower val_loss for {self.plan.patience} epochs")
                break
        return history

    def _train_epoch(self, epoch: int, state: State) -> dict[str, float]:
        self.progress.epoch_start(epoch, state.step)
        live = self.progress.wants_metrics(self.cluster.multiworker)
        iterator = iter(self._distribute(self.train_data(epoch, state.step)))
        every = self.plan.backup_every
        for done in range(state.step + 1, self.plan.steps + 1):
            self.train_step(iterator)
            self.progress.step(done, (lambda: read_metrics(self.model)) if live else None)
            if every and done % every == 0 and done < self.plan.steps:
                state.step = done
                self.backup.save(state)
        return read_metrics(self.model)

    def _validate(self) -> dict[str, float]:
        if self.val_data is None:
            return {}
        self.model.reset_metrics()
        iterator = iter(self._distribute(self.val_data()))
        for _ in range(self.plan.val_steps):
            self.test_step(iterator)
        return {f"val_{name}": value for name, value in read_metrics(self.model).items()}

    def _early_stop(self, state: State, logs: dict[str, float]) -> bool:
        """Track the best validation loss; keep its weights (the chief); stop after ``patience`` epochs without one."""
        if self.plan.patience is None or "val_loss" not in logs:
            return False
        if logs["val_loss"] < state.best:
            state.best, state.wait = logs["val_loss"], 0
            if self.cluster.is_chief:
                self.model.save_weights(str(self.backup.best_weights))
            return False
        state.wait += 1
        return state.wait >= self.plan.patience
