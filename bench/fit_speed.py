"""`fusec fit`'s training loop against hand-written Keras ``model.fit`` on the same pipeline and model.

Both sides train in this one process, on the same generated ``.npz`` data,
the same model (``build_model(checked)``) and the same ``tf.data`` batches
(``make_batches`` from ``fusec.data``): ``fit_spec(SPEC, DATA, epochs=N)``,
the whole of ``fusec fit`` without the command line, against
``model.fit(make_batches(...), epochs=N)``, and against the same with
Keras's ``BackupAndRestore`` (fusec backs every run up at each epoch's end;
this is the like-for-like baseline), and, as a control, plain ``model.fit``
against a second run of itself (the noise floor).

Side by side at the grain of one epoch: the runs start together, each in a
thread, and take turns (``Turns``): a run trains one epoch, and at the
epoch's end hands over to the next run and waits; the order is reversed
every round (A B C, C B A, ...), so drift on this shared machine hits
every side alike, and the paired samples are seconds apart. An epoch is
timed from the moment its run gets the turn to its end: for fusec, the
``epoch k/N`` line it prints (``Progress``) into a stream that notes the
time, so its per-epoch work (a new shuffled dataset, the backup) counts;
for Keras, a callback's ``on_epoch_end``. Each epoch after the first is one
sample (the first traces the step and is not timed); set-up and outputs
(SavedModel, ``.keras``, history) are not timed and run alone. Rows: the
medians of examples/s (no target), and the median of the paired
per-epoch ratios (``paired_row``: epochs run back to back), the figure
judged. Target: fusec / Keras >= 0.97.

The helpers here (``synthetic``, ``Turns``, ``EpochClock``, ``steady``)
serve bench/fit_streaming.py and bench/fit_workers.py too.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness import ROOT, Row, median, paired_ratios, tensorflow_on

NAME = "fit_speed"
TITLE = "fusec fit's loop vs hand-written Keras model.fit, same pipeline and model   >= 0.97"
TARGET = 0.97
#: (label, spec, examples, --quick examples): a small dense model (per-step overhead shows) and a conv one
CASES = (
    ("multi-task shared head", "specs/multitask_shared.json", 32000, 4000),
    ("image+tag classifier", "specs/image_tag.json", 4800, 800),
)
SEED = 1234


# --- generated data (shared by the fit benchmarks) ---------------------------------------


def _floats(rng: np.random.Generator, shape: tuple[int, ...], high: int | None) -> np.ndarray:
    return np.round(rng.normal(size=shape), 3)


def _small_ints(rng: np.random.Generator, shape: tuple[int, ...], high: int | None) -> np.ndarray:
    return rng.integers(0, high or 10, size=shape)


def _bits(rng: np.random.Generator, shape: tuple[int, ...], high: int | None) -> np.ndarray:
    return rng.integers(0, 2, size=shape)


def _one_hot(rng: np.random.Generator, shape: tuple[int, ...], high: int | None) -> np.ndarray:
    width = shape[-1] if len(shape) > 1 else 1
    return np.eye(width)[rng.integers(0, width, size=shape[:-1])] if len(shape) > 1 else np.ones(shape)


def _signs(rng: np.random.Generator, shape: tuple[int, ...], high: int | None) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=shape)


#: Values for each rule of ``fusec.data.fields.RULE_TEXT``: (rng, shape with the examples axis, bound) -> array
VALUES: Mapping[str, Callable[[np.random.Generator, tuple[int, ...], int | None], np.ndarray]] = {
    "float": _floats,
    "regression": _floats,
    "int": _small_ints,
    "ids": _small_ints,
    "sparse": _small_ints,
    "bool": _bits,
    "binary": _bits,
    "categorical": _one_hot,
    "hinge": _signs,
}


def synthetic(fields: Sequence[Any], examples: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Valid random arrays for a spec's fields (``expected_fields``): ``{name: (examples, *shape)}``."""
    rng = np.random.default_rng(seed)
    out = {}
    for f in fields:
        shape = (examples, *(d or 1 for d in f.shape))
        out[f.name] = VALUES[f.rule](rng, shape, f.high).astype(f.np_dtype)
    return out


def spec_fields(spec: Path) -> tuple[Any, Any]:
    """The checked spec and its data fields."""
    from fusec.data import expected_fields
    from fusec.static.check import check_spec

    checked = check_spec(spec)
    return checked, expected_fields(checked)


def write_npz(spec: Path, examples: int, path: Path) -> Path:
    """Generated data for ``spec`` as one ``.npz`` (arrays keyed by input and output names)."""
    np.savez(path, **synthetic(spec_fields(spec)[1], examples))
    return path


# --- timing ------------------------------------------------------------------------------

_EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+)")
#: called at each epoch's end with (epoch, epochs), 1-based
Hook = Callable[[int, int], None]


