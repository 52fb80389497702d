// node --test editors/vscode/test/
"use strict";

const assert = require("node:assert/strict");
const test = require("node:test");
const { isFusecSpec, serverCommand } = require("../fusecfiles.js");

test("a *.fusec.json file is a spec whatever it holds", () => {
  assert.equal(isFusecSpec("/w/model.fusec.json", "{}"), true);
  assert.equal(isFusecSpec("/w/Model.FUSEC.JSON", ""), true);
});

test("a JSON file naming the fusec schema is a spec", () => {
  const text = '{\n  "$schema": "https://fusec.dev/schemas/fusec-1.schema.json",\n  "nodes": {}\n}';
  assert.equal(isFusecSpec("/w/a.json", text), true);
  assert.equal(isFusecSpec("/w/b.json", '{"$schema": "../schemas/fusec.schema.json"}'), true);
});

test("a JSON file with the version key is a spec", () => {
  assert.equal(isFusecSpec("/w/a.json", '{\n  "fusec": 1,\n  "name": "x"\n}'), true);
  assert.equal(isFusecSpec("/w/a.json", '{"fusec": 1}'), true);
});

test("other JSON files are left alone", () => {
  assert.equal(isFusecSpec("/w/package.json", '{"name": "fusec", "version": "1.0.0"}'), false);
  assert.equal(isFusecSpec("/w/tsconfig.json", '{"$schema": "https://json.schemastore.org/tsconfig"}'), false);
  assert.equal(isFusecSpec("/w/a.json", '{"fusec": "yes"}'), false);
  const late = `{"data": "${"x".repeat(5000)}", "fusec": 1}`;
  assert.equal(isFusecSpec("/w/big.json", late), false);
});

test("the server command comes from fusec.path", () => {
  assert.deepEqual(serverCommand(undefined, "/w", "/h"), { command: "fusec", args: ["lsp"] });
  assert.deepEqual(serverCommand("  ", "/w", "/h"), { command: "fusec", args: ["lsp"] });
  assert.equal(serverCommand("${workspaceFolder}/.venv/bin/fusec", "/w", "/h").command, "/w/.venv/bin/fusec");
  assert.equal(serverCommand("~/.local/bin/fusec", "/w", "/h").command, "/h/.local/bin/fusec");
  assert.equal(serverCommand("/opt/fusec/bin/fusec", undefined, undefined).command, "/opt/fusec/bin/fusec");
});
