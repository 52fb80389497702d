"""Sub-models on trust: a ``.keras`` archive whose classes come from a package the user names.

A ``model`` node may say ``"trust": "keras_hub"``; the archive's classes may
then come from that package as well as from Keras, but only when the command
line trusts the package too (``--trust keras_hub``, never by default; the
command sets it for the run with ``trusting``). Such an archive is still
inspected before Keras sees it:

* its zip members are vetted as any archive's (``members``): only
  ``config.json``, ``metadata.json`` and ``model.weights.h5``, sized, none
  encrypted, the weights member's CRC-32 checked;
* every object of ``config.json``, at any depth, must be a class of a module
  of Keras (``keras``, ``keras.*``) or of the trusted package (``PKG``,
  ``PKG.*``), registered (if at all) under its own name or the package's
  prefix (``PKG>Class``); ``Lambda``, the other classes fusec refuses by
  name, ``__lambda__`` and serialized functions are refused whatever the
  module;
* the weights file is read as HDF5 metadata only (``h5``); the values it
  stores are the sub-model's parameter count.

What runs inside the package's classes cannot be computed statically, so the
node declares the shapes of the outputs it uses (``"shapes": {"pooled_output":
[16]}``, batch axis excluded); ``fusec compile`` loads the archive with Keras's
``safe_mode=True`` and verifies the declared shapes, the input names and the
parameter count against the loaded model before anything is written
(``fusec.keras.submodel``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import RuleError
from ...vocab.layers import REFUSED
from ...vocab.rule import Shape
from .base import MAX_CONFIG_VALUES, SubModel, show

#: A package a user may trust: one top-level Python package name.
PACKAGE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
#: Names ``--trust`` refuses: Keras's own classes need no trust; the others are not model packages.
NOT_TRUSTABLE = frozenset({"keras", "builtins", "__main__", "fusec"})
#: Packages Keras imports itself by a config's module path; any other package's classes must already
#: be registered in the process (fusec imports nothing by name).
KERAS_IMPORTS = frozenset({"keras_hub", "keras_nlp", "keras_cv"})
#: Class names refused whatever their module: code, SavedModels, files read by path, functions.
_NEVER = frozenset({*REFUSED, "__lambda__", "function"})
_FUNCTION_KEYS = ("function", "function_type", "output_shape_type")
_SPECIAL = frozenset({"__keras_tensor__", "__tuple__"})
#: The kind of a trusted archive's ``SubModel``: ``trusted:PKG``.
KIND_PREFIX = "trusted:"

_TRUSTED: ContextVar[frozenset[str]] = ContextVar("fusec_trusted_packages", default=frozenset())


@contextlib.contextmanager
def trusting(packages: Iterable[str]) -> Iterator[None]:
    """Trust ``packages`` for the checks run inside (nested specs included); nothing is trusted outside."""
    token = _TRUSTED.set(frozenset(packages))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def trusted_packages() -> frozenset[str]:
    """The packages the running command trusts (``--trust``); empty by default."""
    return _TRUSTED.get()


def package_problem(name: str) -> str | None:
    """Why ``name`` cannot be trusted, or None."""
    if not re.match(PACKAGE_PATTERN, name):
        return f"`{name[:80]}` is not a package name; give a top-level package such as keras_hub"
    if name in NOT_TRUSTABLE:
        return f"`{name}` cannot be trusted: Keras's own classes need no trust, and it holds no model classes"
    return None


@dataclass(frozen=True)
class TrustedArchive:
    """What fusec reads from a trusted archive: the classes it names from the package, and its weights."""

    classes: tuple[str, ...]
    values: int
    data_bytes: int
    file_bytes: int


def read_config(path: Path, label: str, key: str = "model") -> tuple[Any, Any]:
    """An archive's vetted members and parsed ``config.json`` (nothing else inflated).

    Returns:
        (config, weights) where weights is ``h5.Weights`` of the weights member.

    Raises:
        RuleError: a file over the size limit, a bad zip (``members``), unreadable JSON or HDF5.
    """
    from .inspect import read_archive  # the archive reader: loaded only when an archive is read

    return read_archive(path, label, key, lambda config: config)


def foreign_classes(config: Any) -> list[str]:
    """``module.Class`` of every object outside Keras's modules, in the order met (at most 20)."""
    found: list[str] = []
    for node, _ in _objects(config):
        module, cls = node.get("module"), node.get("class_name")
        if isinstance(module, str) and not _is_keras(module):
            name = f"{module}.{cls}"
            if name not in found:
                found.append(name)
        if len(found) >= 20:
            break
    return found


