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

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MAX_MESSAGE, FusecError, printable
from ..files import installed
from ..keras.save.owner import MAX_OWNER_BYTES, OPEN_FLAGS, OWNER, Entry, file_digest, walk

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


# --- the output's record: export only the files fusec wrote, unchanged ------------------------

#: A signed listing read from ``fusec.owner.json``: relative path -> (kind ``d``/``f``, size, SHA-256).
Listing = dict[str, tuple[str, int, str]]
_SHA256 = re.compile(r"[0-9a-f]{64}")
_AGAIN = "compile or fit the spec again; fusec exports an output only as it wrote it"


def _parse_listing(doc: Any) -> Listing | None:
    """The entries of an ownership record, or None when it is not one fusec writes."""
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return None
    listing: Listing = {}
    for item in entries:
        if not isinstance(item, list) or not item or not isinstance(item[0], str):
            return None
        rel = item[0]
        if not rel or rel.startswith("/") or "\0" in rel or any(p in ("", ".", "..") for p in rel.split("/")):
            return None
        if item[1:] == ["d"]:
            listing[rel] = ("d", 0, "")
        elif len(item) == 4 and item[1] == "f" and type(item[2]) is int and isinstance(item[3], str):
            if not _SHA256.fullmatch(item[3]):
                return None
            listing[rel] = ("f", item[2], item[3])
        else:
            return None
    return listing


def read_listing(folder: Path) -> Listing:
    """The listing of ``folder/fusec.owner.json``, read with a size bound, without following links or blocking.

    Raises:
        ExportError: there is none, or it is not a record fusec writes.
    """
    path = folder / OWNER
    try:
        fd = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        raise fail(f"`{folder}` has no `{OWNER}`, so fusec cannot check its files", _AGAIN) from None
    except OSError as exc:
        raise fail(f"`{path}` cannot be read: {exc.strerror or exc}", _AGAIN) from None
    with os.fdopen(fd, "rb") as fh:
        regular = stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
        data = fh.read(MAX_OWNER_BYTES + 1) if regular else b""
    try:
        doc = json.loads(data.decode("utf-8")) if regular and len(data) <= MAX_OWNER_BYTES else None
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested deeper than the parser goes
        doc = None
    listing = _parse_listing(doc)
    if listing is None:
        raise fail(f"`{path}` is not a fusec ownership record", _AGAIN)
    return listing


def _check_entry(path: Path, want: tuple[str, int, str]) -> None:
    """``path`` is the folder or file the listing records: same kind, size and SHA-256.

    Raises:
        ExportError: naming the file and what differs.
    """
    try:
        entry = Entry.of(os.lstat(path))
    except FileNotFoundError:
        raise fail(f"`{path}` is missing: `{OWNER}` lists it", _AGAIN) from None
    except OSError as exc:
        raise fail(f"`{path}` cannot be read: {exc.strerror or exc}", _AGAIN) from None
    if entry.kind != want[0]:
        kind = "a folder" if want[0] == "d" else "a regular file"
        raise fail(f"`{path}` is not {kind}, as `{OWNER}` records it", _AGAIN)
    if entry.kind == "f" and (entry.size != want[1] or file_digest(path, entry) != want[2]):
        raise fail(
            f"`{path}` changed after fusec wrote it (its size or SHA-256 is not the one `{OWNER}` records)", _AGAIN
        )


def _check_listed(root: Path, listing: Listing, prefix: str, extras: Path) -> None:
    """Check each entry listed under ``prefix`` at ``root``, and refuse entries under ``extras`` it does not list."""
    for rel, want in listing.items():
        if rel.startswith(prefix):
            _check_entry(root / rel[len(prefix) :], want)
    if not extras.is_dir():
        return
    base = os.path.relpath(extras, root)
    for rel, _entry in walk(extras, len(listing) + 1):
        if prefix + ("" if base == "." else base + "/") + rel not in listing:
            raise fail(f"`{extras / rel}` is not a file fusec wrote (`{OWNER}` does not list it)", _AGAIN)


def check_output(folder: Path) -> Listing:
    """Check that a compile or fit output holds the files its record lists, unchanged; return the listing.

    Every listed file must be there with its recorded size and SHA-256
    (``spec.json``, ``fusec.json``, the archive, the SavedModel's files), and
    ``saved_model/`` may hold nothing else: that folder is what TF Serving
    loads. The record's signature is not required to verify: an output may
    be exported by another user or on another machine than the one that
    wrote it; the digests catch a damaged, truncated or edited file.

    Raises:
        ExportError: naming the first file that is missing, changed or not listed.
    """
    listing = read_listing(folder)
    _check_listed(folder, listing, "", folder / "saved_model")
    return listing


def check_copy(stage: Path, listing: Listing, source: Path) -> None:
    """Check the SavedModel copied into ``stage`` against the listing (a file changed while it was copied).

    Raises:
        ExportError: naming the file in ``source`` that changed.
    """
    try:
        _check_listed(stage, listing, "saved_model/", stage)
    except ExportError:
        raise fail(f"`{source}` changed while it was exported", "export it again; nothing was written") from None


#: Each format's writer: (SavedModel folder, staging folder) -> None.
WRITERS: dict[str, Callable[[Path, Path], None]] = {
    "savedmodel": write_savedmodel,
    "tflite": write_tflite,
    "onnx": write_onnx,
}
