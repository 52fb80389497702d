"""Which files a data argument names, in which format, and the hash that identifies them.

A data argument is a file (its extension gives the format), a glob
(``data/train-*.tfrecord``: the matching files, sorted by name) or a folder
(its files with a supported extension; hidden files and ``_SUCCESS``-style
markers are skipped). Every file of one source has one format.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import did_you_mean, printable, quote_names
from .findings import DataError

#: Formats by file extension (lower case).
EXTENSIONS: dict[str, str] = {
    ".npz": "npz",
    ".csv": "csv",
    ".parquet": "parquet",
    ".tfrecord": "tfrecord",
    ".tfrecords": "tfrecord",
    ".tfrec": "tfrecord",
}
_GLOB = frozenset("*?[")


def supported() -> str:
    """``.npz, .csv, ...`` for messages."""
    return ", ".join(EXTENSIONS)


def _fail(given: str, message: str, hint: str = "") -> DataError:
    return DataError.single((), message, hint, "file", file=given)


def format_of(path: Path, given: str) -> str:
    """The format of one file, by extension."""
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        shown = f"`{path.suffix}`" if path.suffix else "no extension"
        raise _fail(given, f"unknown data format ({shown})", f"training data is one of {supported()}")
    return fmt


def _missing(path: Path, given: str) -> DataError:
    """Nothing readable at ``path``: a link that loops or leads nowhere, or no such name (and the names near it)."""
    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as e:
            if e.errno == errno.ELOOP:
                return _fail(
                    given, "a symbolic link that never resolves: it loops back to itself", "point it at a file"
                )
        target = printable(os.readlink(path))
        return _fail(given, f"a symbolic link to `{target}`, which does not exist", "point it at a file")
    parent = path.parent
    near: list[str] = []
    if parent.is_dir():
        try:
            near = did_you_mean(path.name, [p.name for p in parent.iterdir() if p.name != path.name])
        except OSError:
            near = []
    hint = f"did you mean {quote_names([str(parent / n) for n in near])}?" if near else ""
    return _fail(given, "no such file or folder", hint)


def _folder(path: Path, given: str) -> list[Path]:
    try:
        entries = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    except OSError as e:
        raise _fail(given, f"cannot list the folder: {e.strerror or e}") from None
    found = [p for p in entries if p.suffix.lower() in EXTENSIONS]
    if not found:
        raise _fail(given, "the folder holds no data files", f"put {supported()} files in it, or name one file")
    return found


def resolve(data: str | os.PathLike[str]) -> tuple[tuple[Path, ...], str]:
    """The files a data argument names and their one format.

    Args:
        data: a file, a glob or a folder.

    Returns:
        (the files, sorted by name for a glob or folder; the format).

    Raises:
        DataError: (code ``file``) nothing there, an unknown extension, a
            folder without data files, files of several formats.
    """
    given = os.fspath(data)
    if not given:
        raise _fail(given, "an empty path names no data", "give a file, a glob or a folder")
    try:
        files = _files(Path(given), given)
    except OSError as e:  # a name too long, a folder that cannot be searched...
        raise _fail(given, f"cannot be read: {e.strerror or e}", "check the path") from None
    formats = {p: format_of(p, given) for p in files}
    kinds = sorted(set(formats.values()))
    if len(kinds) > 1:
        raise _fail(given, f"files of several formats ({', '.join(kinds)})", "one source holds files of one format")
    return tuple(files), kinds[0]


def _files(path: Path, given: str) -> list[Path]:
    """The files a file, glob or folder argument names (OSError when the path itself cannot be looked at)."""
    if _GLOB & set(given) and not path.exists():
        files = sorted(Path(p) for p in glob.glob(given) if Path(p).is_file())
        if not files:
            raise _fail(given, "no file matches the pattern", f"training data is one of {supported()}")
    elif path.is_dir():
        files = _folder(path, given)
    elif path.exists():
        if not path.is_file():
            raise _fail(given, "not a regular file")
        files = [path]
    else:
        raise _missing(path, given)
    return files


def digest(paths: Sequence[Path], given: str) -> str:
    """SHA-256 of a file's bytes; for several files, of their sorted names (relative) and hashes.

    Raises:
        DataError: (code ``file``) a file cannot be read.
    """
    hashes = []
    for p in paths:
        try:
            with p.open("rb") as f:
                hashes.append(hashlib.file_digest(f, "sha256").hexdigest())
        except OSError as e:
            raise DataError.single((), f"cannot read `{p}`: {e.strerror or e}", "", "file", file=given) from None
    if len(paths) == 1:
        return hashes[0]
    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    lines = sorted(f"{p.relative_to(root).as_posix()}\t{h}\n" for p, h in zip(paths, hashes, strict=True))
    return hashlib.sha256("".join(lines).encode()).hexdigest()
