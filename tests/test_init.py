"""``fusec init``: every template checks and compiles; the file written, refused, listed."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fusec import files
from fusec.cli import cli
from fusec.spec.schema import SCHEMA_ID
from fusec.static.check import check_spec
from fusec.templates import TEMPLATES, default_name, render_template, template_doc, template_text

NAMES = list(TEMPLATES)


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["init", *args], catch_exceptions=False)


def test_every_file_is_a_template() -> None:
    shipped = {p.name for p in resources.files("fusec.templates").iterdir() if p.name.endswith(".json")}
    assert shipped == {f"{name}.json" for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_template_checks_strictly(name: str, tmp_path: Path) -> None:
    doc = template_doc(name)
    assert doc["$schema"] == SCHEMA_ID
    assert doc["name"] == default_name(name) == name.replace("-", "_")
    assert doc["doc"] and "Edit first" in doc["doc"]
    assert {"epochs", "batch_size", "optimizer"} <= set(doc["training"])
    path = tmp_path / "spec.json"
    path.write_text(template_text(name))
    checked = check_spec(path, strict=True)
    assert checked.warnings == ()
    assert 0 < checked.totals.params < 100_000  # tiny: tests and a first fit stay fast


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_template_compiles_and_trains_a_step(name: str, tmp_path: Path, keras: Any) -> None:
    """fusec init, then fusec compile (SavedModel and .keras), then one step of fit on the archive."""
    import numpy as np

    from fusec import load_model

    spec = tmp_path / "spec.json"
    assert run(name, "-o", str(spec)).exit_code == 0
    compiled = CliRunner().invoke(cli, ["compile", str(spec), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert compiled.exit_code == 0, compiled.output
    assert (tmp_path / "out" / "saved_model" / "saved_model.pb").is_file()
    model = load_model(tmp_path / "out")
    doc = template_doc(name)
    rng = np.random.default_rng(0)
    x = {
        iid: rng.integers(1, 10, (4, *item["shape"])).astype(item.get("dtype", "float32"))
        for iid, item in doc["inputs"].items()
    }
    y = {}
    for (out, item), tensor in zip(doc["outputs"].items(), model.outputs, strict=True):  # the spec's order
        width = [] if "sparse" in item["loss"] else list(tensor.shape[1:])
        y[out] = np.zeros((4, *width), "float32")
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("name", NAMES)
def test_written_file_is_the_template_with_the_name(name: str, tmp_path: Path) -> None:
    out = tmp_path / "my model.json"
    result = run(name, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "model `my_model`" in result.stdout
    text = out.read_text()
    assert text == render_template(name, "my_model")
    expected = template_doc(name) | {"name": "my_model"}
    assert json.loads(text) == expected
    assert text.replace('"name": "my_model"', f'"name": "{default_name(name)}"') == template_text(name)
    assert check_spec(out, strict=True).warnings == ()


def test_name_option_and_stdout(tmp_path: Path) -> None:
    result = run("moe", "-o", str(tmp_path / "x.json"), "--name", "Router2")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "x.json").read_text())["name"] == "Router2"
    printed = run("siamese", "-o", "-")
    assert printed.exit_code == 0
    assert printed.stdout == template_text("siamese")  # -o -: the template's own name
    renamed = run("siamese", "-o", "-", "--name", "pairs")
    assert json.loads(renamed.stdout)["name"] == "pairs"


@pytest.mark.parametrize("bad", ["9a", "_h", "my-model", "é", "a" * 65, ""])
def test_bad_name_is_a_usage_error(bad: str, tmp_path: Path) -> None:
    result = run("moe", "-o", str(tmp_path / "x.json"), "--name", bad)
    assert result.exit_code == 2
    assert "is not a model name" in result.stderr
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="is not a model name"):
        render_template("moe", bad)


def test_overwrite_refused_unless_force(tmp_path: Path) -> None:
    out = tmp_path / "spec.json"
    out.write_text("mine")
    result = run("moe", "-o", str(out))
    assert result.exit_code == 1
    assert (
        result.stderr.startswith("error: output ") and "already exists" in result.stderr and "--force" in result.stderr
    )
    assert out.read_text() == "mine"
    forced = run("moe", "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_text() == render_template("moe", "spec")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]  # no temporary file left


def test_file_made_meanwhile_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "spec.json"
    real = files.renameat2

    def racing(a: Path, b: Path, flags: int) -> bool:
        b.write_text("theirs")  # another process wins the race
        return real(a, b, flags)

    monkeypatch.setattr(files, "renameat2", racing)
    result = run("moe", "-o", str(out))
    assert result.exit_code == 1 and "created by another process" in result.stderr
    assert out.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]


def test_without_renameat2_a_link_places_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "renameat2", lambda a, b, flags: False)
    out = tmp_path / "spec.json"
    assert run("moe", "-o", str(out)).exit_code == 0
    assert out.read_text() == render_template("moe", "spec")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing/spec.json", "does not exist"),
        ("folder.json", "is a folder"),
        ("link.json", "symbolic link"),
    ],
)
def test_bad_outputs_refused(target: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "link.json").symlink_to(tmp_path / "elsewhere.json")
    before = sorted(os.listdir(tmp_path))
    result = run("moe", "-o", str(tmp_path / target), "--force")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: output ") and message in result.stderr
    assert "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("out", ["spec.txt", "spec", "dir/", ".json"])
def test_output_must_be_a_json_file(out: str, tmp_path: Path) -> None:
    result = run("moe", "-o", str(tmp_path / out) if out != "dir/" else out)
    assert result.exit_code == 2
    assert "*.json" in result.stderr


def test_list_prints_one_line_per_template() -> None:
    result = run("--list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    assert all(TEMPLATES[line.split()[0]] in line for line in lines)


def test_no_template_lists_them_and_is_a_usage_error() -> None:
    result = run()
    assert result.exit_code == 2
    assert "name a template" in result.stderr
    assert all(name in result.stderr for name in NAMES)
    assert run("mixture", "-o", "-").exit_code == 2  # an unknown template: click names the choices
    assert "give the spec to write with -o" in run("moe").stderr
