"""The ownership record: a per-user key, and the signed listing of what fusec wrote.

Ownership cannot be believed from a file anyone could write. Each output
holds ``fusec.owner.json``: a random token and the listing of every entry
fusec wrote (relative path, and for files the size and SHA-256), signed with
an HMAC under a per-user key kept outside every output
(``$FUSEC_STATE_DIR/key``, else ``$XDG_STATE_HOME/fusec/key``, else
``~/.local/state/fusec/key``; mode 0600). An existing folder counts as
fusec's own only when that signature verifies and the folder holds nothing
but listed entries, unchanged (``verify_owned``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import printable

OWNER = "fusec.owner.json"
STATE_ENV = "FUSEC_STATE_DIR"
_OWNER_VERSION = 1
MAX_OWNER_BYTES = 4 << 20  # an ownership record is read only up to this size
MAX_ENTRIES = 100_000  # entries in one output (a SavedModel has a few dozen)
_KEY_BYTES = 32
_CHUNK = 1 << 20
#: open() flags for reading a file fusec checks: no links followed, no blocking on a FIFO
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_ONLY_OWN = "choose a new or empty folder with -o; fusec replaces only its own outputs, unchanged"


# --- the per-user key --------------------------------------------------------------


def state_dir() -> Path:
    """Where fusec keeps its per-user key: $FUSEC_STATE_DIR, $XDG_STATE_HOME/fusec or ~/.local/state/fusec."""
    given = os.environ.get(STATE_ENV)
    if given:
        return Path(given)
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "fusec"
    return Path.home() / ".local" / "state" / "fusec"


class KeyUnavailable(Exception):
    """No key can be read or made; the message says why."""


def _read_key(path: Path) -> bytes | None:
    """The key at ``path``; None when there is none. Refuses a key others could have read or written."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyUnavailable(f"`{path}` cannot be read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        uid = os.geteuid() if hasattr(os, "geteuid") else st.st_uid
        if not stat.S_ISREG(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077 or st.st_size != _KEY_BYTES:
            raise KeyUnavailable(
                f"`{path}` is not a private {_KEY_BYTES}-byte file of yours ({stat.filemode(st.st_mode)}); "
                "remove it and fusec makes a new one (outputs signed with the old one must then be removed by hand)"
            )
        data = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != _KEY_BYTES:
        raise KeyUnavailable(f"`{path}` changed while it was read")
    return data


def user_key(create: bool) -> bytes | None:
    """The per-user secret that signs ownership records.

    Args:
        create: make the key (and its folder, mode 0700) when there is none.

    Returns:
        The key, or None when there is none and ``create`` is false.

    Raises:
        KeyUnavailable: the key exists but is not private, or cannot be made.
    """
    try:
        folder = state_dir()
    except RuntimeError as exc:  # no home folder
        raise KeyUnavailable(f"has no folder ({exc}); set {STATE_ENV}") from None
    path = folder / "key"
    found = _read_key(path)
    if found is not None or not create:
        return found
    tmp = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=folder)  # mode 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(_KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another fusec made one first: use theirs
            os.link(tmp, path)
    except OSError as exc:
        raise KeyUnavailable(f"`{path}` cannot be made: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    key = _read_key(path)
    if key is None:
        raise KeyUnavailable(f"`{path}` vanished after it was made")
    return key


def sign(key: bytes, payload: Any) -> str:
    """The HMAC-SHA256 of ``payload`` (as canonical JSON) under ``key``, in hex."""
    data = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def same_mac(given: Any, want: str) -> bool:
    """Whether ``given`` (read from a file: any value) is the MAC ``want``, compared in constant time."""
    return isinstance(given, str) and hmac.compare_digest(given.encode("utf-8", "replace"), want.encode("ascii"))


# --- listing a folder ------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One entry under an output folder, as found on disk."""

    kind: str  # "d" folder, "f" regular file, "x" anything else (link, FIFO, device, socket)
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Entry:
        kind = "d" if stat.S_ISDIR(st.st_mode) else "f" if stat.S_ISREG(st.st_mode) else "x"
        return cls(kind, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def same(self, other: Entry) -> bool:
        """The same inode, unchanged (a write changes the change time, which nobody can set back)."""
        if self.kind != other.kind or (self.dev, self.ino) != (other.dev, other.ino):
            return False
        if self.kind != "f":
            return True
        return (self.size, self.mtime_ns, self.ctime_ns) == (other.size, other.mtime_ns, other.ctime_ns)


def _rel(parts: Sequence[str]) -> str:
    return "/".join(parts)


def walk(root: Path, limit: int) -> Iterator[tuple[str, Entry]]:
    """Every entry under ``root`` (not following links), sorted by path, at most ``limit`` of them.

    Folders come before their contents. Iterative, so a folder nested
    thousands deep cannot exhaust the stack; callers stop reading at the
    first entry they do not expect.
    """
    stack: list[tuple[str, ...]] = [()]
    count = 0
    while stack:
        parts = stack.pop()
        with os.scandir(root.joinpath(*parts)) as it:
            names = sorted(e.name for e in it)
        children = []
        for name in names:
            count += 1
            if count > limit:
                return
            sub = (*parts, name)
            entry = Entry.of(os.lstat(root.joinpath(*sub)))
            yield _rel(sub), entry
            if entry.kind == "d":
                children.append(sub)
        stack.extend(reversed(children))


def file_digest(path: Path, expect: Entry) -> str | None:
    """SHA-256 of a regular file, read without following links or blocking; None if it is not ``expect``."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not Entry.of(os.fstat(fh.fileno())).same(expect):
            return None
        h = hashlib.sha256()
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def listing(root: Path) -> tuple[list[list[Any]], dict[str, Entry]]:
    """What a freshly staged folder holds: the listing to sign, and the entries as found."""
    listed: list[list[Any]] = []
    found: dict[str, Entry] = {}
    for rel, entry in walk(root, MAX_ENTRIES):
        found[rel] = entry
        if entry.kind == "d":
            listed.append([rel, "d"])
        elif entry.kind == "f":
            digest = file_digest(root / rel, entry)
            if digest is None:
                raise OSError(errno.EIO, f"`{rel}` changed while it was listed")
            listed.append([rel, "f", entry.size, digest])
        else:
            raise OSError(errno.EINVAL, f"`{rel}` is not a regular file or folder")
    return listed, found


def write_owner(stage: Path, key: bytes | None) -> dict[str, Entry]:
    """Sign and write the ownership record of ``stage``; return every entry it then holds."""
    listed, found = listing(stage)
    payload = {"version": _OWNER_VERSION, "token": secrets.token_hex(16), "entries": listed}
    mac = sign(key, payload) if key is not None else None
    head = {k: v for k, v in payload.items() if k != "entries"} | {"mac": mac}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    rows = ",\n".join(f"  {json.dumps(e)}" for e in listed)
    (stage / OWNER).write_text("{\n" + "\n".join(lines) + f'\n "entries": [\n{rows}\n ]\n}}\n', encoding="utf-8")
    found[OWNER] = Entry.of(os.lstat(stage / OWNER))
    return found


# --- reading and verifying an ownership record ------------------------------------------

_NOT_OURS = "is a non-empty folder that fusec did not write"


class NotOwned(Exception):
    """The folder is not (or no longer) exactly what fusec wrote; the message says why."""

    def __init__(self, message: str, hint: str = _ONLY_OWN) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _read_record(out: Path) -> dict[str, Any]:
    """The ownership record's JSON, read with a size bound, without following links or blocking."""
    try:
        fd = os.open(out / OWNER, OPEN_FLAGS)
    except FileNotFoundError:
        raise NotOwned(f"{_NOT_OURS} (it has no `{OWNER}`)") from None
    except OSError as exc:
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` cannot be read: {exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is not a regular file)")
        data = fh.read(MAX_OWNER_BYTES + 1)
    if len(data) > MAX_OWNER_BYTES:
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is larger than {MAX_OWNER_BYTES:,} bytes)")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested deeper than the parser goes
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is not a fusec ownership record)") from None
    if not isinstance(doc, dict) or set(doc) != {"version", "token", "entries", "mac"}:
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is not a fusec ownership record)")
    return doc


def _safe_rel(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel or "\0" in rel or rel.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def _expected(doc: dict[str, Any]) -> dict[str, tuple[str, int, str]]:
    """The signed listing as {path: (kind, size, sha256)}; NotOwned when malformed."""
    bad = NotOwned(f"{_NOT_OURS} (its `{OWNER}` is malformed)")
    entries = doc["entries"]
    if doc["version"] != _OWNER_VERSION or not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise bad
    out: dict[str, tuple[str, int, str]] = {}
    for item in entries:
        if not isinstance(item, list) or not item or not _safe_rel(item[0]) or item[0] == OWNER:
            raise bad
        if item[1:] == ["d"]:
            out[item[0]] = ("d", 0, "")
        elif len(item) == 4 and item[1] == "f" and type(item[2]) is int and isinstance(item[3], str):
            out[item[0]] = ("f", item[2], item[3])
        else:
            raise bad
    return out


def _key_for_checking() -> bytes:
    try:
        key = user_key(create=False)
    except KeyUnavailable as exc:
        raise NotOwned(f"fusec cannot tell whether it wrote this folder: its key {exc}") from None
    if key is None:
        raise NotOwned(
            f"{_NOT_OURS} (no fusec key in `{state_dir()}` signs it)",
            f"remove the folder yourself if it is an old output, or choose another -o ({STATE_ENV} sets where "
            "the key is kept)",
        )
    return key


def _as_listed(path: Path, entry: Entry, want: tuple[str, int, str], deep: bool) -> bool:
    """Whether an entry is what the listing says: same kind, and for a file the same size (and content)."""
    if want[0] != entry.kind:
        return False
    if entry.kind != "f":
        return True
    return entry.size == want[1] and (not deep or file_digest(path, entry) == want[2])


def verify_owned(out: Path, deep: bool = True) -> tuple[dict[str, Entry], dict[str, str]]:
    """Check that ``out`` holds only what fusec wrote there, unchanged; return what it holds.

    Args:
        out: an existing folder (not a link).
        deep: also compare each file's SHA-256 with the signed listing
            (else sizes only: the quick check before a build).

    Returns:
        Every entry under ``out`` (the record included) with its inode and
        times, and the signed SHA-256 of each file: what a swap moves out
        later must match both.

    Raises:
        NotOwned: no valid signed record, or an entry that is not listed,
            is of another kind, or changed. Entries listed but gone are
            allowed: removing the rest loses nothing.
    """
    doc = _read_record(out)
    expected = _expected(doc)
    key = _key_for_checking()
    if not same_mac(doc["mac"], sign(key, {k: doc[k] for k in ("version", "token", "entries")})):
        raise NotOwned(f"{_NOT_OURS} (its `{OWNER}` is not signed with your key)")
    found: dict[str, Entry] = {}
    changed = "move it out, or " + _ONLY_OWN
    for rel, entry in walk(out, len(expected) + 2):  # one past what may be there: an extra one is seen
        want = expected.get(rel)
        shown = printable(rel)
        if rel == OWNER:
            if entry.kind != "f":
                raise NotOwned(f"holds `{shown}`, which is not the file fusec wrote", changed)
        elif want is None:
            raise NotOwned(f"holds `{shown}`, which fusec did not write", changed)
        elif not _as_listed(out / rel, entry, want, deep):
            raise NotOwned(f"holds `{shown}`, which changed after fusec wrote it", changed)
        found[rel] = entry
    return found, {rel: want[2] for rel, want in expected.items() if want[0] == "f" and rel in found}
