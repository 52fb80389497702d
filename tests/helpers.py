"""Small spec builders shared by the tests."""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path
from typing import Any

BASE: dict[str, Any] = {
    "fusec": 1,
    "name": "tiny",
    "seed": 1,
    "inputs": {"x": {"shape": [8]}},
    "nodes": {
        "h": {"layer": "Dense", "config": {"units": 4, "activation": "relu"}, "inputs": "x"},
        "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "h"},
    },
    "outputs": {"y": {"from": "y", "loss": "mse"}},
}


def spec(**sections: Any) -> dict[str, Any]:
    """A copy of BASE with whole top-level sections replaced."""
    doc = copy.deepcopy(BASE)
    doc.update(copy.deepcopy(sections))
    return doc


def write(tmp: Path, doc: Any, name: str = "spec.json") -> Path:
    """Write ``doc`` (bytes, text or JSON-able) to ``tmp / name``."""
    path = tmp / name
    text = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


#: Prepended to a script run in a separate process that must serve a model without fusec importable.
BLOCK_FUSEC = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "fusec" or name.startswith("fusec."):
                raise ImportError("fusec must not be imported here")
    sys.meta_path.insert(0, _Block())
    """
)
