"""The writers behind ``fusec export``: one per serving format, each filling a staging folder.

Every writer starts from a SavedModel whose ``serving_default`` is the
spec's interface (inputs named after the spec's inputs, results keyed by its
outputs): the one a ``fusec compile`` or ``fusec fit`` output holds, or one
written from a ``.keras`` archive with ``export_saved_model``. So TF
Serving, TensorFlow Lite's signature runner and ONNX Runtime all see the
same names.

- ``savedmodel``: the SavedModel itself (``saved_model.pb``, ``variables/``).
- ``tflite``: ``model.tflite``, from ``tf.lite.TFLiteConverter.from_saved_model``.
- ``onnx``: ``model.onnx``, from tf2onnx (the optional extra ``fusec[onnx]``),
  run as ``python -m tf2onnx.convert`` in a child process so its logging and
  its graph rewrites stay out of this one.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import MAX_MESSAGE, FusecError, printable
from ..files import installed

#: The formats and the file (or folder) each writes in a version folder.
FORMAT_FILES: dict[str, str] = {"savedmodel": "saved_model.pb", "tflite": "model.tflite", "onnx": "model.onnx"}
FORMATS = tuple(FORMAT_FILES)
#: What to run to get the ONNX converter.
ONNX_INSTALL = "pip install 'fusec[onnx]'"
#: The longest the ONNX converter may run (seconds): a tiny model takes about 5.
ONNX_TIMEOUT = 600


class ExportError(FusecError):
    """A model cannot be exported: a bad model path, serving folder, name, version or format."""


def fail(message: str, hint: str) -> ExportError:
    """An ``ExportError`` with one problem (exit 1)."""
    return ExportError.single((), message, hint, "export")


def _first_line(text: str) -> str:
    """The last non-empty line of an error report (Python tracebacks end with the error itself)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return printable(lines[-1] if lines else "no message", MAX_MESSAGE // 2)


def check_plain_tree(folder: Path) -> None:
    """Refuse a SavedModel folder holding anything but folders and regular files (a link, a device...).

    Raises:
        ExportError: naming the first such entry.
    """
    for root, dirs, names in os.walk(folder):
        for entry in (*dirs, *names):
            path = Path(root, entry)
            st = os.lstat(path)
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                from ..files import describe

                raise fail(
                    f"`{path}` is {describe(st)}, not a file a SavedModel holds",
                    "export from a folder written by `fusec compile` or `fusec fit`",
                )


def read_signature(saved_model: Path) -> tuple[list[str], list[str]]:
    """The input and output names of a SavedModel's ``serving_default``, read from ``saved_model.pb``.

    Raises:
        ExportError: the file cannot be parsed, or has no ``serving_default``.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    pb = saved_model / "saved_model.pb"
    try:
        proto = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
        sigs = [
            mg.signature_def["serving_default"] for mg in proto.meta_graphs if "serving_default" in mg.signature_def
        ]
    except Exception as exc:  # DecodeError, OSError: the file is damaged or unreadable
        raise fail(
            f"`{pb}` is not a readable SavedModel: {_first_line(str(exc) or type(exc).__name__)}",
            "compile or fit the spec again",
        ) from None
    if not sigs:
        raise fail(f"`{pb}` has no `serving_default` signature", "compile or fit the spec again")
    return list(sigs[0].inputs), list(sigs[0].outputs)


def write_savedmodel(saved_model: Path, stage: Path) -> None:
    """Copy the SavedModel's files into ``stage`` (TF Serving reads ``<version>/saved_model.pb``)."""
    check_plain_tree(saved_model)
    shutil.copytree(saved_model, stage, dirs_exist_ok=True)


def write_tflite(saved_model: Path, stage: Path) -> None:
    """Convert the SavedModel's ``serving_default`` to ``stage/model.tflite``.

    Raises:
        ExportError: the converter refused the model (an op TensorFlow Lite lacks).
    """
    import tensorflow as tf

    try:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=["serving_default"])
        data = converter.convert()
    except Exception as exc:
        raise fail(
            f"TensorFlow Lite cannot convert the model: {_first_line(str(exc) or type(exc).__name__)}",
            "export --format savedmodel instead, or use only layers TensorFlow Lite supports",
        ) from None
    (stage / FORMAT_FILES["tflite"]).write_bytes(data)


def onnx_available() -> bool:
    """Whether tf2onnx (and so onnx) can be imported by this Python."""
    return installed("tf2onnx", "onnx")


def require_onnx() -> None:
    """Refuse ``--format onnx`` when the converter is not installed (before anything is written).

    Raises:
        ExportError: with the install command.
    """
    if not onnx_available():
        raise fail(
            "`--format onnx` needs tf2onnx, which is not installed",
            f"install it with `{ONNX_INSTALL}`, or export --format savedmodel or tflite",
        )


def write_onnx(saved_model: Path, stage: Path) -> None:
    """Convert the SavedModel's ``serving_default`` to ``stage/model.onnx`` with tf2onnx, in a child process.

    Raises:
        ExportError: tf2onnx is missing, failed, or ran past ``ONNX_TIMEOUT``.
    """
    require_onnx()
    target = stage / FORMAT_FILES["onnx"]
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model)]
    command += ["--signature_def", "serving_default", "--output", str(target)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=ONNX_TIMEOUT, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise fail(
            f"tf2onnx ran for more than {ONNX_TIMEOUT} s without finishing", "export --format savedmodel instead"
        ) from None
    if done.returncode != 0 or not target.is_file():
        raise fail(
            f"tf2onnx cannot convert the model: {_first_line(done.stderr or done.stdout)}",
            "export --format savedmodel or tflite instead",
        )


#: Each format's writer: (SavedModel folder, staging folder) -> None.
WRITERS: dict[str, Callable[[Path, Path], None]] = {
    "savedmodel": write_savedmodel,
    "tflite": write_tflite,
    "onnx": write_onnx,
}