def scan_trusted(config: Any, package: str, label: str, key: str = "model") -> tuple[str, ...]:
    """Refuse every object of ``config`` outside Keras and ``package``; return the package's classes.

    Raises:
        RuleError: listing the first objects refused and where they are.
    """
    refused: list[str] = []
    shared: dict[Any, str] = {}
    for node, where in _objects(config):
        refused += _judge(node, where, package)
        if "shared_object_id" in node:
            body = json.dumps({k: v for k, v in node.items() if k != "shared_object_id"}, sort_keys=True, default=str)
            if shared.setdefault(str(node["shared_object_id"]), body) != body:
                refused.append(f"an object standing for a different one (`shared_object_id`) at {where}")
        if len(refused) >= 20:
            break
    if refused:
        raise RuleError(
            f"`{label}` holds what fusec will not load on trust of `{package}`: {', '.join(refused[:3])}"
            + (f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""),
            key,
            f"a trusted sub-model may name only classes of Keras and of `{package}`: no Lambda, no functions, "
            "no other package",
        )
    return tuple(c for c in foreign_classes(config) if c.startswith(f"{package}."))


def _is_keras(module: str) -> bool:
    return module == "keras" or module.startswith("keras.")


def _judge(node: Mapping[str, Any], where: str, package: str) -> list[str]:
    """What is refused in one object of a trusted archive's config."""
    found = [f"a serialized function (`{k}`) at {where}" for k in _FUNCTION_KEYS if k in node]
    if not any(k in node for k in ("class_name", "module", "registered_name")):
        return found
    cls, module, registered = node.get("class_name"), node.get("module"), node.get("registered_name")
    if not isinstance(cls, str):
        return [*found, f"an object without a class name at {where}"]
    if cls in _NEVER:
        found.append(f"`{cls}` at {where}")
    if module is None:
        if cls not in _SPECIAL:
            found.append(f"`{cls}` without a module at {where}")
    elif not isinstance(module, str) or not (
        _is_keras(module) or module == package or module.startswith(package + ".")
    ):
        found.append(f"module `{module[:80] if isinstance(module, str) else show(module)}` at {where}")
    if registered is not None and registered != cls and not str(registered).startswith(f"{package}>"):
        found.append(f"custom object `{show(registered)}` at {where}")
    return found


def _objects(config: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """Every dict of ``config`` with where it is, walked iteratively within the value and depth limits.

    Raises:
        RuleError: too many values, or nested too deep.
    """
    count = 0
    stack: list[tuple[Any, str, int]] = [(config, "config", 0)]
    while stack:
        node, where, depth = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES or depth > 200:
            raise RuleError("a trusted sub-model's config.json holds too many values, or nests too deep", "model")
        if isinstance(node, dict):
            yield node, where
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in reversed(list(enumerate(node))))


def inspect_trusted(path: Path, label: str, package: str, key: str = "model") -> TrustedArchive:
    """Inspect an archive on trust of ``package``: members, every class, the weights file's metadata.

    Raises:
        RuleError: anything refused (see the module doc).
    """
    config, weights = read_config(path, label, key)
    classes = scan_trusted(config, package, label, key)
    if not classes:
        raise RuleError(
            f"`{label}` names no class of `{package}`",
            "trust",
            "remove `trust`: an archive of Keras's own classes is read without it",
        )
    return TrustedArchive(classes, weights.values, weights.data_bytes, weights.file_bytes)


def trusted_submodel(path: Path, package: str, found: TrustedArchive) -> SubModel:
    """The archive as a ``SubModel`` without inputs or outputs yet (each node declares them)."""
    return SubModel(
        path,
        KIND_PREFIX + package,
        {},
        {},
        found.values,
        0,
        1,
        (found.values,) if found.values else (),
        found.data_bytes,
        found.file_bytes,
    )


def declared_outputs(raw: str, declared: Any) -> dict[str, Shape]:
    """A trusted node's ``shapes`` as output name -> shape, batch axis first.

    Raises:
        RuleError: no ``shapes`` (the schema checks their form).
    """
    if not isinstance(declared, Mapping) or not declared:
        raise RuleError(
            f"sub-model `{raw}` is loaded on trust, so fusec cannot compute its outputs: declare them",
            "shapes",
            'add "shapes": {OUTPUT: [DIM, ...]} (batch axis excluded, null for any size); '
            "compile verifies them against the loaded model",
        )
    return {str(name): (None, *shape) for name, shape in declared.items()}
