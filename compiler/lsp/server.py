"""``fusec lsp``: the language server, on pygls, over stdio.

The handlers here are thin: each finds the document's state and hands the
request to its module (diagnostics, completion, hover, navigation,
actions). Checks run off the event loop, on one worker thread, so the
server keeps answering while a large spec is checked; an edit cancels the
check still waiting out its debounce, and a check whose version is no
longer the newest is not published.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from ..version import __version__
from .actions import quick_fixes
from .completion import complete
from .diagnostics import Settings, diagnostics, internal_diagnostic, run_check
from .documents import DocState, View
from .hover import hover
from .navigation import RenameRefused, definition, prepare_rename, rename, symbols
from .text import from_position

#: Seconds an edit waits for the next one before the check runs (each edit restarts the wait).
DEBOUNCE = 0.1
TRIGGERS = ['"', ".", ":"]


class RequestFailed(JsonRpcException):
    """LSP's RequestFailed error: the request was valid, its answer is no (a refused rename)."""

    CODE = -32803
    MESSAGE = "Request failed"


class FusecServer(LanguageServer):
    """The server: open documents by URI, the check options, one worker thread for checks."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("fusec", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.settings = settings
        self.docs: dict[str, DocState] = {}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusec-check")

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Out-of-band errors go to the client's log, not a pop-up."""
        self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=str(error)))

    def sync(self, uri: str) -> DocState:
        """The state of ``uri``, brought up to the workspace's text and version."""
        doc = self.workspace.get_text_document(uri)
        state = self.docs.get(uri)
        if state is None:
            fs = to_fs_path(uri)
            path = Path(fs) if fs else Path.cwd() / "untitled.json"
            state = self.docs[uri] = DocState(uri, path.absolute(), View(doc.source), doc.version)
        else:
            state.update(doc.source, doc.version)
        return state

    def schedule(self, uri: str, delay: float) -> None:
        """Check ``uri`` after ``delay`` seconds, replacing a check still waiting."""
        state = self.sync(uri)
        if state.pending is not None and not state.pending.done():
            state.pending.cancel()
        state.pending = asyncio.get_running_loop().create_task(self._check(state, delay))

    async def _check(self, state: DocState, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        view, version = state.view, state.version
        loop = asyncio.get_running_loop()
        try:
            checked, found = await loop.run_in_executor(self.pool, self._diagnose, state.path, view)
        except Exception as exc:  # a bug in fusec must not take the server down
            logging.getLogger(__name__).exception("check failed")
            checked, found = None, [internal_diagnostic(exc)]
        if state.version != version or self.docs.get(state.uri) is not state:
            return  # a newer edit (or a close) came meanwhile: its own check publishes
        if checked is not None:
            state.checked = checked
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=state.uri, diagnostics=found, version=version)
        )

    def _diagnose(self, path: Path, view: View) -> tuple[Any, list[types.Diagnostic]]:
        outcome = run_check(path, view.text, self.settings)
        return outcome.checked, diagnostics(outcome, view, path)

    def close(self, uri: str) -> None:
        state = self.docs.pop(uri, None)
        if state is not None and state.pending is not None:
            state.pending.cancel()
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    def at(self, uri: str, position: types.Position) -> tuple[DocState, tuple[Any, ...], str]:
        """The document's state and the path and side (key or value) at ``position``."""
        state = self.sync(uri)
        line, col = from_position(state.view.lines, position)
        path, where = state.view.positions.path_at(line, col)
        return state, tuple(path), where


def make_server(settings: Settings | None = None) -> FusecServer:
    """A server with every feature registered."""
    server = FusecServer(settings or Settings())
    _register_sync(server)
    _register_requests(server)
    return server


def _register_sync(server: FusecServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: FusecServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: FusecServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, DEBOUNCE)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: FusecServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: FusecServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.close(params.text_document.uri)


# long: one small handler per request, registered together.
def _register_requests(server: FusecServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS))
    def on_completion(ls: FusecServer, params: types.CompletionParams) -> types.CompletionList:
        return complete(ls.sync(params.text_document.uri), params.position)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: FusecServer, params: types.HoverParams) -> types.Hover | None:
        return hover(ls.sync(params.text_document.uri), params.position)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: FusecServer, params: types.DefinitionParams) -> list[types.Location]:
        state, path, _ = ls.at(params.text_document.uri, params.position)
        return definition(state, path)

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    def on_prepare_rename(ls: FusecServer, params: types.PrepareRenameParams) -> types.Range | None:
        state, path, where = ls.at(params.text_document.uri, params.position)
        return prepare_rename(state, path, where)

    @server.feature(types.TEXT_DOCUMENT_RENAME)
    def on_rename(ls: FusecServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
        state, path, where = ls.at(params.text_document.uri, params.position)
        try:
            return rename(state, path, where, params.new_name)
        except RenameRefused as exc:
            raise RequestFailed(str(exc)) from None

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(ls: FusecServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        return symbols(ls.sync(params.text_document.uri))

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix])
    )
    def on_code_action(ls: FusecServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return quick_fixes(ls.sync(params.text_document.uri), params.context.diagnostics)


def serve(settings: Settings | None = None) -> None:
    """Run the server on stdin and stdout until the client ends it."""
    make_server(settings).start_io()
