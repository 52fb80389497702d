"""``fusec lsp`` through a real client over stdio (pytest-lsp): one server for the module.

Every request goes through the JSON-RPC wire as an editor's would; nothing
calls a handler directly. The server never imports TensorFlow (the check
does not), so these tests are not ``slow``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Three problems on three lines: a typo'd config key (line 6), a shape mismatch (line 7), a dangling reference (8).
BROKEN = """{
  "fusec": 1,
  "name": "demo",
  "inputs": {"x": {"shape": [8]}, "img": {"shape": [4, 4, 3]}},
  "nodes": {
    "h": {"layer": "Dense", "config": {"unitz": 16}, "inputs": "x"},
    "j": {"merge": "add", "inputs": ["x", "img"]},
    "o": {"layer": "Dense", "config": {"units": 1}, "inputs": "hh"}
  },
  "outputs": {"y": {"from": "o", "loss": "mse"}}
}
"""

# A valid spec with a block (instance ports), a shared layer and a sub-model file.
GOOD = """{
  "fusec": 1,
  "name": "good",
  "inputs": {"x": {"shape": [8]}},
  "shared": {"head": {"layer": "Dense", "config": {"units": 2}}},
  "blocks": {
    "pair": {
      "inputs": ["a"],
      "nodes": {"p": {"layer": "Dense", "config": {"units": 4}, "inputs": "a"}, "q": {"layer": "ReLU", "inputs": "p"}},
      "outputs": {"left": "p", "right": "q"}
    }
  },
  "nodes": {
    "enc": {"layer": "Dense", "config": {"units": 16, "activation": "relu"}, "inputs": "x"},
    "two": {"block": "pair", "inputs": "enc"},
    "both": {"merge": "concat", "inputs": ["two.left", "two.right", "enc"]},
    "sub": {"model": "sub.json", "inputs": "both"},
    "out": {"shared": "head", "inputs": "sub"}
  },
  "outputs": {"y": {"from": "out", "loss": "mse"}}
}
"""

SUB = {
    "fusec": 1,
    "name": "sub",
    "inputs": {"v": {"shape": [24]}},
    "nodes": {"w": {"layer": "Dense", "config": {"units": 3}, "inputs": "v"}},
    "outputs": {"w": {"from": "w", "loss": "mse"}},
}


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-m", "fusec", "lsp", "--stdio"]),
)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest) -> Any:
    folder = request.getfixturevalue("tmp_path_factory").mktemp("lsp")
    (folder / "sub.json").write_text(json.dumps(SUB))
    lsp_client.folder = folder  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=pytest_lsp.client_capabilities("visual-studio-code"),
            root_uri=folder.as_uri(),
        )
    )
    yield
    await lsp_client.shutdown_session()


async def _diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    """The next diagnostics published for ``uri`` (the caller popped the previous ones)."""
    for _ in range(500):
        if uri in client.diagnostics:
            return list(client.diagnostics[uri])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no diagnostics for {uri}")


async def _open(client: LanguageClient, name: str, text: str) -> str:
    """Open a document (its file written too, so go-to-definition finds siblings); wait for its check."""
    path = Path(client.folder) / name  # type: ignore[attr-defined]
    path.write_text(text)
    uri = path.as_uri()
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="json", version=1, text=text)
        )
    )
    await _diagnostics(client, uri)
    return uri


def _at(text: str, needle: str, offset: int = 1) -> types.Position:
    """The position ``offset`` characters into the first ``needle`` of ``text``."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return types.Position(line=line, character=index - (text.rfind("\n", 0, index) + 1))


def _doc(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri)


async def test_three_problems_at_their_lines(client: LanguageClient) -> None:
    uri = await _open(client, "broken.json", BROKEN)
    found = client.diagnostics[uri]
    by_line = {(d.range.start.line, str(d.code)) for d in found}
    assert (5, "schema") in by_line  # unknown key `unitz`, on line 6 (0-based 5)
    assert any(d.range.start.line == 6 and "broadcast" in d.message for d in found)  # the shape mismatch
    dangling = next(d for d in found if "hh" in d.message)
    assert dangling.range.start.line == 7 and dangling.code == "reference"
    column = BROKEN.splitlines()[7].index('"hh"')
    assert dangling.range.start.character < column < dangling.range.end.character
    assert all(d.source == "fusec" and d.severity == types.DiagnosticSeverity.Error for d in found)
    unitz = next(d for d in found if "unitz" in d.message)
    assert "did you mean `units`?" in unitz.message


