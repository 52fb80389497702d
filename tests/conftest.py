"""Shared fixtures: one TensorFlow import per pytest process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture(scope="session")
def keras() -> Any:
    """Keras, imported once for the whole session."""
    from fusec.tf import import_keras

    return import_keras()
