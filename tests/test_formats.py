"""`fusec check --format text|json|sarif|github`: the same problems, at the same places, in every format."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from fusec.cli import cli

SARIF_SCHEMA = Path(sys.prefix) / "share" / "sarif" / "sarif-schema-2.1.0.json"

BAD = (
    '{"fusec": 1, "name": "x",\n'
    ' "inputs": {"a": {"shape": [4]}},\n'
    ' "nodes": {\n'
    '  "d": {"layer": "Dense", "config": {"unit": 3}, "inputs": "a"},\n'
    '  "e": {"layer": "Dense", "config": {"units": 3}, "inputs": "zz"},\n'
    '  "f": {"layer": "Concatenate", "inputs": ["a", "e"]}\n'
    " },\n"
    ' "outputs": {"o": {"from": "d"}}}\n'
)

WARNS = {
    "fusec": 1,
    "name": "w",
    "inputs": {"t": {"shape": [5], "dtype": "int32"}},
    "nodes": {
        "e": {"layer": "Embedding", "config": {"input_dim": 10, "output_dim": 4, "mask_zero": True}, "inputs": "t"},
        "f": {"layer": "Flatten", "inputs": "e"},
        "y": {"layer": "Dense", "config": {"units": 1}, "inputs": "f"},
    },
    "outputs": {"y": {"from": "y"}},
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    bad = tmp_path / "bad.json"
    bad.write_text(BAD)
    warns = tmp_path / "warns.json"
    warns.write_text(json.dumps(WARNS, indent=2))
    return bad, warns


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["check", *args])


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_text_lines_link_to_file_line_and_column(files: tuple[Path, Path]) -> None:
    bad, _ = files
    result = run(str(bad))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"{bad}:4:38: error: $.nodes.d.config.unit: unknown key `unit`") for line in lines)
    assert any(line.startswith(f"{bad}:6:9: error: $.nodes.f.layer: `Concatenate`") for line in lines)
    assert any(line.startswith(f"{bad}:5:51: error: $.nodes.e.inputs: no node or input named `zz`") for line in lines)
    assert all(re.match(rf"{re.escape(str(bad))}:\d+:\d+: error: \$", line) for line in lines), lines


def test_sarif_validates_and_points_at_the_lines(files: tuple[Path, Path]) -> None:
    assert SARIF_SCHEMA.is_file(), f"{SARIF_SCHEMA} is missing: run `bash .ci/setup`"
    schema = json.loads(SARIF_SCHEMA.read_text())
    assert schema["$id"].endswith("sarif-schema-2.1.0.json")
    bad, warns = files
    result = run("--format", "sarif", str(bad), str(warns))
    assert result.exit_code == 1, result.output
    log = json.loads(result.stdout)
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(log)
    (sarif_run,) = log["runs"]
    rules = [r["id"] for r in sarif_run["tool"]["driver"]["rules"]]
    results = sarif_run["results"]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in results)
    by_path = {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]: r for r in results}
    unit = by_path["$.nodes.d.config.unit"]
    assert unit["level"] == "error" and "did you mean `units`?" in unit["message"]["text"]
    region = unit["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == line_of(BAD, '"unit": 3') and region["startColumn"] == 38
    ref = by_path["$.nodes.e.inputs"]["locations"][0]["physicalLocation"]
    assert ref["region"]["startLine"] == line_of(BAD, '"zz"') and ref["artifactLocation"]["uri"].endswith("bad.json")
    warned = [r for r in results if r["level"] == "warning"]
    assert warned, "a passing file's warnings are results too"
    text = warns.read_text()
    place = warned[0]["locations"][0]["physicalLocation"]["region"]
    assert '"inputs"' in text.splitlines()[place["startLine"] - 1]


def test_sarif_of_a_clean_file_is_an_empty_run(tmp_path: Path) -> None:
    good = Path(__file__).resolve().parent.parent / "specs" / "image_tag.json"
    result = run("--format", "sarif", str(good))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["runs"][0]["results"] == []


def test_relative_paths_stay_relative_in_sarif(files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    bad, _ = files
    monkeypatch.chdir(bad.parent)
    log = json.loads(run("--format", "sarif", "bad.json").stdout)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "bad.json", "uriBaseId": "%SRCROOT%"}


def test_github_annotations(files: tuple[Path, Path]) -> None:
    bad, warns = files
    result = run("--format", "github", str(bad), str(warns))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert f"ok: {warns}" in result.stdout
    notes = [line for line in lines if line.startswith("::")]
    want = f"::error file={bad},line=4,col=38,endLine=4,endColumn=47,title=fusec schema::$.nodes.d.config.unit: "
    assert any(line.startswith(want) for line in notes), notes
    assert any(line.startswith("::warning file=") for line in notes)


def test_github_escapes_what_would_break_a_command(tmp_path: Path) -> None:
    odd = tmp_path / "a,b:c%.json"
    odd.write_text(BAD)
    line = run("--format", "github", str(odd)).stdout.splitlines()[0]
    assert "file=" + str(odd).replace("%", "%25").replace(":", "%3A").replace(",", "%2C") + ",line=" in line


def test_json_format_is_the_json_report(files: tuple[Path, Path]) -> None:
    bad, _ = files
    one, two = run("--format", "json", str(bad)), run("--json", str(bad))
    assert one.exit_code == two.exit_code == 1 and one.stdout == two.stdout
    errors = json.loads(one.stdout)["files"][0]["errors"]
    first = next(e for e in errors if e["path"] == "$.nodes.d.config.unit")
    assert (first["line"], first["column"], first["end_line"], first["end_column"]) == (4, 38, 4, 47)


def test_json_and_another_format_is_a_usage_error(files: tuple[Path, Path]) -> None:
    result = run("--json", "--format", "sarif", str(files[0]))
    assert result.exit_code == 2 and "two reports" in result.output


def test_invalid_json_is_placed_in_every_format(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "fusec": 1,\n  "name": ]\n}\n')
    assert run(str(broken)).stderr.startswith(f"{broken}:3:11: error: $: not valid JSON")
    region = json.loads(run("--format", "sarif", str(broken)).stdout)["runs"][0]["results"][0]["locations"][0]
    assert region["physicalLocation"]["region"]["startLine"] == 3
