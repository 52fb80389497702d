"""Names, static shape and dtype rules: what check refuses, and what it accepts compiles.

The committed cases are ``tests/corpus/cases_rules.json`` (files ``rule_*.json``); the
corpus test runs each through ``check``, ``compile`` and ``render`` like every other
table. This file adds the cases that need a file built at test time (file names that
are not portable to commit) and the other half of the contract: specs these rules
accept, however odd their names, references or types, compile with ``fusec compile``
(exit 0, SavedModel and ``.keras``) and render.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from corpus_kit import CORPUS, Case, spec, write

from fusec.cli import cli

TABLE = CORPUS / "cases_rules.json"


def test_rules_table() -> None:
    """At least 15 cases, each `rule_*` with its own file, through all three commands."""
    cases = json.loads(TABLE.read_text(encoding="utf-8"))
    assert len(cases) >= 15
    for c in cases:
        assert c["id"].startswith("rule_") and c["file"] == f"{c['id']}.json", c["id"]
        assert (CORPUS / c["file"]).is_file()
        assert c["exit"] == 1 and "commands" not in c
    on_disk = {p.name for p in CORPUS.glob("rule_*.json")}
    assert on_disk == {c["file"] for c in cases}


# --- refused, with file names that are not worth committing ------------------------------


def _stem_with_space_and_accent(tmp: Path) -> Case:
    doc = spec(nodes={"_h": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"}}, outputs={"y": {"from": "_h"}})
    f = write(tmp / "modèle (copie) 2.json", doc)
    return Case("rule_odd_stem_bad_id", f, 1, "$.nodes._h", "starts with _", "schema")


def _stem_that_is_a_keyword(tmp: Path) -> Case:
    doc = {k: v for k, v in spec().items() if k != "name"}
    doc["inputs"] = {"class": {"shape": [8]}}
    doc["nodes"]["h"]["inputs"] = "class"
    return Case("rule_keyword_stem", write(tmp / "class.json", doc), 1, "$.inputs.class", "Python keywords", "schema")


GENERATED: list[Callable[[Path], Case]] = [_stem_with_space_and_accent, _stem_that_is_a_keyword]


@pytest.mark.parametrize("make", GENERATED, ids=[g.__name__.lstrip("_") for g in GENERATED])
def test_generated_rule_case(make: Callable[[Path], Case], corpus_run: Any) -> None:
    corpus_run(make)


# --- accepted: these compile ---------------------------------------------------------------


def _no_name(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "name"}


def _chain(n: int) -> dict[str, Any]:
    nodes = {
        f"a{i}": {"layer": "Activation", "config": {"activation": "relu"}, "inputs": f"a{i - 1}" if i else "x"}
        for i in range(n)
    }
    return spec(inputs={"x": {"shape": [4]}}, nodes=nodes, outputs={"y": {"from": f"a{n - 1}"}})


COMPILES: dict[str, tuple[str, dict[str, Any], str]] = {
    # id: (file stem, spec, the model's name)
    "stem_with_spaces": ("my model (copy)", _no_name(spec()), "my_model_copy"),
    "stem_with_accent": ("modèle", _no_name(spec()), "modele"),
    "stem_of_digits": ("2024", _no_name(spec()), "model_2024"),
    "stem_with_underscore": ("_draft", _no_name(spec()), "draft"),
    "stem_that_is_a_keyword": ("lambda", _no_name(spec()), "lambda"),
    "ports": (
        "ports",
        spec(
            inputs={"x": {"shape": [5, 3]}},
            nodes={
                "enc": {"layer": "LSTM", "config": {"units": 4, "return_state": True}, "inputs": "x.0"},
                "h": {"layer": "Dense", "config": {"units": 2}, "inputs": "enc.0"},
                "c": {"layer": "Dense", "config": {"units": 2}, "inputs": "enc.2"},
                "y": {"merge": "add", "inputs": ["h.0", "c"]},
            },
            outputs={"out": {"from": "y.0"}, "state": {"from": "enc.1"}},
        ),
        "tiny",
    ),
    "uint8_rescaled": (
        "pixels",
        spec(
            inputs={"img": {"shape": [8, 8, 3], "dtype": "uint8"}},
            nodes={
                "scale": {"layer": "Rescaling", "config": {"scale": 0.00392156862745098}, "inputs": "img"},
                "conv": {"layer": "Conv2D", "config": {"filters": 2, "kernel_size": 3}, "inputs": "scale"},
                "pool": {"layer": "GlobalAveragePooling2D", "inputs": "conv"},
                "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "pool"},
            },
        ),
        "tiny",
    ),
    "int_ids_moved": (
        "ids",
        spec(
            inputs={"ids": {"shape": [2, 3], "dtype": "int64"}},
            nodes={
                "flat": {"layer": "Flatten", "inputs": "ids"},
                "emb": {"layer": "Embedding", "config": {"input_dim": 10, "output_dim": 2}, "inputs": "flat"},
                "pool": {"layer": "GlobalAveragePooling1D", "inputs": "emb"},
                "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "pool"},
            },
        ),
        "tiny",
    ),
    "shared_attention": (
        "attention",
        spec(
            inputs={"q": {"shape": [4, 16]}, "k": {"shape": [6, 8]}, "v": {"shape": [6, 12]}, "q2": {"shape": [9, 16]}},
            shared={"att": {"layer": "MultiHeadAttention", "config": {"num_heads": 2, "key_dim": 4}}},
            nodes={
                "a1": {"shared": "att", "inputs": {"query": "q", "key": "k", "value": "v"}},
                "a2": {"shared": "att", "inputs": {"query": "q2", "key": "k", "value": "v"}},
                "p1": {"layer": "GlobalAveragePooling1D", "inputs": "a1"},
                "p2": {"layer": "GlobalAveragePooling1D", "inputs": "a2"},
                "y": {"merge": "add", "inputs": ["p1", "p2"]},
            },
        ),
        "tiny",
    ),
    "keyword_ids": (
        "keywords",
        spec(
            inputs={"None_": {"shape": [8]}},
            nodes={
                "class": {"layer": "Dense", "config": {"units": 4}, "inputs": "None_"},
                "lambda": {"layer": "Dense", "config": {"units": 1}, "inputs": "class"},
            },
            outputs={"lambda": {"from": "lambda"}, "None": {"from": "class"}},
        ),
        "tiny",
    ),
    "deep_chain": ("deep", _chain(1_200), "tiny"),
}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("cid", sorted(COMPILES))
def test_accepted_specs_compile_and_render(cid: str, tmp_path: Path, keras: Any) -> None:
    stem, doc, name = COMPILES[cid]
    path = write(tmp_path / f"{stem}.json", doc)
    out = tmp_path / "out"
    keras.backend.clear_session()
    result = CliRunner().invoke(cli, ["compile", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "fusec.json").read_text(encoding="utf-8"))
    assert manifest["name"] == name
    assert (out / f"{name}.keras").is_file() and (out / "saved_model" / "saved_model.pb").is_file()
    assert sorted(manifest["signature"]["outputs"]) == sorted(doc["outputs"])
    result = CliRunner().invoke(cli, ["render", str(path), "-o", str(tmp_path / "diagram.dot")])
    assert result.exit_code == 0, result.output