async def test_edit_rechecks_and_close_clears(client: LanguageClient) -> None:
    uri = await _open(client, "edited.json", BROKEN)
    client.diagnostics.pop(uri)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=GOOD)],
        )
    )
    assert await _diagnostics(client, uri) == []
    client.diagnostics.pop(uri)
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=_doc(uri)))
    assert await _diagnostics(client, uri) == []


async def test_broken_json_at_its_place(client: LanguageClient) -> None:
    text = '{\n  "fusec": 1,\n  "name" "x"\n}\n'
    uri = await _open(client, "notjson.json", text)
    (only,) = client.diagnostics[uri]
    assert only.code == "json" and only.range.start.line == 2


async def test_warning_is_a_warning(client: LanguageClient) -> None:
    text = GOOD.replace('"loss": "mse"', '"loss": "categorical_crossentropy"')
    uri = await _open(client, "warned.json", text)
    found = client.diagnostics[uri]
    assert found and {d.severity for d in found} == {types.DiagnosticSeverity.Warning}


async def test_sub_model_problem_on_its_node(client: LanguageClient) -> None:
    (Path(client.folder) / "bad_sub.json").write_text(json.dumps({**SUB, "fusec": 2}))  # type: ignore[attr-defined]
    text = GOOD.replace('"sub.json"', '"bad_sub.json"')
    uri = await _open(client, "parent.json", text)
    (only,) = client.diagnostics[uri]
    assert only.range.start.line == _at(text, '"bad_sub.json"').line and "bad_sub.json" in only.message


async def _complete(client: LanguageClient, uri: str, position: types.Position) -> list[types.CompletionItem]:
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=_doc(uri), position=position)
    )
    assert isinstance(result, types.CompletionList)
    return result.items


async def test_completion(client: LanguageClient) -> None:
    uri = await _open(client, "good.json", GOOD)
    assert list(client.diagnostics[uri]) == []
    layers = {i.label: i for i in await _complete(client, uri, _at(GOOD, '"Dense", "config": {"units": 16', 3))}
    assert "Conv2D" in layers and "concat" not in layers
    assert "Fully connected" in str(layers["Dense"].documentation)
    merges = {i.label for i in await _complete(client, uri, _at(GOOD, '"concat"', 2))}
    assert "gated" in merges and "Dense" not in merges
    refs = {i.label for i in await _complete(client, uri, _at(GOOD, '"two.left"', 2))}
    assert {"x", "enc", "two.left", "two.right", "sub"} <= refs and "both" not in refs
    keys = {i.label: i for i in await _complete(client, uri, _at(GOOD, '{"units": 16', 1))}
    assert keys["use_bias"].text_edit.new_text == '"use_bias": ${1:true}'  # type: ignore[union-attr]
    assert keys["use_bias"].insert_text_format == types.InsertTextFormat.Snippet
    acts = {i.label for i in await _complete(client, uri, _at(GOOD, '"relu"', 2))}
    assert {"relu", "gelu", "softmax"} <= acts
    losses = {i.label for i in await _complete(client, uri, _at(GOOD, '"mse"', 2))}
    assert {"mse", "huber", "binary_crossentropy"} <= losses
    shared = {i.label for i in await _complete(client, uri, _at(GOOD, '"head", "inputs"', 2))}
    assert shared == {"head"}
    blocks = {i.label for i in await _complete(client, uri, _at(GOOD, '"pair", "inputs"', 2))}
    assert blocks == {"pair"}


async def test_new_node_snippet(client: LanguageClient) -> None:
    text = GOOD.replace('"nodes": {\n', '"nodes": {\n    \n')
    uri = await _open(client, "snippet.json", text)
    items = {i.label: i for i in await _complete(client, uri, _at(text, '"nodes": {\n    \n', 15))}
    dense = items["new Dense node"].text_edit
    assert (
        dense is not None
        and dense.new_text == '"${1:dense}": {"layer": "Dense", "config": {"units": 4}, "inputs": "${2}"}'
    )


async def test_completion_while_typing(client: LanguageClient) -> None:
    text = GOOD.replace('"out": {"shared"', '"new": {"layer": "Con\n    "out": {"shared"')
    uri = await _open(client, "typing.json", text)
    labels = {i.label for i in await _complete(client, uri, _at(text, '"Con\n', 4))}
    assert {"Conv1D", "Conv2D"} <= labels


