"""The spec and its weights file written atomically: both or neither, never a damaged earlier output.

Both are written to temporary files in the spec's folder first; each then
takes its place in one rename (``RENAME_NOREPLACE`` for a new file,
``RENAME_EXCHANGE`` over an earlier one, which is removed only once both are
in place). A failure puts every earlier file back.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import files
from ..errors import OutputError, printable
from .weights import npz_bytes


def _target_ok(path: Path, sources: Sequence[Path]) -> bool:
    """Whether ``path`` may be written: absent, or a regular file that is none of the sources.

    Raises:
        OutputError: a folder, a link, a device; a source; a missing or read-only folder; a name too long.
    """
    shown = printable(str(path))
    if files.too_long(path.parent, path.name):
        raise files.output_error(Path(shown), "the file name is longer than a file name may be", "use a shorter name")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise files.output_error(Path(shown), f"cannot be inspected: {exc.strerror or exc}", "") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise files.output_error(
                Path(shown), f"is {files.describe(st)}; fusec replaces only a regular file", "choose another -o"
            )
        for src in sources:
            try:
                if os.path.samestat(st, os.stat(src)):
                    raise files.output_error(Path(shown), "is the model being imported", "choose another -o")
            except OSError:
                continue
    if not path.parent.is_dir():
        raise files.output_error(Path(shown), f"the folder `{printable(str(path.parent))}` does not exist", "")
    if not files.writable(path.parent):
        raise files.output_error(Path(shown), "its folder is not writable", "choose another -o")
    return st is not None


def _temp(folder: Path, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(prefix=".fusec-import-", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp = Path(name)
    tmp.chmod(0o644)
    return tmp


def _place(tmp: Path, path: Path, existed: bool) -> bool:
    """Put ``tmp`` at ``path``; returns whether an earlier file now sits at ``tmp`` (to remove or restore)."""
    if existed and files.exchange(tmp, path):
        return True
    if existed:
        os.replace(tmp, path)
        return False
    try:
        done = files.renameat2(tmp, path, files.RENAME_NOREPLACE)
    except FileExistsError:
        raise files.output_error(path, "was created by another process while fusec wrote it", "") from None
    if not done:
        if os.path.lexists(path):
            raise files.output_error(path, "was created by another process while fusec wrote it", "")
        os.rename(tmp, path)
    return False


def write_outputs(
    spec: Path, text: str, weights: Path | None, arrays: dict[str, np.ndarray], sources: Sequence[Path]
) -> None:
    """Write the spec (and the weights file, when there are arrays) atomically, both or neither.

    Raises:
        OutputError: an output cannot be written; nothing is changed.
    """
    targets = [(spec, text.encode())]
    if weights is not None:
        if weights == spec:
            raise files.output_error(spec, "would be both the spec and its weights file", "name the spec *.json")
        targets.insert(0, (weights, npz_bytes(arrays)))
    existed = [_target_ok(path, sources) for path, _ in targets]
    temps: list[Path] = []
    placed: list[tuple[Path, Path, bool]] = []
    try:
        temps = [_temp(path.parent, data) for path, data in targets]
        for (path, _), tmp, was in zip(targets, temps, existed, strict=True):
            placed.append((path, tmp, _place(tmp, path, was)))
    except OSError as exc:
        _undo(placed)
        raise OutputError.single((), f"output `{printable(str(spec))}`: {exc.strerror or exc}", "", "output") from None
    except BaseException:
        _undo(placed)
        raise
    finally:
        for tmp in temps:  # not yet placed, or the earlier file it replaced
            tmp.unlink(missing_ok=True)


def _undo(placed: list[tuple[Path, Path, bool]]) -> None:
    """Put back what was replaced, remove what was new."""
    for path, tmp, old in reversed(placed):
        if old:
            files.exchange(tmp, path)
        else:
            path.unlink(missing_ok=True)
