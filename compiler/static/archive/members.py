"""The zip of a ``.keras`` archive: every member vetted by its directory entry before anything is inflated.

An archive may hold only ``config.json``, ``metadata.json`` and
``model.weights.h5`` (no assets: Keras extracts an archive with more members
to the temp folder), each within a size limit, none encrypted. Its central
directory is sized before ``zipfile`` parses it, and a stored weights member
is read in place (``member_view``), never copied out.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from typing import Any, BinaryIO

from ...errors import RuleError
from .base import MAX_ARCHIVE_BYTES, MAX_INFLATED, MAX_MEMBERS, MEMBERS, RESAVE, WEIGHTS


class _Slice(io.RawIOBase):
    """A read-only window on an open file: a stored zip member, read in place (h5py seeks freely)."""

    def __init__(self, fh: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self._fh, self._start, self._size, self._pos = fh, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _directory_entries(fh: BinaryIO, size: int) -> tuple[int, int] | None:
    """(entries, directory bytes) from the end-of-central-directory record, read before zipfile parses it."""
    tail_len = min(size, (1 << 16) + 22)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    _, _, _, _, entries, cd_size, _, _ = struct.unpack("<4s4H2LH", tail[at : at + 22])
    return entries, cd_size


def _member_start(fh: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Where a member's data starts: after its local header (whose lengths may differ from the directory's)."""
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ValueError(f"bad local header for {info.filename}")
    name_len, extra_len = struct.unpack("<2H", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


def open_members(fh: BinaryIO, label: str, key: str) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    """Open an archive and vet every member by its directory entry; nothing is inflated yet.

    Raises:
        RuleError: too many members, unknown or duplicate names, encryption,
            unusual compression, or sizes past the limits.
    """
    size = os.fstat(fh.fileno()).st_size
    directory = _directory_entries(fh, size)
    if directory is not None and (directory[0] > 16 or directory[1] > 1 << 20):
        raise RuleError(
            f"`{label}` holds {directory[0]:,} members; a .keras archive holds at most {MAX_MEMBERS}",
            key,
            "a .keras archive holds only config.json, metadata.json and model.weights.h5; " + RESAVE,
        )
    zf = zipfile.ZipFile(fh)
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        _vet_name(info.filename, infos, label, key)
        _vet_storage(info, size, label, key)
        infos[info.filename] = info
    total = sum(info.file_size for info in infos.values())
    if total > MAX_ARCHIVE_BYTES:
        raise RuleError(
            f"`{label}`'s members would expand to {total:,} bytes in all, over the {MAX_ARCHIVE_BYTES >> 30} GiB limit",
            key,
            "use a smaller sub-model",
        )
    for name in ("config.json", WEIGHTS):
        if name not in infos:
            raise RuleError(f"`{label}` has no `{name}`; it is not a Keras .keras archive", key, RESAVE)
    return zf, infos


def _vet_name(name: str, seen: dict[str, zipfile.ZipInfo], label: str, key: str) -> None:
    """A member must be one Keras writes (never assets), and appear once."""
    if name.startswith("assets/") or name == "assets":
        raise RuleError(
            f"`{label}` holds assets (`{name[:80]}`): no layer of fusec's vocabulary uses assets, "
            "and Keras would extract the whole archive to the temp folder",
            key,
            "remove the assets/ folder: " + RESAVE,
        )
    if name not in MEMBERS:
        raise RuleError(
            f"`{label}` holds a member fusec does not load: `{name[:80]}`",
            key,
            "a .keras archive holds only config.json, metadata.json and model.weights.h5 "
            "(Keras would extract any other member to the temp folder); " + RESAVE,
        )
    if name in seen:
        raise RuleError(f"`{label}` holds `{name}` twice", key, RESAVE)


def _vet_storage(info: zipfile.ZipInfo, size: int, label: str, key: str) -> None:
    """A member must be stored or deflated, not encrypted, and inflate within its limit."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise RuleError(f"`{label}`'s member `{name}` is encrypted", key, RESAVE)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise RuleError(
            f"`{label}`'s member `{name}` uses compression method {info.compress_type}",
            key,
            "Keras stores members uncompressed; " + RESAVE,
        )
    stored = info.compress_type == zipfile.ZIP_STORED
    inflate_cap = info.compress_size if stored else max(MAX_INFLATED, 20 * info.compress_size)
    if info.file_size > min(MEMBERS[name], inflate_cap):
        raise RuleError(
            f"`{label}`'s member `{name}` would expand to {info.file_size:,} bytes from a "
            f"{size:,}-byte archive ({info.compress_size:,} bytes stored)",
            key,
            "Keras stores weights uncompressed: save the sub-model with Keras",
        )


def _verify_crc(fh: BinaryIO, start: int, info: zipfile.ZipInfo, label: str, key: str) -> None:
    """A stored member's bytes must match its CRC-32, as Keras's zipfile read will require.

    Read in 1 MiB pieces (one pass over the member, nothing held).

    Raises:
        RuleError: the member is damaged.
    """
    crc, left = 0, info.file_size
    fh.seek(start)
    while left > 0:
        piece = fh.read(min(left, 1 << 20))
        if not piece:
            break
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    if left or crc != info.CRC:
        raise RuleError(
            f"`{label}`'s member `{info.filename}` is damaged (its bytes do not match its CRC-32)",
            key,
            "the file was truncated or altered after it was written; " + RESAVE,
        )


def member_view(fh: BinaryIO, zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, key: str) -> BinaryIO:
    """A member to read: a stored one in place (a window on the archive), a deflated one inflated in memory.

    Raises:
        RuleError: a stored member runs past the end of the archive.
    """
    if info.compress_type == zipfile.ZIP_STORED:
        start = _member_start(fh, info)
        size = os.fstat(fh.fileno()).st_size
        if start + info.file_size > size:
            raise RuleError(f"`{label}`'s weights member runs past the end of the archive", key, RESAVE)
        _verify_crc(fh, start, info, label, key)
        return io.BufferedReader(_Slice(fh, start, info.file_size))
    return io.BytesIO(zf.read(info))
