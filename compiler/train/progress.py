"""What a run shows while it trains: Keras's progress bar on a terminal, one line per epoch otherwise.

Only the chief shows anything. Reading the metrics mid-epoch is a
collective operation under MultiWorkerMirroredStrategy, so the bar shows
running metrics only when one process trains; across workers it counts
steps, and the epoch's line carries the metrics.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import IO, Any


def _fmt(logs: dict[str, float | None]) -> str:
    return " - ".join(f"{k}: {v:.4f}" if v is not None else f"{k}: nan" for k, v in logs.items())


class Progress:
    """The display of one run.

    Args:
        epochs: how many epochs the run trains at most.
        steps: steps per epoch.
        show: whether this process shows anything (the chief).
        bar: a live progress bar (a terminal), else one line per epoch.
        stream: where to write (stdout, or stderr when stdout carries JSON).
    """

    def __init__(self, epochs: int, steps: int, show: bool, bar: bool, stream: IO[str] | None = None) -> None:
        self.epochs, self.steps, self.show, self.bar = epochs, steps, show, bar
        self.stream = stream or sys.stdout
        self._bar: Any = None
        self._start = 0.0

    @classmethod
    def pick(cls, epochs: int, steps: int, show: bool, stream: IO[str]) -> Progress:
        """A bar where ``stream`` is a terminal, lines elsewhere (logs, CI, files)."""
        return cls(epochs, steps, show, bar=show and stream.isatty(), stream=stream)

    def note(self, text: str) -> None:
        if self.show:
            print(text, file=self.stream, flush=True)

    def epoch_start(self, epoch: int, done: int) -> None:
        self._start = time.monotonic()
        if not self.show or not self.bar:
            return
        from keras.utils import Progbar

        print(f"Epoch {epoch + 1}/{self.epochs}", file=self.stream, flush=True)
        with contextlib.redirect_stdout(self.stream):  # Keras's bar writes to sys.stdout
            self._bar = Progbar(self.steps)
            if done:
                self._bar.update(done)

    def wants_metrics(self, multiworker: bool) -> bool:
        """Whether the loop should read running metrics after each step (a bar, one process)."""
        return self.show and self.bar and not multiworker

    def step(self, done: int, metrics: Callable[[], dict[str, float]] | None) -> None:
        if self._bar is not None:
            values = list(metrics().items()) if metrics is not None else None
            self._bar.stateful_metrics.update(k for k, _ in values or ())  # running means already
            with contextlib.redirect_stdout(self.stream):
                self._bar.update(done, values=values, finalize=False)

    def epoch_end(self, epoch: int, logs: dict[str, float | None]) -> None:
        if not self.show:
            return
        seconds = time.monotonic() - self._start
        if self._bar is not None:
            shown = [(k, v) for k, v in logs.items() if v is not None]
            self._bar.stateful_metrics.update(k for k, _ in shown)
            with contextlib.redirect_stdout(self.stream):
                self._bar.update(self.steps, values=shown, finalize=True)
            self._bar = None
            return
        print(f"epoch {epoch + 1}/{self.epochs} - {seconds:.1f}s - {_fmt(logs)}", file=self.stream, flush=True)
