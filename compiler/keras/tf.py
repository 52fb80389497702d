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
from typing import Any

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


@contextlib.contextmanager
def keras_warnings() -> Iterator[list[str]]:
    """Catch the Python warnings raised inside (Keras's ``UserWarning`` lines) and report them as fusec does.

    Warnings in HARMLESS_WARNINGS are dropped; every other one is printed
    once, when the block ends without an error, as one ``warning: keras:
    ...`` line on stderr (control characters escaped, new lines joined), so
    no raw ``warnings.warn`` output with its source line reaches the user. On
    an error only the error is reported. The filters in force (``-W``,
    ``PYTHONWARNINGS``) still decide which warnings are raised at all.

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
        line = f"warning: keras: {printable(text, MAX_MESSAGE)}"
        printed.append(line)
        print(line, file=sys.stderr)


def quiet_environment() -> None:
    """Set TensorFlow's log-level variables unless the user set them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_keras(configure: Callable[[], Any] | None = None) -> Any:
    """Import TensorFlow and Keras once, filtering start-up noise from stderr.

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
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import keras
            import tensorflow as tf

            if configure is not None:
                configure()
            tf.constant(0)  # initialise the runtime, which prints the rest of the noise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not _NOISE.search(line):
                    print(line, file=sys.stderr)
    _keras = keras
    return keras
