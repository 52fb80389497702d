"""The artifacts: a SavedModel, a ``.keras`` archive, the spec and a manifest, staged then swapped into place."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import files
from ...errors import printable
from ...static import budget
from ...static.archive import input_files
from ...static.check import Checked
from . import swap
from .destination import inspect_destination, make_parents, remove_empty
from .owner import KeyUnavailable, user_key, write_owner

FORMATS = ("all", "savedmodel", "keras")
MANIFEST = "fusec.json"


@dataclass(frozen=True)
class Artifacts:
    """Where a compile put things, and anything the user should know about it."""

    root: Path
    saved_model: Path | None
    keras: Path | None
    spec: Path
    notes: tuple[str, ...] = ()


def signature_of(model: Any) -> dict[str, Any]:
    """Inputs and outputs of the serving signature: name -> shape and dtype."""

    def spec(t: Any) -> dict[str, Any]:
        return {"shape": list(t.shape), "dtype": str(t.dtype)}

    return {
        "inputs": {t.name: spec(t) for t in model.inputs},
        "outputs": {name: spec(t) for name, t in zip(model.output_names, model.outputs, strict=True)},
    }


def export_saved_model(model: Any, folder: Path) -> None:
    """Write a SavedModel whose ``serving_default`` is the spec's interface.

    The signature takes one argument per model input, named after it, and
    returns a dict keyed by the output names. Keras's own ``model.export``
    would name a list model's results ``output_0``, ``output_1``..., so the
    endpoint is declared here, with Keras's ``ExportArchive``.
    """
    import tensorflow as tf
    from keras.export import ExportArchive

    names = list(model.output_names)
    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]

    @tf.function(input_signature=specs, autograph=False)  # plain Python: nothing for autograph to convert
    def serve(*args: Any) -> dict[str, Any]:
        result = model(list(args), training=False)
        if isinstance(result, dict):
            return {name: result[name] for name in names}
        return dict(zip(names, result, strict=True))

    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    archive.write_out(str(folder), verbose=False)


def archive_name(name: str) -> str:
    """The ``.keras`` archive's file name in an output folder."""
    return f"{name}.keras"


