"""The spec's top-level ``weights`` file (``.npz``, as ``fusec import`` writes it), checked without TensorFlow.

The file must lie inside the spec's folder (or an allowed one), be a real
``.npz`` (a zip of ``.npy`` files; only their headers are read, nothing is
unpickled) within size limits, and every key ``<node or shared id>/<k>``
must name a layer node or shared layer of the expanded spec, whose arrays
(numbers, all of them or none) hold exactly its parameter count.
"""

from __future__ import annotations

import re
import stat
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import Problem, RuleError
from .archive import resolve_path
from .shapes import NodeInfo

MAX_WEIGHTS_BYTES = 4 << 30  # the arrays, inflated, in all
MAX_ARRAYS = 200_000
_KEY = re.compile(r"(?P<node>[A-Za-z][A-Za-z0-9_]*)/(?P<k>0|[1-9][0-9]{0,5})\.npy")


def node_params(info: Mapping[str, NodeInfo]) -> dict[str, int]:
    """Each layer node's and shared layer's parameter count (a shared layer's counted at its first call)."""
    out: dict[str, int] = {}
    for nid, node in info.items():
        if node.shared is not None:
            out[node.shared] = out.get(node.shared, 0) + node.params
        elif node.kind == "layer":
            out[nid] = node.params
    return out


def read_headers(path: Path, raw: str) -> dict[str, list[tuple[int, Any]]]:
    """Node id -> [(k, (element count, dtype))] from the ``.npy`` headers of an ``.npz``; nothing else is read.

    Raises:
        RuleError: not an npz of plain arrays, a key fusec does not read, over a size limit.
    """
    found: dict[str, list[tuple[int, Any]]] = {}
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ARRAYS:
                raise RuleError(f"`{raw}` holds more than {MAX_ARRAYS:,} arrays", "weights")
            for info in infos:
                m = _KEY.fullmatch(info.filename)
                if m is None:
                    raise RuleError(
                        f"`{raw}` holds `{info.filename[:80]}`, not an array named `<node id>/<k>`",
                        "weights",
                        "write the weights with fusec import",
                    )
                total += info.file_size
                if total > MAX_WEIGHTS_BYTES or info.flag_bits & 0x1:
                    raise RuleError(f"`{raw}` is over {MAX_WEIGHTS_BYTES >> 30} GiB inflated, or encrypted", "weights")
                count, kind = _npy_header(_head(zf, info))
                found.setdefault(m["node"], []).append((int(m["k"]), (count, kind, info.filename[:-4])))
    except RuleError:
        raise
    except Exception as exc:  # a damaged zip or .npy header breaks zipfile or numpy in many ways
        raise RuleError(
            f"`{raw}` is not a readable .npz file ({type(exc).__name__}: {str(exc)[:120]})", "weights"
        ) from None
    return found


def _head(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The first bytes of a member: read in place for a stored member (what np.savez writes), else inflated.

    Opening each member through zipfile costs ~0.15 ms; a 770-layer model has 1,200 arrays.
    """
    fp = zf.fp
    if info.compress_type == zipfile.ZIP_STORED and fp is not None:
        fp.seek(info.header_offset)
        local = fp.read(30)
        if len(local) == 30 and local[:4] == b"PK\x03\x04":
            skip = int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
            fp.seek(info.header_offset + 30 + skip)
            return fp.read(min(info.file_size, 4096 + 12))
    with zf.open(info) as fh:
        return fh.read(4096 + 12)


_DESCR = re.compile(r"'descr':\s*'([<>|=]?)([a-zA-Z])(\d{1,2})'")
_SHAPE = re.compile(r"'shape':\s*\(([0-9,\s]*)\)")


def _npy_header(head: bytes) -> tuple[int, str]:
    """An ``.npy`` header read as text (no ``eval``): element count, and dtype kind (``?`` for anything but a
    plain little-endian or byte-order-free number).

    Raises:
        ValueError: not an ``.npy`` header.
    """
    if head[:6] != b"\x93NUMPY" or len(head) < 10:
        raise ValueError("not an .npy array")
    size, start = (
        (int.from_bytes(head[8:10], "little"), 10) if head[6] == 1 else (int.from_bytes(head[8:12], "little"), 12)
    )
    text = head[start : start + size].decode("latin-1")
    shape = _SHAPE.search(text)
    if shape is None or len(text) < size:
        raise ValueError("an .npy header fusec does not read")
    dims = [int(d) for d in shape.group(1).replace(" ", "").split(",") if d]
    count = 1
    for d in dims:
        count *= d
    descr = _DESCR.search(text)
    plain = descr is not None and descr.group(1) in ("<", "|", "=", "")
    return count, descr.group(2) if plain and descr is not None else "?"


def weights_problems(
    raw: Any, spec_dir: Path, info: Mapping[str, NodeInfo], allowed: Sequence[Path] = ()
) -> tuple[list[Problem], Path | None]:
    """The problems of the spec's ``weights`` file (at ``$.weights``), and its resolved path when it has none."""
    try:
        path = resolve_path(str(raw), spec_dir, allowed, "weights")
        if not stat.S_ISREG(path.stat().st_mode) or path.suffix != ".npz":
            raise RuleError(f"`{raw}` is not an .npz file", "weights", "name the .weights.npz fusec import wrote")
        found = read_headers(path, str(raw))
    except RuleError as err:
        return [Problem(("weights",), err.message, err.hint, "weights")], None
    except OSError as exc:
        return [Problem(("weights",), f"`{raw}` cannot be read: {exc.strerror or exc}", "", "weights")], None
    params = node_params(info)
    problems = []
    for node in sorted(found):
        arrays = sorted(found[node], key=lambda a: a[0])
        keys = [a[1][2] for a in arrays]
        if node not in params:
            problems.append(_problem(raw, keys[0], "names no layer node or shared layer of the spec", "weights"))
            continue
        if [k for k, _ in arrays] != list(range(len(arrays))):
            problems.append(_problem(raw, keys[0], f"node `{node}`'s arrays are not numbered 0 to {len(arrays) - 1}"))
        # numbers only: floats, and integers for counters (an adapted Normalization's `count` is int64)
        bad = [key for key, (_, (_, kind, _)) in zip(keys, arrays, strict=True) if kind not in ("f", "i", "u")]
        if bad:
            problems.append(_problem(raw, bad[0], "holds an array that is not numbers (float or integer)"))
        stored = sum(a[1][0] for a in arrays)
        if stored != params[node]:
            problems.append(
                _problem(
                    raw, keys[0], f"node `{node}` has {params[node]:,} parameters but its arrays hold {stored:,} values"
                )
            )
    return problems, (path if not problems else None)


def _problem(raw: Any, key: str, message: str, hint: str = "give every weight of the node, or none") -> Problem:
    return Problem(("weights",), f"`{raw}`: array `{key}` {message}", hint, "weights")