class EpochClock(io.StringIO):
    """A text stream for fusec's progress display: notes when each ``epoch k/N`` line arrives, calls ``hook``."""

    def __init__(self, hook: Hook | None = None) -> None:
        super().__init__()
        self.ends: list[float] = []
        self.hook = hook

    def isatty(self) -> bool:  # one line per epoch, as in a log
        return False

    def write(self, s: str) -> int:
        line = _EPOCH_LINE.match(s)
        if line:
            self.ends.append(time.perf_counter())
            if self.hook is not None:
                self.hook(int(line.group(1)), int(line.group(2)))
        return super().write(s)


def steady(ends: Sequence[float], examples: int) -> float:
    """Examples per second over epochs 2..N from the N epochs' end times (epoch 1 traces)."""
    if len(ends) < 2:
        raise RuntimeError(f"need at least 2 epochs to time the steady state, got {len(ends)}")
    return examples * (len(ends) - 1) / (ends[-1] - ends[0])


class Turns:
    """Runs in threads taking turns epoch by epoch: A B C, C B A, ... (see the module docstring).

    Each run calls ``epoch_end`` at the end of every epoch (its hook); the
    last epoch keeps the turn until the run returns (its outputs are
    written alone). ``seconds[i]`` gets run i's epochs 2..N, each from the
    moment it got the turn to its end.
    """

    def __init__(self, n: int) -> None:
        self.cond = threading.Condition()
        self.order, self.at, self.active = list(range(n)), 0, set(range(n))
        self.failed = False
        self.resumed = [0.0] * n
        self.seconds: list[list[float]] = [[] for _ in range(n)]

    def _wait(self, me: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.failed or self.order[self.at] == me)
            if self.failed:
                raise RuntimeError("another run failed")
        self.resumed[me] = time.perf_counter()

    def _advance(self) -> None:
        while self.active:
            self.at += 1
            if self.at == len(self.order):
                self.order.reverse()
                self.at = 0
            if self.order[self.at] in self.active:
                break
        self.cond.notify_all()

    def epoch_end(self, me: int, epoch: int, epochs: int) -> None:
        if epoch > 1:
            self.seconds[me].append(time.perf_counter() - self.resumed[me])
        if epoch < epochs:
            with self.cond:
                self._advance()
            self._wait(me)

    def play(self, runs: Sequence[Callable[[Hook], None]]) -> None:
        """Run each ``run(hook)`` in its own thread, taking turns; re-raise the first failure."""
        errors: list[BaseException] = []

        def play(me: int, run: Callable[[Hook], None]) -> None:
            try:
                self._wait(me)
                run(lambda epoch, epochs: self.epoch_end(me, epoch, epochs))
            except BaseException as exc:  # handed to the caller
                errors.append(exc)
                with self.cond:
                    self.failed = True
                    self.cond.notify_all()
            finally:
                with self.cond:
                    self.active.discard(me)
                    if self.order[self.at] == me:
                        self._advance()

        threads = [threading.Thread(target=play, args=(i, r)) for i, r in enumerate(runs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]


def interleave_epochs(runs: Sequence[Callable[[Hook], None]], rounds: int, examples: int) -> list[list[float]]:
    """``rounds`` rounds of the runs taking turns; examples/s of every timed epoch, per run."""
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(rounds):
        fresh()
        turns = Turns(len(runs))
        turns.play(runs)
        for mine, seconds in zip(samples, turns.seconds, strict=True):
            mine += [examples / s for s in seconds]
    return samples


def paired_row(group: str, name: str, ours: Sequence[float], base: Sequence[float], lo: float | None = None) -> Row:
    """A row judged on the paired per-epoch ratios: ``fusec`` holds them, the baseline is 1.

    The machine flips between a fast and a slow state for seconds at a time
    (each side alone shows it: epochs of 1.5 s and of 2.7 s on the same
    model), so a ratio of medians moves with how many epochs of each side
    fell in each state. Epochs run back to back mostly share the state: the
    median of their ratios is the figure judged. The note keeps the medians.
    """
    ratios = paired_ratios(ours, base)
    note = f"medians {median(ours):,.0f} vs {median(base):,.0f} ex/s, {len(ratios)} pairs of epochs"
    row = Row(group, name, ratios, [1.0] * len(ratios), "", "f/b", lo=lo, note=note)
    row.higher_is_better = True
    return row


# --- the sides ---------------------------------------------------------------------------


def fresh() -> None:
    """Drop the previous round's models and traced functions, so no round pays for another's leftovers."""
    import gc

    from fusec.keras.tf import import_keras

    import_keras().backend.clear_session()
    gc.collect()


def fusec_run(spec: Path, data: Path, epochs: int, batch: int, out: Path) -> Callable[[Hook], None]:
    """One run of ``fit_spec`` (all of ``fusec fit`` but the command line), its epoch ends reported to a hook."""
    from fusec.train.fit import fit_spec

    def run(hook: Hook) -> None:
        shutil.rmtree(out, ignore_errors=True)
        clock = EpochClock(hook)
        fit_spec(spec, str(data), output=out, epochs=epochs, batch_size=batch, stream=clock)
        shutil.rmtree(out, ignore_errors=True)
        if len(clock.ends) != epochs:
            raise RuntimeError(f"fusec fit printed {len(clock.ends)} epoch lines for {epochs} epochs")

    return run


def keras_run(spec: Path, data: Path, epochs: int, batch: int, backup: Path | None = None) -> Callable[[Hook], None]:
    """One run of what a user writes by hand: build, ``make_batches``, ``model.fit``.

    With ``backup``, also Keras's ``BackupAndRestore`` into that folder (saved
    at each epoch's end, as fusec's backup is): the like-for-like baseline.
    """
    from fusec.data import make_batches, open_data
    from fusec.keras.build import build_model
    from fusec.keras.tf import import_keras

    keras = import_keras()

    def run(hook: Hook) -> None:
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)  # a fresh run, never a resumed one
        checked, fields = spec_fields(spec)
        source = open_data(str(data), fields)
        model = build_model(checked, compile=True)
        clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: hook(epoch + 1, epochs))
        callbacks = [clock] if backup is None else [keras.callbacks.BackupAndRestore(str(backup)), clock]
        batches = make_batches(source, batch, shuffle=True, seed=int(checked.doc.get("seed", 0)), epoch=0)
        model.fit(batches, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False)

    return run


