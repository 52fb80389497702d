"""``fusec export``: a compiled or trained model into a numbered serving version.

Layouts, with DIR the serving folder, NAME the model's name and N the version::

    savedmodel  DIR/NAME/N/saved_model.pb + variables/   TF Serving's model base path
    tflite      DIR/NAME/N/model.tflite                   TensorFlow Lite
    onnx        DIR/NAME/N/model.onnx                     Triton's model repository (tf2onnx)

The model is a ``fusec compile`` or ``fusec fit`` output folder (its
``saved_model/`` is used as written; without one, its ``.keras`` archive is
loaded) or a ``.keras`` archive. A version is written whole in a dot-named
staging folder inside ``DIR/NAME`` (TF Serving and Triton ignore names that
are not numbers), then renamed to ``N`` in one step that never replaces
anything: an existing version is refused, never overwritten, and no other
entry under DIR is touched. A failure removes the staging folder and any
folder the export created.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import files
from ..errors import printable
from .export_formats import (
    FORMATS,
    WRITERS,
    ExportError,
    Listing,
    check_copy,
    check_output,
    fail,
    read_signature,
    require_onnx,
)

__all__ = ["FORMATS", "ExportError", "Exported", "export_model"]

#: A model name that is one plain folder name.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_VERSION = re.compile(r"[0-9]+")
#: The largest version TF Serving reads (an int64).
MAX_VERSION = 2**63 - 1
_MANIFEST_LIMIT = 1 << 20  # a fusec.json is a few kB; more is not one of ours
_USAGE = "give a folder written by `fusec compile` or `fusec fit`, or a .keras file"
_TRIES = 5  # numbers tried when other exports keep taking the next free one


@dataclass(frozen=True)
class Exported:
    """A version written by ``export_model``.

    Attributes:
        path: the version folder, ``DIR/NAME/<version>``.
        version: its number.
        name: the model's folder name under the serving folder.
        fmt: ``savedmodel``, ``tflite`` or ``onnx``.
        inputs: the signature's input names, in the spec's order.
        outputs: the signature's output names, in the spec's order.
    """

    path: Path
    version: int
    name: str
    fmt: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Source:
    """What to export from: a SavedModel folder, or else a ``.keras`` archive to load."""

    name: str
    saved_model: Path | None
    archive: Path | None
    order: tuple[str, ...] = ()  # the spec's input and output names, in order, when known
    listing: Listing | None = None  # an output folder's signed listing; None for a bare archive


def export_model(
    model_path: Path, serving_dir: Path, *, version: int | None = None, fmt: str = "savedmodel", name: str | None = None
) -> Exported:
    """Export a compiled or trained model as version ``version`` of ``serving_dir/NAME``.

    Args:
        model_path: a ``fusec compile`` or ``fusec fit`` output folder, or a ``.keras`` archive.
        serving_dir: the serving folder (made if missing).
        version: the version number (1 or more), refused if it exists;
            None: one more than the largest existing number (1 when none).
        fmt: ``savedmodel``, ``tflite`` or ``onnx``.
        name: the model's folder name (default: the name ``fusec.json``
            records, or the archive's file name without ``.keras``).

    Returns:
        Where the version was written, and its signature.

    Raises:
        ExportError: a bad model path, name, version or format, a serving
            folder that cannot be written, a converter that failed, or a
            version taken meanwhile; nothing is left behind.
        OutputError: a ``.keras`` archive that Keras cannot load.
    """
    model_path, serving_dir = Path(model_path), Path(serving_dir)
    if fmt not in FORMATS:
        raise fail(f"unknown export format `{printable(fmt)}`", f"use one of {', '.join(FORMATS)}")
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise fail(f"version {version} is not a positive 64-bit number", "give --version 1 or more")
    if fmt == "onnx":
        require_onnx()
    source = _source(model_path)
    name = _check_name(source.name if name is None else name, name is None, model_path)
    model_dir = serving_dir.absolute() / name
    if model_path.is_dir() and files.inside(serving_dir.resolve(), model_path.resolve()):
        raise fail(
            f"the serving folder `{serving_dir}` lies inside the model's folder `{model_path}`",
            "choose a --serving-dir outside it: fusec does not change a compile or fit output",
        )
    _check_folder(serving_dir, "the serving folder")
    _check_folder(model_dir, "the model's folder")
    if version is None:
        _next_version(model_dir)  # refuse now when no number is left, before anything is written
    else:
        _refuse_taken(model_dir, version)
    if model_path.is_dir():  # an output folder: its files must be the ones its record lists
        source = replace(source, listing=check_output(model_path))
    from ..keras.tf import import_keras

    import_keras()  # TensorFlow quietly, before any writer imports it
    created = _make_folders(model_dir)
    try:
        return _export(source, model_dir, version, fmt)
    except BaseException:
        for folder in created:  # innermost first; only those still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


# --- the model to export --------------------------------------------------------


def _manifest(folder: Path) -> dict[str, Any] | None:
    """A compile or fit output's ``fusec.json`` as a dict, or None when it cannot be read as one."""
    try:
        with (folder / "fusec.json").open("rb") as fh:
            text = fh.read(_MANIFEST_LIMIT + 1)
        doc = json.loads(text.decode("utf-8")) if len(text) <= _MANIFEST_LIMIT else None
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("name"), str) else None


