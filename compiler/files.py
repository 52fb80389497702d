"""Output-file safety shared by ``fusec compile`` (keras/save) and ``fusec render`` (cli/render).

Plain operating-system checks with no TensorFlow and no fusec stage behind
them: whether a folder may be written, whether a name fits the file system,
what kind of thing a path is, and the ``renameat2`` calls that put a new
output in place without taking a path another process created meanwhile
(``RENAME_NOREPLACE``) or losing one it replaced (``RENAME_EXCHANGE``).

Callers look ``renameat2`` and ``exchange`` up on this module when they run
(``files.renameat2(...)``), so a test can stand in for either in one place.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from .errors import OutputError

#: What a file system allows in one name, when it cannot be asked.
NAME_MAX = 255
#: ``renameat2`` flags: fail if the target exists; swap the two paths.
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2

_libc: Any = None


def output_error(out: Path, message: str, hint: str) -> OutputError:
    """An ``OutputError`` about the output ``out``: ``output `OUT`: MESSAGE``."""
    return OutputError.single((), f"output `{out}`: {message}", hint, "output")


def writable(folder: Path) -> bool:
    """Whether new entries can be made in ``folder``.

    Root passes every permission check, so for root a folder whose mode
    grants nobody write access counts as read-only too: fusec honours the
    mark rather than writing through it.
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not (hasattr(os, "geteuid") and os.geteuid() == 0 and not folder.stat().st_mode & 0o222)


def existing_ancestor(path: Path) -> Path:
    """``path`` itself when something is there (a link counts), else its nearest ancestor that exists."""
    while not (path.exists() or path.is_symlink()) and path != path.parent:
        path = path.parent
    return path


def name_max(folder: Path) -> int:
    """The longest name, in bytes, the file system of ``folder`` (or its nearest existing ancestor) takes."""
    try:
        return int(os.pathconf(existing_ancestor(folder), "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def too_long(folder: Path, name: str) -> bool:
    """Whether ``name`` is longer than a file name in ``folder`` may be."""
    return len(os.fsencode(name)) > name_max(folder)


def describe(st: os.stat_result) -> str:
    """``a character device``, ``a FIFO (named pipe)``, ``a folder``... for what ``st`` describes."""
    for test, what in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(st.st_mode):
            return what
    return "not a regular file"


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both already resolved)."""
    return path == folder or folder in path.parents


def renameat2(a: Path, b: Path, flags: int) -> bool:
    """renameat2(a, b, flags); False where the call or the flag is not supported.

    Raises:
        OSError: the call failed (``FileExistsError`` under ``RENAME_NOREPLACE``).
    """
    import ctypes  # here, not at import: ctypes costs every command ~5 ms, and few write outputs

    global _libc
    if _libc is None:
        _libc = _load_libc()
    fn = getattr(_libc, "renameat2", None) if _libc else None
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):  # no such call, or the file system does not do this flag
        return False
    raise OSError(err, os.strerror(err), str(b))


def _load_libc() -> Any:
    """The C library's symbols (the process's own: no ``find_library``, which runs ``ldconfig``); False if none."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # no dlopen(NULL) here (Windows)
        return False


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False if unsupported."""
    return renameat2(a, b, RENAME_EXCHANGE)


def installed(*names: str) -> bool:
    """Whether top-level modules of these fixed names are installed, without importing them."""
    import pkgutil

    found = {m.name for m in pkgutil.iter_modules()}
    return all(name in found for name in names)
