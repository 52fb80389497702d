"""``fusec fit``: a checked spec trained on data, on one process or a cluster, written as ``compile`` writes.

The order keeps every refusal before any work that could be lost: the
options and ``TF_CONFIG``; every folder the run writes, before TensorFlow
is imported (``outputs.check_outputs``: ``-o``, the backup folder,
``--tensorboard`` and ``--serving-dir`` apart and holding nothing the run
reads; the output folder refused if fusec may not replace it; the backup
folder refused unless it is new, empty or fusec's own, by its signed
token); the data (read and checked against the spec in full); the backup
(resumed when it is this same run's); and only then the model and the loop.
The chief writes the outputs, atomically, and removes the backup once
they are in place.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import FusecError
from ..files import installed
from ..static.check import Checked
from .backup import Backup, BackupError, State, backup_dir
from .cluster import Cluster, cluster_from_env, make_strategy
from .history import Epoch, best_epoch, describe_source, history_json, kept_metrics, plot_png
from .loop import Loop, Plan, prepare
from .outputs import BACKUP, OUTPUT, SERVING, TENSORBOARD, check_outputs
from .progress import Progress

DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32
#: The largest epoch count, batch size, patience or step interval taken (the command line has the same bound).
MAX_COUNT = 2**31 - 1
_COUNTS = ("epochs", "batch_size", "early_stopping", "backup_every")


class FitError(FusecError):
    """The fit's options do not fit together (e.g. early stopping without validation data)."""


@dataclass(frozen=True)
class FitOptions:
    """What the command line (or the caller) asked for; None falls back to the spec's ``training``."""

    data: str
    output: Path | None = None
    validation: str | None = None
    validation_split: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    early_stopping: int | None = None
    backup_every: int | None = None
    backup: Path | None = None
    restart: bool = False
    tensorboard: Path | None = None
    serving_dir: Path | None = None
    stream: IO[str] | None = None


@dataclass
class Fitted:
    """What a fit did and where it put things."""

    output: Path | None
    history: list[Epoch]
    epochs: int
    resumed_from: tuple[int, int] | None
    stopped_early: bool
    cluster: Cluster
    strategy: str
    artifacts: Any = None
    exported: Any = None
    notes: list[str] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)


def _settings(checked: Checked, opts: FitOptions) -> dict[str, Any]:
    """Each setting from the command line, else the spec's ``training``, else the default."""
    spec = checked.doc.get("training", {})
    _check_numbers(opts)

    def pick(name: str, default: Any) -> Any:
        given = getattr(opts, name)
        return given if given is not None else spec.get(name, default)

    found = {
        "epochs": pick("epochs", DEFAULT_EPOCHS),
        "batch_size": pick("batch_size", DEFAULT_BATCH),
        "validation_split": None if opts.validation else pick("validation_split", None),
        "early_stopping": pick("early_stopping", None),
        "seed": int(checked.doc.get("seed", 0)),  # one shuffle order on every worker, seed or not
    }
    if opts.tensorboard is not None and not installed("tensorboard"):
        raise FitError.single(
            (),
            "--tensorboard writes TensorBoard's event files, which needs the `tensorboard` package",
            "pip install tensorboard (fusec[cpu] includes it), or leave out --tensorboard",
            "fit",
        )
    if found["early_stopping"] is not None and not (opts.validation or found["validation_split"]):
        raise FitError.single(
            ("training", "early_stopping") if opts.early_stopping is None else (),
            "early stopping watches the validation loss, but the run has no validation data",
            "pass --validation FILE or --validation-split F (or set training.validation_split)",
            "fit",
            file=str(checked.spec.path) if opts.early_stopping is None else None,
        )
    return found


def _check_numbers(opts: FitOptions) -> None:
    """The counts given are whole numbers from 1 to ``MAX_COUNT``; a validation split lies strictly between 0 and 1."""
    for name in _COUNTS:
        value = getattr(opts, name)
        if value is not None and not (
            isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_COUNT
        ):
            raise FitError.single((), f"{name} must be a whole number from 1 to {MAX_COUNT}, not {value!r}", "", "fit")
    split = opts.validation_split
    if split is not None and not (isinstance(split, (int, float)) and 0 < split < 1):  # NaN fails both
        raise FitError.single((), f"validation_split must lie strictly between 0 and 1, not {split!r}", "", "fit")