# long: the staging, swap and clean-up steps in one place, with the docstring of the output layout
def save_artifacts(
    model: Any,
    checked: Checked,
    out: str | Path,
    fmt: str = "all",
    extra: Mapping[str, bytes] | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> Artifacts:
    """Write the SavedModel, the .keras archive, the spec, a manifest and the ownership record.

    Layout of ``out``: ``saved_model/`` (``serving_default`` signature keyed
    by the spec's input and output names), ``<name>.keras``, ``spec.json``
    (the spec's exact bytes), ``spec.json.sha256``, ``fusec.json`` (versions,
    hash, signature, parameter counts) and ``fusec.owner.json`` (the signed
    listing of all the rest).

    Args:
        model: the built Keras model.
        checked: the checked spec it came from.
        out: the output folder; replaced only when everything was written,
            and only if it is new, empty, or fusec's own output unchanged.
        fmt: ``all``, ``savedmodel`` or ``keras``.
        extra: more files for the folder, name -> bytes (``fusec fit``'s
            history.json and history.png).
        manifest: more keys for ``fusec.json`` (``fusec fit``'s ``training``).

    Returns:
        The paths written, and notes for the user (an output that could not
        be signed, entries kept aside).

    Raises:
        OutputError: the destination cannot be written or replaced, or
            changed while the compile ran (then nothing was replaced).
    """
    out = Path(out).absolute()
    inputs = input_files(checked)
    _refuse_early(out, inputs, checked.name, fmt)
    key, notes = _signing_key(out)
    created = make_parents(out.parent)
    container: Path | None = None
    try:
        root = _stage_root(out, checked, key)
        container, stage = swap.make_stage(root, key)
        written = _write_all(model, checked, stage, fmt, manifest or {})
        for name, content in (extra or {}).items():
            (stage / name).write_bytes(content)
        new_entries = write_owner(stage, key)
        os.chmod(stage, 0o755)
        dest = inspect_destination(out, inputs)  # the last look before the swap; contents are read after it
        notes += swap.swap_into_place(stage, dest, new_entries)
    except BaseException as exc:
        remove_empty(created)
        if isinstance(exc, OSError):  # disk full, permissions, a folder that vanished...
            raise files.output_error(
                out, f"cannot be written: {exc.strerror or exc}", "the previous output is unchanged"
            ) from exc
        raise
    finally:
        if container is not None:
            shutil.rmtree(container, ignore_errors=True)  # our private folder: only ours is left in it
    saved, keras_path = (out / p.name if p is not None else None for p in written)  # where the swap put them
    return Artifacts(out, saved, keras_path, out / "spec.json", tuple(notes))


def _refuse_early(out: Path, inputs: list[Path], name: str, fmt: str) -> None:
    """Refuse, before anything is written, a destination fusec may not write or an archive name too long for it."""
    inspect_destination(out, inputs, deep=False)
    if fmt in ("all", "keras") and files.too_long(out.parent, archive_name(name)):
        raise files.output_error(
            out,
            f"the archive name `{printable(archive_name(name))}` is longer than a file name may be",
            "give the spec a shorter `name`",
        )


def _signing_key(out: Path) -> tuple[bytes | None, list[str]]:
    """The per-user key (made if needed), or None with a note saying the output will not be signed."""
    try:
        return user_key(create=True), []
    except KeyUnavailable as exc:
        return None, [f"output `{out}` is not signed, so no later compile will replace it: fusec's key {exc}"]


def _stage_root(out: Path, checked: Checked, key: bytes | None) -> Path:
    """Where to stage (on the output's file system), once it has room and stale stages of ours are gone."""
    root = swap.stage_root(out)
    room = budget.disk_problem(budget.estimate(checked.shapes, checked.optimizer), root)
    if room is not None:
        raise files.output_error(out, room, "free disk space, or choose -o on another disk")
    for folder in {root, out.parent}:
        swap.clean_stale(folder, key)
    return root


def _write_all(
    model: Any, checked: Checked, stage: Path, fmt: str, more: Mapping[str, Any]
) -> tuple[Path | None, Path | None]:
    """Write every artifact into ``stage``; return the SavedModel folder and the archive written (or None)."""
    from ..tf import stage as tf_stage

    saved = keras_path = None
    if fmt in ("all", "savedmodel"):
        saved = stage / "saved_model"
        with tf_stage("savedmodel"), contextlib.redirect_stdout(None):
            export_saved_model(model, saved)
    if fmt in ("all", "keras"):
        if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
            # Save the optimizer's slots too, so reloading for more training
            # restores a complete optimizer instead of warning and skipping it.
            model.optimizer.build(model.trainable_variables)
        keras_path = stage / archive_name(checked.name)
        with tf_stage("keras", archive_name(checked.name)):
            model.save(str(keras_path))
    (stage / "spec.json").write_text(checked.spec.text, encoding="utf-8")
    (stage / "spec.json.sha256").write_text(f"{checked.spec.sha256}  spec.json\n", encoding="utf-8")
    formats = [p for p, written in (("saved_model", saved), ("keras", keras_path)) if written]
    (stage / MANIFEST).write_text(
        json.dumps({**_manifest(model, checked, formats), **more}, indent=2) + "\n", encoding="utf-8"
    )
    return saved, keras_path


def _manifest(model: Any, checked: Checked, formats: list[str]) -> dict[str, Any]:
    """``fusec.json``: the versions that compiled the spec, its hash, the serving signature and the counts."""
    import keras
    import tensorflow as tf

    from ...version import __version__

    return {
        "fusec": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "name": checked.name,
        "spec_sha256": checked.spec.sha256,
        "formats": formats,
        "signature": signature_of(model),
        "params": {"trainable": checked.totals.trainable, "non_trainable": checked.totals.non_trainable},
    }
