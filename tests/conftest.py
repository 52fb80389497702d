"""Shared fixtures: one TensorFlow import per pytest process, private folders, no network, no TensorFlow.

A test that asks for the ``keras`` fixture (directly or through another fixture)
is marked ``slow`` here, so ``make test-fast`` (``-m "not slow"``) never imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Progress lines (stderr, docs/cli.md) off: tests read stderr line by line; tests/test_terminal.py turns them on.
os.environ.setdefault("FUSEC_PROGRESS", "0")
# Compiles sign their outputs with a per-user key (save.py); tests keep theirs in a temporary folder,
# never the user's own (the ``state_dir`` fixture gives a test a fresh one).
os.environ["FUSEC_STATE_DIR"] = tempfile.mkdtemp(prefix="fusec-state-")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that needs Keras: it imports TensorFlow and builds or runs models."""
    for item in items:
        if "keras" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test not marked ``slow`` must not import TensorFlow (it would belong to ``make test-fast``)."""
    before = "tensorflow" in sys.modules
    yield
    if not before and "tensorflow" in sys.modules and item.get_closest_marker("slow") is None:
        pytest.fail("this test imports TensorFlow: mark it @pytest.mark.slow", pytrace=False)


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


@pytest.fixture
def state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh private folder for fusec's ownership key (never the user's own), for one test."""
    folder = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("FUSEC_STATE_DIR", str(folder))
    return folder


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
    """``corpus_run(make)``: make a corpus case in a fresh work folder and run it (corpus_kit.run_case).

    ``make`` takes the work folder and returns the ``Case`` (a committed case ignores the folder).
    """
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
