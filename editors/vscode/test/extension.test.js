// node --test editors/vscode/test/ — extension.js against stand-ins for VS Code and the client.
"use strict";

const assert = require("node:assert/strict");
const Module = require("node:module");
const test = require("node:test");

class Uri {
  constructor(path) {
    this.path = path;
  }
  toString() {
    return `file://${this.path}`;
  }
}

const started = [];
const fakeVscode = {
  Uri,
  workspace: {
    workspaceFolders: [{ uri: { fsPath: "/w" } }],
    getConfiguration: () => ({ get: () => "${workspaceFolder}/.venv/bin/fusec" }),
    onDidChangeConfiguration: () => ({ dispose() {} }),
  },
  commands: { registerCommand: () => ({ dispose() {} }) },
  window: { showErrorMessage: () => undefined },
};
class FakeClient {
  constructor(id, name, serverOptions, clientOptions) {
    Object.assign(this, { id, serverOptions, clientOptions });
    started.push(this);
  }
  start() {
    return Promise.resolve();
  }
  stop() {
    return Promise.resolve();
  }
}
const fakeClientModule = { LanguageClient: FakeClient, RevealOutputChannelOn: { Error: 4 } };

const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === "vscode") return fakeVscode;
  if (request === "vscode-languageclient/node") return fakeClientModule;
  return load.call(this, request, ...rest);
};
const extension = require("../extension.js");

function doc(path, text) {
  return { uri: new Uri(path), getText: () => text };
}

test("activate starts `fusec lsp` from fusec.path", async () => {
  await extension.activate({ subscriptions: [] });
  const client = started.at(-1);
  assert.deepEqual(client.serverOptions.args, ["lsp"]);
  assert.equal(client.serverOptions.command, "/w/.venv/bin/fusec");
  assert.equal(client.serverOptions.transport, undefined); // no --stdio argument added
});

test("only fusec specs reach the server", async () => {
  const mw = started.at(-1).clientOptions.middleware;
  const sent = [];
  const next = (x) => {
    sent.push(x);
    return Promise.resolve("answer");
  };
  const spec = doc("/w/a.fusec.json", "{}");
  const other = doc("/w/package.json", '{"name": "x"}');
  await mw.didOpen(spec, next);
  await mw.didOpen(other, next);
  assert.deepEqual(sent, [spec]);
  await mw.didChange({ document: other }, next);
  await mw.didChange({ document: spec }, next);
  assert.equal(sent.length, 2);
  assert.equal(await mw.provideHover(other, {}, {}, next), undefined);
  assert.equal(await mw.provideHover(spec, {}, {}, next), "answer");
  assert.deepEqual(await mw.provideDiagnostics(other.uri, null, {}, next), { kind: "full", items: [] });
  await mw.didClose(other, next);
  await mw.didClose(spec, next);
  assert.equal(sent.length, 4);
  assert.equal(await mw.provideHover(spec, {}, {}, next), undefined); // closed
  Module._load = load;
});
