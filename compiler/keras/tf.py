"""Import TensorFlow and Keras quietly, without hiding real errors.

TensorFlow 2.21 prints an absl banner and a oneDNN notice straight to the
process's stderr before its logging is initialised, so TF_CPP_MIN_LOG_LEVEL
alone cannot silence them. While TensorFlow is imported, fd 2 goes to a
temporary file; afterwards every line that is not one of those known notices
is written back to stderr, so warnings and errors still reach the user.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..static.check import Checked

_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|could not find cuda drivers on your machine"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
    r"|TF-TRT Warning"
)

#: Python warnings Keras raises that say nothing fusec has not said better, and why they are dropped.
HARMLESS_WARNINGS: tuple[tuple[str, str], ...] = (
    (
        r"Layer '.*' \(of type .*\) was passed an input with a mask attached to it",
        "fusec's own check reports a dropped padding mask as a `warning:` with the node's JSON path",
    ),
)
_HARMLESS = re.compile("|".join(f"(?:{pattern})" for pattern, _ in HARMLESS_WARNINGS))

_keras: Any = None

#: A stage hook: given a stage's key and detail, a context manager around the stage's work.
StageHook = Callable[[str, str], AbstractContextManager[object]]
_STAGE_HOOK: ContextVar[StageHook | None] = ContextVar("fusec_stage_hook", default=None)

#: A layer named in a Keras warning (the build names each layer after its node).
_LAYER_NAME = re.compile(r"""\b[Ll]ayer ['"]([^'"]+)['"]""")


def stage(key: str, detail: str = "") -> AbstractContextManager[object]:
    """One step of a long command (``tensorflow``, ``build``, ``savedmodel``, ``keras``...).

    The command line shows it as progress (``cli/progress.py``); outside a
    command, or with no hook installed, it does nothing.

    Args:
        key: the stage (``cli.progress.LABELS`` has the words for each).
        detail: what it works on, e.g. ``812 nodes``.

    Returns:
        A context manager around the stage's work.
    """
    hook = _STAGE_HOOK.get()
    return hook(key, detail) if hook is not None else contextlib.nullcontext()


@contextlib.contextmanager
def reporting_stages(hook: StageHook | None) -> Iterator[None]:
    """Send every ``stage(...)`` inside the block to ``hook`` (None: keep the one in force)."""
    if hook is None:
        yield
        return
    token = _STAGE_HOOK.set(hook)
    try:
        yield
    finally:
        _STAGE_HOOK.reset(token)


@contextlib.contextmanager
def native_logs() -> Iterator[None]:
    """Keep TensorFlow's C++ log lines (absl, grappler, oneDNN) off the terminal inside the block.

    fd 2 goes to a temporary file; when the block ends (even on an error)
    every line that is not a known notice is written back to ``sys.stderr``,
    so a real warning or error still reaches the user, after the block.
    Python's own writes to ``sys.stderr`` inside the block are kept the same way.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not _NOISE.search(line):
                    print(line, file=sys.stderr)


def _node_warning(text: str, checked: Checked | None) -> str | None:
    """A Keras warning that names a node's layer, as that node's ``warning:`` line with its place in the spec."""
    from ..errors import Problem

    found = _LAYER_NAME.search(text)
    if checked is None or found is None:
        return None
    nodes = checked.spec.doc.get("nodes") if isinstance(checked.spec.doc, dict) else None
    node = found.group(1)
    if not isinstance(nodes, dict) or node not in nodes:
        return None
    problem = Problem(("nodes", node), f"keras: {text}", code="keras", severity="warning")
    (placed,) = checked.spec.located([problem])
    return placed.line(checked.spec.file)


@contextlib.contextmanager
def keras_warnings(checked: Checked | None = None) -> Iterator[list[str]]:
    """Catch the Python warnings raised inside (Keras's ``UserWarning`` lines) and report them as fusec does.

    Warnings in HARMLESS_WARNINGS are dropped. A warning that names the
    layer of one of ``checked``'s nodes is printed as that node's warning,
    ``file:line:col: warning: $.nodes.ID: keras: ...``; every other one as
    one ``warning: keras: ...`` line. Each is printed once, when the block
    ends without an error, on stderr (control characters escaped, new lines
    joined), so no raw ``warnings.warn`` output with its source line reaches
    the user. On an error only the error is reported. The filters in force
    (``-W``, ``PYTHONWARNINGS``) still decide which warnings are raised at all.

    Args:
        checked: the spec being built, to place warnings about its nodes.

    Yields:
        The lines printed on exit (filled in when the block ends).
    """
    from ..errors import MAX_MESSAGE, printable

    printed: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        yield printed  # a failure propagates: its error is what the user needs, not these
    seen: set[str] = set()
    for w in caught:
        text = " ".join(str(w.message).split())
        if not text or _HARMLESS.search(text) or text in seen:
            continue
        seen.add(text)
        line = _node_warning(text, checked) or f"warning: keras: {printable(text, MAX_MESSAGE)}"
        printed.append(line)
        print(line, file=sys.stderr)


def quiet_environment() -> None:
    """Set TensorFlow's log-level variables unless the user set them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_keras(configure: Callable[[], Any] | None = None) -> Any:
    """Import TensorFlow and Keras once, filtering start-up noise from stderr.

    Shown as the ``tensorflow`` stage of the running command's progress.

    Args:
        configure: run after the import, before TensorFlow's runtime starts
            (a multi-worker strategy must configure collective ops then);
            run at once when TensorFlow was already imported.

    Returns:
        The ``keras`` module (Keras 3 on the TensorFlow backend).
    """
    global _keras
    if _keras is not None:
        if configure is not None:
            configure()
        return _keras
    quiet_environment()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with stage("tensorflow"), native_logs():
        import keras
        import tensorflow as tf

        if configure is not None:
            configure()
        tf.constant(0)  # initialise the runtime, which prints the rest of the noise
    _keras = keras
    return keras
