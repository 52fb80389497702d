"""Save stage: write the compiled artifacts atomically.

Everything is written into a staging folder on the same filesystem, then
swapped into place in one rename. A compile that fails, or is killed, never
leaves a half-written output and never damages the previous one; stale
staging folders of killed runs are removed by the next run.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .check import Checked
from .errors import OutputError

FORMATS = ("all", "savedmodel", "keras")
MANIFEST = "fusec.json"
_STAGE_PREFIX = ".fusec-stage-"


@dataclass(frozen=True)
class Artifacts:
    """Where a compile put things."""

    root: Path
    saved_model: Path | None
    keras: Path | None
    spec: Path


def _error(out: Path, message: str, hint: str) -> OutputError:
    return OutputError.single((), f"output `{out}`: {message}", hint, "output")


def _is_fusec_output(out: Path) -> bool:
    """Whether ``out`` holds a manifest fusec wrote (so fusec may replace the folder)."""
    manifest = out / MANIFEST
    try:
        if not manifest.is_file() or manifest.is_symlink() or manifest.stat().st_size > 1 << 20:
            return False
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("spec_sha256"), str) and "fusec" in doc


def _writable(folder: Path) -> bool:
    """Whether new entries can be made in ``folder``.

    Root passes every permission check, so for root a folder whose mode
    grants nobody write access counts as read-only too: fusec honours the
    mark rather than writing through it.
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not (hasattr(os, "geteuid") and os.geteuid() == 0 and not folder.stat().st_mode & 0o222)


def _existing_ancestor(path: Path) -> Path:
    while not (path.exists() or path.is_symlink()) and path != path.parent:
        path = path.parent
    return path


def check_destination(out: Path) -> None:
    """Refuse destinations fusec must not write or replace; write nothing.

    Raises:
        OutputError: the path is a file or a link, is a non-empty folder fusec
            did not write, or its folder (or the nearest existing ancestor,
            when the folder is still to be made) is not a writable folder.
    """
    try:
        if out.exists() or out.is_symlink():
            if not out.is_dir() or out.is_symlink():
                raise _error(out, "exists and is not a folder", "choose a folder path with -o")
            if any(out.iterdir()) and not _is_fusec_output(out):
                raise _error(
                    out,
                    "is a non-empty folder that fusec did not write",
                    "choose a new or empty folder; fusec only replaces its own outputs",
                )
        ancestor = _existing_ancestor(out.parent)
        if not ancestor.is_dir():
            raise _error(out, f"`{ancestor}` is not a folder", "choose a folder path with -o")
        if not _writable(ancestor):
            raise _error(out, f"the folder `{ancestor}` is not writable", "choose a writable location with -o")
    except OSError as exc:
        raise _error(out, f"cannot be inspected: {exc.strerror or exc}", "choose another path with -o") from None


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return those created, innermost first."""
    missing = []
    while not (folder.exists() or folder.is_symlink()):
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        try:
            made.mkdir()
        except FileExistsError:
            pass
        except OSError as exc:
            _remove_empty(missing)
            raise _error(
                made, f"cannot create the folder: {exc.strerror or exc}", "choose another path with -o"
            ) from None
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _stage_root(out: Path) -> Path:
    """The system temp folder when on the output's filesystem, else the output's parent."""
    tmp = Path(tempfile.gettempdir())
    try:
        if tmp.stat().st_dev == out.parent.stat().st_dev:
            return tmp
    except OSError:
        pass
    return out.parent


def _clean_stale(root: Path) -> None:
    """Remove staging folders left by killed compiles (their process is gone), ours only."""
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    for stage in root.glob(f"{_STAGE_PREFIX}*"):
        pid = stage.name.removeprefix(_STAGE_PREFIX).split("-", 1)[0]
        try:
            st = stage.lstat()
        except OSError:
            continue
        mine = uid is None or st.st_uid == uid
        if mine and stat.S_ISDIR(st.st_mode) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stage, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False if unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def _swap_into_place(stage: Path, out: Path) -> None:
    if not out.exists():
        os.replace(stage, out)
        return
    if _exchange(stage, out):
        shutil.rmtree(stage, ignore_errors=True)  # stage now holds the old output
        return
    backup = stage.with_name(stage.name + "-old")
    os.replace(out, backup)
    try:
        os.replace(stage, out)
    except OSError:
        os.replace(backup, out)
        raise
    shutil.rmtree(backup, ignore_errors=True)


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

    @tf.function(input_signature=specs)
    def serve(*args: Any) -> dict[str, Any]:
        result = model(list(args), training=False)
        if isinstance(result, dict):
            return {name: result[name] for name in names}
        return dict(zip(names, result, strict=True))

    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    archive.write_out(str(folder), verbose=False)


def save_artifacts(model: Any, checked: Checked, out: str | Path, fmt: str = "all") -> Artifacts:
    """Write the SavedModel, the .keras archive, the spec and a manifest.

    Layout of ``out``: ``saved_model/`` (``serving_default`` signature keyed
    by the spec's input and output names), ``<name>.keras``, ``spec.json``
    (the spec's exact bytes), ``spec.json.sha256`` and ``fusec.json`` (versions,
    hash, signature, parameter counts).

    Args:
        model: the built Keras model.
        checked: the checked spec it came from.
        out: the output folder; replaced only when everything was written.
        fmt: ``all``, ``savedmodel`` or ``keras``.

    Returns:
        The paths written.

    Raises:
        OutputError: the destination cannot be written or replaced.
    """
    import keras

    from . import __version__

    out = Path(out).absolute()
    check_destination(out)
    created = _make_parents(out.parent)
    stage: Path | None = None
    try:
        root = _stage_root(out)
        for folder in {root, out.parent}:
            _clean_stale(folder)
        stage = Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-", dir=root))
        saved = keras_path = None
        if fmt in ("all", "savedmodel"):
            saved = stage / "saved_model"
            with contextlib.redirect_stdout(None):
                export_saved_model(model, saved)
        if fmt in ("all", "keras"):
            if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
                # Save the optimizer's slots too, so reloading for more training
                # restores a complete optimizer instead of warning and skipping it.
                model.optimizer.build(model.trainable_variables)
            keras_path = stage / f"{checked.name}.keras"
            model.save(str(keras_path))
        (stage / "spec.json").write_text(checked.spec.text, encoding="utf-8")
        (stage / "spec.json.sha256").write_text(f"{checked.spec.sha256}  spec.json\n", encoding="utf-8")
        import tensorflow as tf

        manifest = {
            "fusec": __version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "name": checked.name,
            "spec_sha256": checked.spec.sha256,
            "formats": [p for p in ("saved_model", "keras") if (saved if p == "saved_model" else keras_path)],
            "signature": signature_of(model),
            "params": {"trainable": checked.totals.trainable, "non_trainable": checked.totals.non_trainable},
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.chmod(stage, 0o755)  # mkdtemp makes it 0700
        _swap_into_place(stage, out)
    except BaseException as exc:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        _remove_empty(created)
        if isinstance(exc, OSError):  # disk full, permissions, a folder that vanished...
            raise _error(out, f"cannot be written: {exc.strerror or exc}", "the previous output is unchanged") from exc
        raise
    return Artifacts(
        out,
        out / "saved_model" if saved else None,
        out / f"{checked.name}.keras" if keras_path else None,
        out / "spec.json",
    )
