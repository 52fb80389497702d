"""Progress of long commands on stderr: a live status line on a terminal, one line per stage otherwise.

``compile`` takes seconds to minutes (TensorFlow's import, the build, the
SavedModel, the ``.keras`` archive); the stages are named by the code doing
the work (``fusec.keras.tf.stage``) and shown here:

- on a terminal, one status line rewritten in place,
  ``compile: building the Keras model (812 nodes)... 7s``, cleared when the
  command ends, so only results and diagnostics stay on the screen; anything
  else written to stderr meanwhile first clears the line;
- otherwise (a CI log, a pipe), one line as each stage starts,
  ``compile: building the Keras model (812 nodes)...``; not with ``--json``,
  whose reader wants only the report;
- nothing with ``--quiet`` or ``FUSEC_PROGRESS=0``.

Never on stdout, which carries results and ``--json`` reports. A stage that
starts "silently" (``announce=False``) prints its line only when it resumes
after a stage inside it, so the quick checks before TensorFlow is imported
(where most errors are found) print nothing but their errors.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import click

from ..errors import printable

#: The words for each stage key; ``{detail}`` is what the stage works on.
LABELS: dict[str, str] = {
    "check": "checking {detail}",
    "tensorflow": "importing TensorFlow",
    "build": "building the Keras model ({detail})",
    "savedmodel": "writing the SavedModel",
    "keras": "writing {detail}",
    "save": "writing {detail}",
    "export": "exporting {detail}",
    "import": "importing {detail}",
}

_CLEAR = "\r\x1b[K"
_TICK = 0.5  # seconds between redraws of the live line


def label(key: str, detail: str = "") -> str:
    """The words shown for stage ``key`` (an unknown key is shown as it is)."""
    template = LABELS.get(key, key)
    text = template.format(detail=detail) if detail else template.replace(" ({detail})", "").replace(" {detail}", "")
    return " ".join(text.split())


@dataclass
class _Stage:
    text: str
    announce: bool
    started: float = field(default_factory=time.monotonic)
    shown: bool = False


class _Guarded:
    """``sys.stderr`` while the live line is shown: a write first clears the line, then lets it be redrawn."""

    def __init__(self, real: TextIO, progress: Progress) -> None:
        self._real = real
        self._progress = progress

    def write(self, text: Any) -> int:
        if not (isinstance(text, str) and text):
            return int(self._real.write(text))
        ended = False
        self._progress.before_write()
        try:
            self._real.write(text)
            self._real.flush()
            ended = text.endswith("\n")
        finally:
            self._progress.after_write(ended)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class Progress:
    """The stages of one command, shown on stderr (see the module's docstring).

    Use as a context manager around the command, and ``stage`` around each
    step; ``hook`` is what ``fusec.keras.tf.reporting_stages`` takes.
    """

    def __init__(self, command: str, mode: str, stream: TextIO | None = None) -> None:
        """Args:
        command: the command's name, the prefix of each line.
        mode: ``live`` (a terminal), ``lines`` (one line per stage) or ``off``.
        stream: where to write (default: the process's stderr at the time).
        """
        self.command = command
        self.mode = mode
        self._stream = stream
        self._stack: list[_Stage] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._showing = False
        self._drawn = ""
        self._line_start = True
        self._saved_stderr: TextIO | None = None
        self._fd: int | None = None  # a copy of stderr's descriptor: fd 2 may be captured meanwhile

    @classmethod
    def of(cls, command: str, quiet: bool = False, as_json: bool = False, stream: TextIO | None = None) -> Progress:
        """The progress a command shows: ``off`` when quiet, ``live`` on a terminal, else ``lines`` (not in --json).

        ``FUSEC_PROGRESS=0`` in the environment is ``--quiet`` for every command.
        """
        target = sys.stderr if stream is None else stream
        if quiet or os.environ.get("FUSEC_PROGRESS", "") in ("0", "off", "no"):
            return cls(command, "off", stream)
        if _is_terminal(target):
            return cls(command, "live", stream)
        return cls(command, "off" if as_json else "lines", stream)

    def __enter__(self) -> Progress:
        if self.mode != "off":
            with contextlib.suppress(AttributeError, ValueError, OSError):  # no descriptor: write to the stream
                self._fd = os.dup(self._target().fileno())
        if self.mode == "live":
            self._saved_stderr = sys.stderr
            sys.stderr = _Guarded(sys.stderr, self)
            self._thread = threading.Thread(target=self._tick, name="fusec-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the live line and clear it (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            self._clear()
            if self._saved_stderr is not None:
                sys.stderr = self._saved_stderr
                self._saved_stderr = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def hook(self, key: str, detail: str = "") -> contextlib.AbstractContextManager[object]:
        """A stage named by key (``LABELS``): what ``fusec.keras.tf.stage`` calls."""
        return self.stage(label(key, detail))

    @contextlib.contextmanager
    def stage(self, text: str, announce: bool = True) -> Iterator[None]:
        """Show ``text`` while the block runs.

        Args:
            text: what is being done, e.g. ``building the Keras model (812 nodes)``.
            announce: in ``lines`` mode, print the line at the start; False
                prints it only if the stage resumes after a stage inside it.
        """
        if self.mode == "off":
            yield
            return
        step = _Stage(text, announce)
        with self._lock:
            self._stack.append(step)
            if self.mode == "lines" and announce:
                self._print(step)
            self._draw()
        try:
            yield
        finally:
            with self._lock:
                self._stack.remove(step)
                if self._stack and self.mode == "lines" and not self._stack[-1].shown:
                    self._print(self._stack[-1])
                if self._stack:
                    self._stack[-1].started = time.monotonic()
                    self._draw()
                else:
                    self._clear()

    # --- writing -----------------------------------------------------------------

    def _target(self) -> TextIO:
        if self._saved_stderr is not None:
            return self._saved_stderr
        return sys.stderr if self._stream is None else self._stream

    def _print(self, step: _Stage) -> None:
        step.shown = True
        self._raw(f"{self.command}: {printable(step.text)}...\n")

    def _draw(self) -> None:
        """Rewrite the live line with the innermost stage and its elapsed seconds."""
        if self.mode != "live" or not self._stack or not self._line_start:
            return
        step = self._stack[-1]
        seconds = int(time.monotonic() - step.started)
        text = f"{self.command}: {printable(step.text)}... {seconds}s"
        width = shutil.get_terminal_size((80, 24)).columns - 1
        if len(text) > width > 3:
            text = text[: width - 1] + "…"
        if not (self._showing and text == self._drawn):  # redraw only when the line changes
            self._raw(_CLEAR + text)
        self._showing, self._drawn = True, text

    def _clear(self) -> None:
        if self._showing:
            self._raw(_CLEAR)
            self._showing = False

    def _raw(self, text: str) -> None:
        """Write progress text; a closed or broken stderr never ends the command."""
        target = self._target()
        with contextlib.suppress(ValueError, OSError):
            if self._fd is None:
                target.write(text)
                target.flush()
                return
            target.flush()  # what was written before goes first
            data = text.encode(getattr(target, "encoding", None) or "utf-8", "replace")
            while data:
                data = data[os.write(self._fd, data) :]

    def _tick(self) -> None:
        while not self._stop.wait(_TICK):
            with self._lock:
                self._draw()

    def before_write(self) -> None:
        """Called by the guarded stderr before another write: the live line makes room."""
        self._lock.acquire()
        self._clear()

    def after_write(self, line_ended: bool) -> None:
        """Called after that write: the line is redrawn on the next tick if the write ended its line."""
        self._line_start = line_ended
        self._lock.release()


def _is_terminal(stream: TextIO) -> bool:
    """A stream a live line can be drawn on: a terminal that is not ``TERM=dumb``."""
    if os.environ.get("TERM", "") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


quiet_option = click.option(
    "-q", "--quiet", is_flag=True, help="Show no progress on stderr (errors and warnings are still printed)."
)


@contextlib.contextmanager
def showing(command: str, quiet: bool, as_json: bool) -> Iterator[Progress]:
    """The command's progress, with every ``fusec.keras.tf.stage`` inside the block shown by it."""
    from ..keras.tf import reporting_stages

    with Progress.of(command, quiet, as_json) as progress, reporting_stages(progress.hook):
        yield progress
