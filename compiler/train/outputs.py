"""The folders ``fusec fit`` writes, checked together before any training work.

``-o`` (replaced whole at the end), the backup folder (deleted at the end),
``--tensorboard`` and ``--serving-dir`` (written into) must be four
separate places: none the same as another, none inside another, so the end
of a run never deletes what it wrote itself. The output and the backup
folder may hold nothing the run reads (the spec, its sub-models, the
training and validation data). ``--tensorboard`` and ``--serving-dir`` must
be folders (or not exist yet) under a writable folder. What each of ``-o``
and the backup folder may be on its own is checked by their owners
(``keras.pipeline.check_output``, ``backup.inspect_backup``).
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .. import files
from ..errors import OutputError, printable
from ..static.check import Checked

OUTPUT, BACKUP, TENSORBOARD, SERVING = "-o", "--backup-dir", "--tensorboard", "--serving-dir"
#: How a folder's fate at the end of the run reads, for a message about a folder inside it.
_FATE = {
    OUTPUT: "the output folder `{}`, which fusec replaces whole at the end",
    BACKUP: "the backup folder `{}`, which fusec deletes when the run ends",
    TENSORBOARD: "the TensorBoard folder `{}`",
    SERVING: "the serving folder `{}`",
}
_APART = "give -o, --backup-dir, --tensorboard and --serving-dir separate folders, none inside another"


def _fail(message: str, hint: str) -> OutputError:
    return OutputError.single((), message, hint, "output")


def _real(path: Path) -> Path:
    """The path with every link resolved (as far as they resolve; a loop stays as it is)."""
    return Path(os.path.realpath(path))


def check_outputs(checked: Checked, folders: dict[str, Path | None], data: Sequence[str]) -> None:
    """Refuse, before any training work, output folders that overlap, or that hold what the run reads.

    Args:
        checked: the checked spec (its file and sub-models are read).
        folders: ``-o``, ``--backup-dir``, ``--tensorboard``, ``--serving-dir``
            to the folder each names (None: not written).
        data: the ``--data`` and ``--validation`` arguments given.

    Raises:
        OutputError: two folders are the same or one lies inside another;
            a TensorBoard or serving folder is not a folder (a file, a
            FIFO, a device, a dangling link) or cannot be written; the
            output or backup folder holds the spec, a sub-model or data.
        DataError: a data argument names no file.
    """
    given = {option: folder for option, folder in folders.items() if folder is not None}
    _apart(given)
    for option in (TENSORBOARD, SERVING):
        if option in given:
            _usable_folder(option, given[option])
    _reads_outside(checked, {k: v for k, v in given.items() if k in (OUTPUT, BACKUP)}, data)


def _apart(folders: dict[str, Path]) -> None:
    """No two of the folders the same, none inside another."""
    real = {option: _real(folder) for option, folder in folders.items()}
    for a, b in itertools.permutations(folders, 2):
        if real[a] == real[b] and a < b:
            raise _fail(
                f"{a} `{printable(str(folders[a]))}` and {b} `{printable(str(folders[b]))}` are the same folder",
                _APART,
            )
        if real[a] != real[b] and files.inside(real[a], real[b]):
            outer = _FATE[b].format(printable(str(folders[b])))
            raise _fail(
                f"{a} `{printable(str(folders[a]))}` is inside {outer}",
                _APART,
            )


def _usable_folder(option: str, folder: Path) -> None:
    """A folder fit writes into: an existing folder (a link to one counts), or a path a writable folder can take."""
    shown = printable(str(folder))
    try:
        st: os.stat_result | None = os.stat(folder)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise _fail(f"{option} `{shown}` cannot be used: {exc.strerror or exc}", f"choose another {option}") from None
    if st is None and os.path.islink(folder):
        raise _fail(
            f"{option} `{shown}` is a symbolic link to `{printable(os.readlink(folder))}`, which does not exist",
            f"remove the link, or choose another {option}",
        )
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise _fail(f"{option} `{shown}` is {files.describe(st)}, not a folder", f"choose a folder path with {option}")
    ancestor = folder if st is not None else files.existing_ancestor(folder)
    if not ancestor.is_dir():
        raise _fail(
            f"{option} `{shown}` lies under `{printable(str(ancestor))}`, which is not a folder",
            f"choose a folder path with {option}",
        )
    if not files.writable(ancestor):
        raise _fail(
            f"{option} `{shown}`: the folder `{printable(str(ancestor))}` is not writable", f"choose another {option}"
        )


def _reads_outside(checked: Checked, folders: dict[str, Path], data: Sequence[str]) -> None:
    """The output and backup folders hold none of the files the run reads."""
    from ..data.paths import resolve
    from ..static.archive import input_files

    reads = [*input_files(checked), *(f for arg in data for f in resolve(arg)[0])]
    for option, folder in folders.items():
        root = _real(folder)
        for path in reads:
            if files.inside(_real(path), root):
                what = "is a file" if _real(path) == root else f"holds `{printable(str(path))}`, a file"
                raise _fail(
                    f"{option} `{printable(str(folder))}` {what} this fit reads",
                    f"choose another {option}, outside the folders that hold the spec and the data",
                )