def _spec_order(doc: dict[str, Any]) -> tuple[str, ...]:
    """The input and output names the manifest's signature lists, in the spec's order."""
    sig = doc.get("signature")
    if not isinstance(sig, dict):
        return ()
    parts = [sig.get("inputs"), sig.get("outputs")]
    return tuple(str(key) for part in parts if isinstance(part, dict) for key in part)


def _source(path: Path) -> _Source:
    """What ``path`` names: a compile or fit output folder, or a ``.keras`` archive.

    Raises:
        ExportError: it does not exist, or is neither.
    """
    if not (path.exists() or path.is_symlink()):
        raise fail(f"`{path}` does not exist", _USAGE)
    if path.is_dir():
        doc = _manifest(path)
        if doc is None:
            raise fail(
                f"`{path}` is not a fusec compile or fit output (no readable fusec.json naming the model)", _USAGE
            )
        name = doc["name"]
        saved = path / "saved_model"
        archive = path / f"{name}.keras" if _NAME.fullmatch(name) else None
        if (saved / "saved_model.pb").is_file():
            return _Source(name, saved, None, _spec_order(doc))
        if archive is not None and archive.is_file():
            return _Source(name, None, archive, _spec_order(doc))
        raise fail(
            f"`{path}` holds no SavedModel (`saved_model/saved_model.pb`) and no `{printable(name)}.keras` archive",
            "compile (or fit) the spec again with `--format all`",
        )
    if path.suffix != ".keras" or not path.is_file():
        raise fail(f"`{path}` is not a .keras archive or a fusec output folder", _USAGE)
    return _Source(path.stem, None, path)


def _check_name(name: str, default: bool, model_path: Path) -> str:
    """The model's folder name, if it is one plain folder name that fits the file system.

    Raises:
        ExportError: it is empty, has a separator or a leading dot, or is too long.
    """
    where = f"the name of `{model_path}`" if default else "--name"
    if not _NAME.fullmatch(name) or len(name) > 200:
        raise fail(
            f"{where}, `{printable(name)}`, is not a plain folder name",
            "give --name with letters, digits, `_`, `-` and `.` (not first), at most 200 characters",
        )
    return name


# --- the serving folder --------------------------------------------------------