# long: the steps in order, each one line, so the order of refusals reads top to bottom
def fit_checked(checked: Checked, opts: FitOptions) -> Fitted:
    """Train a checked spec and write its outputs (the chief); see the module docstring for the order."""
    from ..keras.pipeline import check_output, output_folder

    settings = _settings(checked, opts)
    cluster = cluster_from_env()
    out = output_folder(checked, "all", opts.output)
    backup = Backup(opts.backup or backup_dir(out.absolute()), cluster)
    folders = {OUTPUT: out, BACKUP: backup.folder, TENSORBOARD: opts.tensorboard, SERVING: opts.serving_dir}
    check_outputs(checked, folders, [d for d in (opts.data, opts.validation) if d is not None])
    if cluster.is_chief:
        check_output(checked, out)
    backup.inspect()
    from ..data import expected_fields, open_data
    from ..keras.tf import import_keras

    made: list[tuple[Any, str]] = []
    import_keras(lambda: made.append(make_strategy(cluster)))  # before TensorFlow's runtime starts
    strategy, strategy_name = made[0]
    fields = expected_fields(checked)
    source = open_data(opts.data, fields)
    if opts.validation:
        train, val = source, open_data(opts.validation, fields)
    elif settings["validation_split"]:
        train, val = source.split(settings["validation_split"])
    else:
        train, val = source, None
    steps = math.ceil(train.count / settings["batch_size"])
    backup.run = _fingerprint(checked, settings, train, val, cluster)
    resumed = backup.check_run(opts.restart)
    model = _model(checked, strategy, train, settings)
    backup.attach(model)
    state = backup.restore() if resumed else State()
    if state.epoch > settings["epochs"]:
        raise BackupError.single(
            (),
            f"the backup in `{backup.folder}` has trained {state.epoch} epochs already, more than the "
            f"{settings['epochs']} asked",
            f"pass --epochs {state.epoch} or more to go on from it, or --restart to train "
            f"{settings['epochs']} from the start",
            "backup",
            file=str(backup.folder),
        )
    history = backup.history(state.epoch)
    progress = Progress.pick(settings["epochs"], steps, cluster.is_chief, opts.stream or sys.stdout)
    if resumed:
        progress.note(f"resuming from epoch {state.epoch + 1}, step {state.step} (backup {backup.folder})")
    backup.start()
    val_steps = math.ceil(val.count / settings["batch_size"]) if val is not None else 0
    plan = Plan(settings["epochs"], steps, opts.backup_every, settings["early_stopping"], val_steps)
    loop = Loop(
        model,
        strategy,
        cluster,
        lambda epoch, skip: _batches(train, settings, epoch, shuffle=True).skip(skip),
        (lambda: _batches(val, settings, 0, shuffle=False)) if val is not None else None,
        plan,
        backup,
        progress,
        _tensorboard(opts.tensorboard) if cluster.is_chief and opts.tensorboard else lambda h: None,
    )
    start = (state.epoch, state.step) if resumed else None
    history = loop.run(state, history)
    result = Fitted(
        out if cluster.is_chief else None,
        history,
        len(history),
        start,
        loop.stopped_early,
        cluster,
        strategy_name,
    )
    result.final = kept_metrics(history, best_epoch(history) if settings["early_stopping"] else None)
    if loop.diverged is not None and not (settings["early_stopping"] and best_epoch(history)):
        backup.remove()  # resuming a diverged run would only diverge again
        raise FitError.single(
            (),
            f"training diverged: the loss is not finite after epoch {loop.diverged}; nothing was written",
            "lower training.learning_rate (or set clipnorm), and check the data's scale",
            "fit",
        )
    if cluster.is_chief:
        _write_outputs(checked, model, out, backup, result, settings, train, val)
        if opts.serving_dir is not None:
            from .export import export_model

            result.exported = export_model(out, opts.serving_dir)
    backup.remove()
    return result


def _model(checked: Checked, strategy: Any, train: Any, settings: dict[str, Any]) -> Any:
    """The compiled model, built in the strategy's scope and prepared on one local batch."""
    from ..keras.build import build_model

    with strategy.scope():
        model = build_model(checked, compile=True)
    sample = next(iter(_batches(train, settings, 0, shuffle=False).take(1)))
    prepare(model, strategy, sample)
    return model


def _batches(source: Any, settings: dict[str, Any], epoch: int, shuffle: bool) -> Any:
    from ..data import make_batches

    return make_batches(source, settings["batch_size"], shuffle=shuffle, seed=settings["seed"], epoch=epoch)


def _fingerprint(checked: Checked, settings: dict[str, Any], train: Any, val: Any, cluster: Cluster) -> dict[str, Any]:
    """What a backup must match to be resumed: the same spec, data, batches and cluster size."""
    return {
        "spec_sha256": checked.spec.sha256,
        "data_sha256": train.sha256,
        "examples": train.count,
        "validation_sha256": val.sha256 if val is not None else None,
        "batch_size": settings["batch_size"],
        "seed": settings["seed"],
        "workers": cluster.workers,
    }