def measure(label: str, spec: Path, examples: int, args: argparse.Namespace, group: str, tmp: Path) -> list[Row]:
    """One spec's rows: fusec, Keras, Keras with a backup and Keras again, epochs interleaved.

    The medians of examples/s (no target); the paired per-epoch ratio to
    plain ``model.fit`` (the target); the same to ``model.fit`` with
    ``BackupAndRestore`` (like for like: fusec backs up at each epoch's end);
    and the control, plain ``model.fit`` against a second run of itself: how
    far from 1 this machine's noise alone moves a ratio.
    """
    data = write_npz(spec, examples, tmp / f"{spec.stem}.npz")
    runs = [
        fusec_run(spec, data, args.epochs, args.batch, tmp / "fusec-out"),
        keras_run(spec, data, args.epochs, args.batch),
        keras_run(spec, data, args.epochs, args.batch, backup=tmp / "keras-backup"),
        keras_run(spec, data, args.epochs, args.batch),  # the control: plain Keras again
    ]
    ours, plain, backed, twin = interleave_epochs(runs, args.repeats, examples)
    note = f"{examples} examples, batch {args.batch}; {args.repeats} runs each, epochs 2..{args.epochs} of each timed"
    speed = Row(group, f"{label}: examples/s, fusec / Keras fit", ours, plain, "ex/s", "f/b", note=note)
    speed.higher_is_better = True
    return [
        speed,
        paired_row(group, f"{label}: per epoch, fusec / Keras fit", ours, plain, TARGET),
        paired_row(group, f"{label}: per epoch, fusec / Keras fit + BackupAndRestore", ours, backed),
        paired_row(group, f"{label}: control, Keras fit / Keras fit (noise floor)", twin, plain),
    ]


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--fit-repeats", type=int, help="runs per side (default 4; --quick 1)")
    group.add_argument("--fit-epochs", type=int, help="epochs per run, the first untimed (default 8; --quick 3)")
    group.add_argument("--fit-batch-size", type=int, default=32, help="batch size (default 32, fusec's default)")
    group.add_argument("--fit-examples", type=float, default=1.0, help="scale every case's number of examples")


def settings(args: argparse.Namespace) -> argparse.Namespace:
    """Repeats, epochs and batch from the options (``--quick``: fewer)."""
    return argparse.Namespace(
        repeats=args.fit_repeats or (1 if args.quick else 4),
        epochs=args.fit_epochs or (3 if args.quick else 8),
        batch=args.fit_batch_size,
        scale=args.fit_examples,
        quick=args.quick,
    )


def run(args: argparse.Namespace) -> list[Row]:
    """One row per case, on ``args.device`` (no rows, and a note, on ``gpu`` without a GPU)."""
    device = available(args.device)
    if device is None:
        return []
    group = f"fit speed ({device})"
    opts = settings(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fusec-bench-fit-") as tmp:
        for label, spec, full, quick in CASES:
            examples = int((quick if args.quick else full) * opts.scale)
            rows += measure(label, ROOT / spec, examples, opts, group, Path(tmp))
            print(
                f"  {label}: fusec / keras per epoch {rows[-2].ratio:.3f}, with a backup {rows[-1].ratio:.3f}",
                flush=True,
            )
    return rows


def available(device: str) -> str | None:
    """The row group's device label, or None (and a note) for ``gpu`` when TensorFlow sees none."""
    try:
        return tensorflow_on(device)[3]
    except SystemExit:
        print("  no GPU: the GPU rows are skipped", flush=True)
        return None
