// fusec for VS Code: starts `fusec lsp` over stdio for fusec specs (*.fusec.json, and
// JSON files that name the fusec schema or carry `"fusec": N`). Everything the editor
// shows (diagnostics, completion, hover, definition, rename, outline, quick fixes)
// comes from the server; this file only decides which documents it sees.
"use strict";

const os = require("node:os");
const vscode = require("vscode");
const { LanguageClient, RevealOutputChannelOn } = require("vscode-languageclient/node");
const { isFusecSpec, serverCommand } = require("./fusecfiles.js");

/** @type {LanguageClient | undefined} */
let client;
/** URIs of the open documents the server was told about. */
const specs = new Set();

// Every request the client sends about a document goes through one of these;
// documents that are not fusec specs never reach the server.
const DOCUMENT_FEATURES = [
  "provideCompletionItem",
  "resolveCompletionItem",
  "provideHover",
  "provideDefinition",
  "provideReferences",
  "provideDocumentHighlights",
  "provideDocumentSymbols",
  "provideCodeActions",
  "provideRenameEdits",
  "prepareRename",
  "provideSignatureHelp",
  "provideDocumentFormattingEdits",
  "provideDocumentRangeFormattingEdits",
  "provideDocumentLinks",
  "provideCodeLenses",
  "provideFoldingRanges",
  "provideSelectionRanges",
  "provideInlayHints",
  "provideDocumentSemanticTokens",
];

function uriOf(documentOrEvent) {
  if (documentOrEvent instanceof vscode.Uri) return documentOrEvent.toString();
  const document = documentOrEvent && documentOrEvent.document ? documentOrEvent.document : documentOrEvent;
  return document && document.uri ? document.uri.toString() : undefined;
}

function middleware() {
  const mw = {
    didOpen(document, next) {
      if (!isFusecSpec(document.uri.path, document.getText())) return Promise.resolve();
      specs.add(document.uri.toString());
      return next(document);
    },
    didClose(document, next) {
      if (!specs.delete(document.uri.toString())) return Promise.resolve();
      return next(document);
    },
  };
  for (const name of ["didChange", "didSave", "willSave"]) {
    mw[name] = (event, next) => (specs.has(uriOf(event)) ? next(event) : Promise.resolve());
  }
  mw.provideDiagnostics = (document, previousResultId, token, next) =>
    specs.has(uriOf(document)) ? next(document, previousResultId, token) : { kind: "full", items: [] };
  mw.willSaveWaitUntil = (event, next) => (specs.has(uriOf(event)) ? next(event) : Promise.resolve([]));
  for (const name of DOCUMENT_FEATURES) {
    mw[name] = (first, ...rest) => {
      const next = rest.pop();
      if (name === "resolveCompletionItem") return next(first, ...rest);
      return specs.has(uriOf(first)) ? next(first, ...rest) : undefined;
    };
  }
  return mw;
}

function startClient(context) {
  const folders = vscode.workspace.workspaceFolders;
  const folder = folders && folders.length > 0 ? folders[0].uri.fsPath : undefined;
  const setting = vscode.workspace.getConfiguration("fusec").get("path");
  const { command, args } = serverCommand(setting, folder, os.homedir());
  const serverOptions = { command, args, options: folder ? { cwd: folder } : undefined };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "json" },
      { scheme: "file", language: "jsonc" },
      { scheme: "untitled", language: "json" },
    ],
    middleware: middleware(),
    revealOutputChannelOn: RevealOutputChannelOn.Error,
  };
  specs.clear();
  client = new LanguageClient("fusec", "fusec", serverOptions, clientOptions);
  return client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `fusec: could not start "${command} lsp" (${err.message || err}). ` +
        'Install fusec, or set "fusec.path" to its executable (e.g. ${workspaceFolder}/.venv/bin/fusec).',
    );
  });
}

async function restartClient(context) {
  if (client) {
    const old = client;
    client = undefined;
    await old.stop().catch(() => undefined);
  }
  await startClient(context);
}

function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("fusec.restartServer", () => restartClient(context)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("fusec.path")) restartClient(context);
    }),
  );
  return startClient(context);
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