def _tensorboard(folder: Path) -> Any:
    """An ``on_epoch`` hook writing each epoch's metrics as Keras's TensorBoard callback names them."""
    import tensorflow as tf

    writers = {
        "train": tf.summary.create_file_writer(str(folder / "train")),
        "validation": tf.summary.create_file_writer(str(folder / "validation")),
    }

    def write(history: list[Epoch]) -> None:
        last = history[-1]
        step = int(last["epoch"]) - 1
        for name, value in last.items():
            if name == "epoch" or value is None:
                continue
            which = "validation" if name.startswith("val_") else "train"
            with writers[which].as_default():
                tf.summary.scalar(f"epoch_{name.removeprefix('val_')}", value, step=step)
            writers[which].flush()

    return write


def _write_outputs(
    checked: Checked,
    model: Any,
    out: Path,
    backup: Backup,
    result: Fitted,
    settings: dict[str, Any],
    train: Any,
    val: Any,
) -> None:
    """The chief's outputs: ``compile``'s layout plus history.json, history.png and the training record."""
    from ..keras.save import save_artifacts

    best = best_epoch(result.history) if settings["early_stopping"] else None
    if best is not None and best != result.epochs and backup.best_weights.is_file():
        model.load_weights(str(backup.best_weights))
        result.notes.append(f"kept the weights of epoch {best}, the lowest val_loss")
    final = _clean_copy(checked, model)
    summary = {
        "name": checked.name,
        "epochs_planned": settings["epochs"],
        "stopped_early": result.stopped_early,
        "best_epoch": best,
    }
    record = {
        **summary,
        "epochs": result.epochs,
        "batch_size": settings["batch_size"],
        "seed": settings["seed"],
        "strategy": result.strategy,
        "workers": result.cluster.workers,
        "data": describe_source(train),
        "validation": describe_source(val) if val is not None else None,
        "final": result.final,
    }
    extra = {
        "history.json": history_json(result.history, summary),
        "history.png": plot_png(result.history, f"{checked.name}: training"),
    }
    result.artifacts = save_artifacts(final, checked, out, "all", extra=extra, manifest={"training": record})
    result.notes.extend(result.artifacts.notes)


def _clean_copy(checked: Checked, trained: Any) -> Any:
    """The trained weights and optimizer state in a model built outside any strategy (what ``compile`` saves)."""
    from ..keras.build import build_model

    model = build_model(checked, compile=True)
    model.set_weights(trained.get_weights())
    if trained.optimizer.built:
        model.optimizer.build(model.trainable_variables)
        pairs = list(zip(model.optimizer.variables, trained.optimizer.variables, strict=False))
        if len(model.optimizer.variables) == len(trained.optimizer.variables) and all(
            tuple(a.shape) == tuple(b.shape) for a, b in pairs
        ):
            for mine, theirs in pairs:
                mine.assign(theirs.numpy())
    return model


def fit_spec(spec: str | Path, data: str | Path, **options: Any) -> Fitted:
    """Check a spec file and train it on ``data``: the Python face of ``fusec fit``.

    Keyword arguments are ``FitOptions`` fields (``output``, ``validation``,
    ``epochs``, ``batch_size``...).

    Raises:
        FusecError: the spec, the data, TF_CONFIG or the output is refused.
    """
    from ..static.check import check_spec

    for key in ("output", "backup", "tensorboard", "serving_dir"):
        if options.get(key) is not None:
            options[key] = Path(options[key])
    return fit_checked(check_spec(spec), FitOptions(data=str(data), **options))


def describe(fitted: Fitted) -> dict[str, Any]:
    """The ``--json`` report of a fit."""
    art = fitted.artifacts
    return json.loads(
        json.dumps(
            {
                "ok": True,
                "output": str(fitted.output) if fitted.output else None,
                "chief": fitted.cluster.is_chief,
                "strategy": fitted.strategy,
                "workers": fitted.cluster.workers,
                "epochs": fitted.epochs,
                "resumed_from": list(fitted.resumed_from) if fitted.resumed_from else None,
                "stopped_early": fitted.stopped_early,
                "final": fitted.final,
                "saved_model": str(art.saved_model) if art is not None and art.saved_model else None,
                "keras": str(art.keras) if art is not None and art.keras else None,
                "serving": str(getattr(fitted.exported, "path", "")) or None,
            }
        )
    )