def _check_folder(folder: Path, what: str) -> None:
    """``folder`` is a folder or missing, and its nearest existing ancestor is a writable folder.

    Raises:
        ExportError: naming what is wrong and where.
    """
    try:
        st: os.stat_result | None = os.stat(folder)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise fail(f"{what} `{folder}` cannot be read: {exc.strerror or exc}", "choose another --serving-dir") from None
    if st is not None and not os.path.isdir(folder):
        raise fail(f"{what} `{folder}` is {files.describe(st)}, not a folder", "choose another --serving-dir")
    ancestor = files.existing_ancestor(folder)
    if not ancestor.is_dir():
        raise fail(f"{what} `{folder}` lies under `{ancestor}`, which is not a folder", "choose another --serving-dir")
    if not files.writable(ancestor):
        raise fail(f"the folder `{ancestor}` is not writable", "choose a writable --serving-dir")


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return those this call created, innermost first.

    Raises:
        ExportError: a folder cannot be created (those made so far are removed).
    """
    missing: list[Path] = []
    probe = folder
    while not (probe.exists() or probe.is_symlink()):
        missing.append(probe)
        probe = probe.parent
    created: list[Path] = []
    for made in reversed(missing):
        try:
            made.mkdir()
            created.insert(0, made)
        except FileExistsError:
            continue  # made by someone else meanwhile: theirs, not ours to remove
        except OSError as exc:
            for done in created:
                with contextlib.suppress(OSError):
                    done.rmdir()
            raise fail(
                f"cannot create the folder `{made}`: {exc.strerror or exc}", "choose another --serving-dir"
            ) from None
    return created


def _versions(model_dir: Path) -> dict[int, str]:
    """The numbered entries of ``model_dir``: number -> name (TF Serving reads ``007`` as 7).

    Numbers past ``MAX_VERSION`` are left out: TF Serving reads versions as
    64-bit numbers and cannot serve them, so they count as any other name.
    """
    try:
        names = os.listdir(model_dir)
    except FileNotFoundError:
        return {}
    numbers = {int(n): n for n in names if _VERSION.fullmatch(n)}  # a file name has at most 255 digits
    return {number: n for number, n in numbers.items() if number <= MAX_VERSION}


def _refuse_taken(model_dir: Path, version: int) -> None:
    """Refuse a version number that an entry of ``model_dir`` already has.

    Raises:
        ExportError: naming the entry.
    """
    taken = _versions(model_dir).get(version)
    if taken is not None:
        raise fail(
            f"version {version} already exists: `{model_dir / taken}`",
            "give another --version, or leave it out to take the next free number; fusec never overwrites a version",
        )


def _next_version(model_dir: Path) -> int:
    """One more than the largest numbered entry of ``model_dir`` (1 when there is none).

    Raises:
        ExportError: that entry is already ``MAX_VERSION``, the largest TF Serving reads.
    """
    versions = _versions(model_dir)
    largest = max(versions, default=0)
    if largest >= MAX_VERSION:
        raise fail(
            f"the next version of `{model_dir}` would be {largest + 1}, past {MAX_VERSION}, "
            f"the largest TF Serving reads (version `{versions[largest]}` is there)",
            "give a free --version below it, or renumber the versions in that folder",
        )
    return largest + 1


# --- writing and placing a version ------------------------------------------------


def _export(source: _Source, model_dir: Path, version: int | None, fmt: str) -> Exported:
    """Write the version in a staging folder inside ``model_dir`` and rename it into place."""
    container = Path(tempfile.mkdtemp(prefix=".fusec-export-", dir=model_dir))
    try:
        stage = container / "version"
        stage.mkdir()
        inputs, outputs = _write(source, container, stage, fmt)
        os.chmod(stage, 0o755)
        number = _place(stage, model_dir, version)
        return Exported(model_dir / str(number), number, model_dir.name, fmt, inputs, outputs)
    except OSError as exc:  # disk full, permissions, a folder that vanished...
        raise fail(
            f"cannot write in `{model_dir}`: {exc.strerror or exc}",
            "nothing was exported; free space or fix permissions",
        ) from None
    finally:
        shutil.rmtree(container, ignore_errors=True)


def _write(source: _Source, container: Path, stage: Path, fmt: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Fill ``stage`` in format ``fmt``; return the signature's input and output names."""
    saved = source.saved_model
    if saved is None:
        from ..keras.load import load_keras
        from ..keras.save.artifacts import export_saved_model

        assert source.archive is not None
        model = load_keras(source.archive)
        saved = container / "saved_model"
        with contextlib.redirect_stdout(None):
            export_saved_model(model, saved)
        order = tuple(t.name for t in model.inputs) + tuple(model.output_names)
    else:
        order = source.order
    inputs, outputs = read_signature(saved)
    WRITERS[fmt](saved, stage)
    if fmt == "savedmodel" and source.listing is not None:  # the copy served is the one checked
        check_copy(stage, source.listing, saved)
    return _ordered(inputs, order), _ordered(outputs, order)


def _ordered(names: list[str], order: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` in the spec's order where it knows them, the rest after them, sorted."""
    rank = {n: i for i, n in enumerate(order)}
    return tuple(sorted(names, key=lambda n: (rank.get(n, len(rank)), n)))


def _place(stage: Path, model_dir: Path, version: int | None) -> int:
    """Rename ``stage`` to its version number, never onto an existing entry; return the number.

    An asked-for version that appeared meanwhile is refused; the next free
    number is looked up again when another export took it.

    Raises:
        ExportError: the version exists (or kept being taken).
    """
    for _ in range(_TRIES):
        number = _next_version(model_dir) if version is None else version
        if version is not None:
            _refuse_taken(model_dir, version)
        if _rename_new(stage, model_dir / str(number)):
            return number
        if version is not None:
            break
    asked = f"version {version}" if version is not None else "the next free version"
    raise fail(
        f"{asked} of `{model_dir}` was taken by another export while this one ran",
        "run the export again; nothing was written",
    )


def _rename_new(stage: Path, target: Path) -> bool:
    """Rename ``stage`` to ``target`` if nothing is there; False if something is (or appeared)."""
    try:
        if files.renameat2(stage, target, files.RENAME_NOREPLACE):
            return True
        if target.exists() or target.is_symlink():  # no renameat2 here: look, then rename
            return False
        os.rename(stage, target)  # a folder onto a missing name; a non-empty one there makes it fail
        return True
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
