"""Writing a diagram: only regular files, never an input, atomically (no TensorFlow).

``check_target`` refuses an output render must not write before Graphviz
runs; ``write_atomic`` writes through a temporary file and one rename that
never replaces anything but the regular file checked a moment before.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .. import files
from ..errors import OutputError, printable


def _out_error(message: str, hint: str = "choose another output file with -o") -> OutputError:
    return OutputError.single((), message, hint, "output")


def check_target(path: Path, inputs: Sequence[Path] = (), derived: bool = False) -> os.stat_result | None:
    """Refuse an output file render must not write; write nothing.

    Render writes only regular files: a new one, or one replacing a regular
    file that is none of its inputs.

    Args:
        path: the output file.
        inputs: the files being read (the spec and the files it names).
        derived: the name was made from the spec's (no -o was given).

    Returns:
        The ``lstat`` of the regular file to replace, or None when there is none.

    Raises:
        OutputError: the name is too long; the path is a folder, a link, a
            device, a FIFO or a socket; it is the spec or a file the spec
            reads; its folder is missing or not writable.
    """
    shown = printable(str(path))
    folder = path.parent
    if files.too_long(folder, path.name):
        size = len(os.fsencode(path.name))
        if derived:
            raise _out_error(
                f"the default output name `{shown}` (the spec's file name with the format's extension) is "
                f"{size} bytes, longer than a file name may be",
                "pass -o FILE with a shorter name",
            )
        raise _out_error(f"output `{shown}`: the file name is {size} bytes, longer than a file name may be")
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise _out_error(f"output `{shown}`: `{printable(str(folder))}` is not a folder") from None
    except OSError as exc:
        raise _out_error(f"output `{shown}` cannot be inspected: {exc.strerror or exc}") from None
    if st is not None:
        _replaceable(path, st, inputs)
    if not folder.is_dir():
        raise _out_error(
            f"output `{shown}`: the folder `{printable(str(folder))}` does not exist",
            "create it first, or choose another output file with -o",
        )
    if not files.writable(folder):
        raise _out_error(
            f"output `{shown}`: the folder `{printable(str(folder))}` is not writable",
            "choose a writable location with -o",
        )
    return st


def write_atomic(path: Path, data: bytes, inputs: Sequence[Path] = (), derived: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in its folder and one rename.

    A failure (or a kill) leaves either the old file or the new one, never a
    half-written file. Only a regular file is ever replaced: a new file is
    renamed into place with ``RENAME_NOREPLACE``, and an existing one is
    swapped out with ``RENAME_EXCHANGE`` and removed only if it is the
    regular file checked a moment before (else it is swapped back).

    Raises:
        OutputError: see ``check_target``; or the folder refused the write,
            or the path changed while it was written.
    """
    check_target(path, inputs, derived)
    shown = printable(str(path))
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=".fusec-render-", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o644)
        before = check_target(path, inputs, derived)  # the last look before the rename
        if before is None:
            try:
                done = files.renameat2(tmp, path, files.RENAME_NOREPLACE)
            except FileExistsError:
                raise _out_error(f"output `{shown}` was created by another process while fusec wrote it") from None
            if not done:
                if os.path.lexists(path):  # no renameat2 here: check, then rename (a narrow race)
                    raise _out_error(f"output `{shown}` was created by another process while fusec wrote it")
                os.rename(tmp, path)
        elif files.exchange(tmp, path):
            after = os.lstat(tmp)  # what was at `path`
            if not (stat.S_ISREG(after.st_mode) and os.path.samestat(after, before)):
                files.exchange(tmp, path)
                raise _out_error(f"output `{shown}` was replaced by another process while fusec wrote it")
            tmp.unlink()  # the file just replaced
        else:
            os.replace(tmp, path)  # no renameat2 here: checked a moment ago (a narrow race)
        tmp = None
    except OSError as exc:
        raise _out_error(
            f"cannot write `{shown}`: {exc.strerror or exc}", "choose a writable location with -o"
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _replaceable(path: Path, st: os.stat_result, inputs: Sequence[Path]) -> None:
    """Refuse an existing output that is not a regular file, or that is one of the files being read."""
    shown = printable(str(path))
    if stat.S_ISDIR(st.st_mode):
        raise _out_error(f"output `{shown}` is a folder", "give a file name with -o")
    if not stat.S_ISREG(st.st_mode):
        raise _out_error(
            f"output `{shown}` is {files.describe(st)}, not a regular file: fusec writes only regular files",
            "choose a regular file with -o, or -o - to write to standard output",
        )
    resolved = path.resolve()
    for i, f in enumerate(inputs):
        try:
            same = f.resolve() == resolved or os.path.samestat(os.stat(f), st)
        except OSError:
            continue
        if same:
            what = "the spec being drawn" if i == 0 else f"a file the spec reads (`{printable(str(f))}`)"
            raise _out_error(f"output `{shown}` is {what}")