async def _hover(client: LanguageClient, uri: str, position: types.Position) -> str:
    result = await client.text_document_hover_async(types.HoverParams(text_document=_doc(uri), position=position))
    assert result is not None and isinstance(result.contents, types.MarkupContent)
    return result.contents.value


async def test_hover(client: LanguageClient) -> None:
    uri = await _open(client, "hover.json", GOOD)
    node = await _hover(client, uri, _at(GOOD, '"enc": {', 2))
    assert "Dense (layer)" in node and "(None, 16)" in node and "144" in node and "`x`: `(None, 8)`" in node
    ref = await _hover(client, uri, _at(GOOD, '"sub"}', 2))
    assert "(None, 3)" in ref
    layer = await _hover(client, uri, _at(GOOD, '"ReLU"', 2))
    assert "ReLU" in layer and "max_value" in layer
    key = await _hover(client, uri, _at(GOOD, '"activation"', 2))
    assert "activation" in key and "default `null`" in key


async def test_definition(client: LanguageClient) -> None:
    uri = await _open(client, "def.json", GOOD)

    async def where(position: types.Position) -> list[types.Location]:
        found = await client.text_document_definition_async(
            types.DefinitionParams(text_document=_doc(uri), position=position)
        )
        assert isinstance(found, list)
        return found

    (enc,) = await where(_at(GOOD, '"enc"]', 2))
    assert enc.uri == uri and enc.range.start.line == _at(GOOD, '"enc": {').line
    ports = await where(_at(GOOD, '"two.left"', 2))
    assert {loc.range.start.line for loc in ports} == {_at(GOOD, '"two": {').line, _at(GOOD, '"outputs": {"left"').line}
    (head,) = await where(_at(GOOD, '"head", "inputs"', 2))
    assert head.range.start.line == _at(GOOD, '"shared": {"head"').line
    (sub,) = await where(_at(GOOD, '"sub.json"', 2))
    assert sub.uri.endswith("/sub.json") and sub.range.start.line == 0


async def test_rename(client: LanguageClient) -> None:
    uri = await _open(client, "rename.json", GOOD)
    edit = await client.text_document_rename_async(
        types.RenameParams(text_document=_doc(uri), position=_at(GOOD, '"two": {', 2), new_name="twin")
    )
    assert edit is not None and edit.changes is not None
    texts = sorted(e.new_text for e in edit.changes[uri])
    assert texts == ['"twin"', '"twin.left"', '"twin.right"']
    edit = await client.text_document_rename_async(
        types.RenameParams(text_document=_doc(uri), position=_at(GOOD, '"from": "out"', 10), new_name="final")
    )
    assert edit is not None and edit.changes is not None
    assert sorted(e.new_text for e in edit.changes[uri]) == ['"final"', '"final"']
    for bad in ("enc", "2x"):
        with pytest.raises(JsonRpcException):
            await client.text_document_rename_async(
                types.RenameParams(text_document=_doc(uri), position=_at(GOOD, '"two": {', 2), new_name=bad)
            )


async def test_symbols(client: LanguageClient) -> None:
    uri = await _open(client, "symbols.json", GOOD)
    found = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=_doc(uri)))
    assert found is not None
    groups = {s.name: s for s in found if isinstance(s, types.DocumentSymbol)}
    assert list(groups) == ["inputs", "shared", "blocks", "nodes", "outputs"]
    nodes = {s.name: s.detail for s in groups["nodes"].children or []}
    assert nodes == {
        "enc": "Dense",
        "two": "block pair",
        "both": "concat",
        "sub": "model sub.json",
        "out": "shared head",
    }


async def test_quick_fix(client: LanguageClient) -> None:
    uri = await _open(client, "fix.json", BROKEN)
    found = list(client.diagnostics[uri])
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=_doc(uri),
            range=found[0].range,
            context=types.CodeActionContext(diagnostics=found),
        )
    )
    assert actions is not None
    edits = {
        a.title: e.new_text
        for a in actions
        if isinstance(a, types.CodeAction) and a.edit and a.edit.changes
        for e in a.edit.changes[uri]
    }
    assert edits == {"Change `unitz` to `units`": '"units"', "Change `hh` to `h`": '"h"'}
