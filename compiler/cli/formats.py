"""Machine formats of a check's findings: SARIF 2.1.0 for code-scanning tools, GitHub workflow annotations.

Both are built from the same ``(file, Problem)`` pairs as the text and
``--json`` reports, so every format names the same places: the file, the
1-based line and column (columns count characters: SARIF's
``unicodeCodePoints``), the JSON path and the stable ``code``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import MAX_MESSAGE, Problem, printable
from ..version import __version__

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/fusec/fusec"

#: Every problem code (docs/security.md), with the one-line rule SARIF shows for it.
CODES: dict[str, str] = {
    "file": "The spec file cannot be read: missing, not a regular file, or unreadable.",
    "json": "The spec is not strict JSON (duplicate keys, NaN, over-long integers, bad syntax).",
    "limit": "The spec exceeds one of fusec's size limits.",
    "schema": "A value does not follow the spec schema.",
    "version": "The spec is written for another version of the spec language.",
    "refused": "A layer fusec refuses on purpose.",
    "duplicate": "An id is used twice.",
    "reference": "A reference names no node, input, shared layer or block.",
    "cycle": "The graph has a cycle.",
    "unused": "A node feeds no output.",
    "arity": "A node has the wrong number of inputs.",
    "depth": "Blocks nest too deep.",
    "shape": "Static shapes do not fit together.",
    "budget": "The model is over the parameter or memory budget.",
    "model": "A sub-model cannot be used: its path, archive or signature.",
    "output": "An output or output path is wrong.",
    "build": "Keras refused a node.",
    "serving": "The model compiles, but TensorFlow cannot serve it on every machine.",
    "render": "The diagram cannot be drawn.",
    "data": "The training data does not fit the spec.",
    "training": "The model compiles, but will probably not train as meant.",
    "weights": "The spec's weights file does not fit its nodes.",
    "mask": "A padding mask is dropped or misused.",
    "name": "A name breaks a naming rule.",
    "params": "A block parameter is wrong.",
    "loss": "A loss or metric does not fit its output.",
    "spec": "The spec is wrong.",
    "internal": "An internal error in fusec (a bug).",
}


def _rule(code: str) -> dict[str, Any]:
    return {
        "id": code,
        "name": code.capitalize(),
        "shortDescription": {"text": CODES.get(code, "A problem fusec reports.")},
        "helpUri": f"{INFORMATION_URI}/blob/main/docs/security.md#the---json-error-report",
    }


def _uri(file: str) -> tuple[str, dict[str, str]]:
    """A SARIF artifact URI: relative paths stay relative to the source root, absolute ones are file URIs."""
    path = Path(file)
    if path.is_absolute():
        return path.as_uri(), {}
    return path.as_posix(), {"uriBaseId": "%SRCROOT%"}


def _result(file: str | None, problem: Problem, rules: dict[str, int]) -> dict[str, Any]:
    """One SARIF result: the rule, the level, the message and the place (physical and logical)."""
    rules.setdefault(problem.code, len(rules))
    location: dict[str, Any] = {"logicalLocations": [{"fullyQualifiedName": problem.jsonpath, "kind": "member"}]}
    if file is not None:
        uri, base = _uri(file)
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri, **base}}
        if problem.span:
            s = problem.span
            region = {"startLine": s.line, "startColumn": s.col, "endLine": s.end_line, "endColumn": s.end_col}
            physical["region"] = region
        location["physicalLocation"] = physical
    return {
        "ruleId": problem.code,
        "ruleIndex": rules[problem.code],
        "level": "warning" if problem.severity == "warning" else "error",
        "message": {"text": problem.text},
        "locations": [location],
    }


def sarif_log(findings: Iterable[tuple[str | None, Problem]]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one fusec run: one result per problem and warning, the codes as rules."""
    rules: dict[str, int] = {}
    results = [_result(file, problem, rules) for file, problem in findings]
    driver = {
        "name": "fusec",
        "version": __version__,
        "semanticVersion": __version__,
        "informationUri": INFORMATION_URI,
        "rules": [_rule(code) for code in rules],
    }
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "columnKind": "unicodeCodePoints",
        "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(os.getcwd()).as_uri() + "/"}},
        "results": results,
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _escape(text: str, property_value: bool = False) -> str:
    """GitHub's workflow-command escaping: %, CR and LF always; ``:`` and ``,`` in property values."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def github_line(file: str | None, problem: Problem) -> str:
    """One GitHub Actions annotation: ``::error file=F,line=L,col=C,...,title=fusec CODE::$.path: message``."""
    props = []
    if file is not None:
        props.append(f"file={_escape(printable(file), True)}")
        if problem.span:
            s = problem.span
            props += [f"line={s.line}", f"col={s.col}", f"endLine={s.end_line}", f"endColumn={s.end_col}"]
    props.append(f"title={_escape(f'fusec {problem.code}', True)}")
    kind = "warning" if problem.severity == "warning" else "error"
    message = f"{printable(problem.jsonpath, MAX_MESSAGE)}: {problem.text}"
    return f"::{kind} {','.join(props)}::{_escape(message)}"
