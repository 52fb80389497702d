"""Shared fixtures: one TensorFlow import per pytest process."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Compiles sign their outputs with a per-user key (save.py); tests keep theirs in a temporary folder.
os.environ.setdefault("FUSEC_STATE_DIR", tempfile.mkdtemp(prefix="fusec-state-"))

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture(scope="session")
def keras() -> Any:
    """Keras, imported once for the whole session."""
    from fusec.keras.tf import import_keras

    return import_keras()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Any attempt to open a connection or resolve a name fails the test."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError(f"fusec tried to reach the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts
    assert attempts == []


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private system temp folder, so staging folders a case might leave are seen."""
    tmp = tmp_path / "systemp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


@pytest.fixture(scope="session")
def validator() -> Any:
    """A validator for ``schemas/fusec-errors.schema.json`` (the ``--json`` error report)."""
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "schemas" / "fusec-errors.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture
def corpus_run(
    tmp_path: Path, private_tmp: Path, validator: Any, no_network: list[Any], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """``corpus_run(make)``: build a generated corpus case in a fresh work folder and run it (corpus_kit.run_case)."""
    from corpus_kit import run_case

    def run(make: Any) -> None:
        work = tmp_path / "work"
        work.mkdir()
        try:
            run_case(make(work), work, private_tmp, validator, monkeypatch)
        finally:
            for p in work.rglob("*"):  # let pytest clean up read-only folders
                if p.is_dir() and not p.is_symlink():
                    p.chmod(0o755)

    return run


@pytest.fixture(scope="session")
def no_tf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PYTHONPATH entry that makes TensorFlow and Keras unimportable (for static commands run as processes)."""
    shim = tmp_path_factory.mktemp("no_tf")
    for mod in ("tensorflow", "keras"):
        (shim / mod).mkdir()
        (shim / mod / "__init__.py").write_text(f"raise ImportError('{mod} is blocked in this test')\n")
    return shim
