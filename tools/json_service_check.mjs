#!/usr/bin/env node
// What a plain JSON editor shows with fusec's JSON Schema, measured with the
// language service VS Code itself uses (vscode-json-languageservice).
//
// Usage:
//   npm install --prefix /tmp/fusec-editor-check \
//       vscode-json-languageservice@5 vscode-languageserver-textdocument@1
//   node tools/json_service_check.mjs "$(fusec schema --path)" \
//       --modules /tmp/fusec-editor-check/node_modules
//
// SCHEMA may be "-" (read from stdin: `fusec schema | node tools/json_service_check.mjs -`).
// --modules (or $FUSEC_NODE_MODULES) names the node_modules folder that holds the
// two packages; without it they are resolved from tools/ as usual. The script opens
// one small sample spec and prints, as plain text:
//   - hover on a layer name ("Dense") and on a merge name ("concat");
//   - the completion items for a config key of a Dense node (label -> inserted text);
//   - the completion items for a new node's value (`"c": |`: snippets);
//   - the diagnostics for an unknown layer name ("Dence").
// Exit code 0 when it ran (whatever the schema offers), 2 on a usage error.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const USAGE = "usage: node tools/json_service_check.mjs SCHEMA.json|- [--modules DIR]";
const CURSOR = "§"; // marks the positions we ask about; removed from the text

// The sample spec. Each CURSOR marks one question, in this order:
// hover on "Dense", a new Dense config key, hover on "concat", a new node's value.
const SAMPLE = `{
  "$schema": "https://fusec.dev/schemas/fusec-1.schema.json",
  "fusec": 1,
  "name": "sample",
  "inputs": {"image": {"shape": [16]}, "text": {"shape": [8]}},
  "nodes": {
    "a": {"layer": "De§nse", "config": {§}, "inputs": "image"},
    "b": {"layer": "Dence", "config": {"units": 8}, "inputs": "text"},
    "both": {"merge": "con§cat", "inputs": ["a", "b"]},
    "c": §
    "head": {"layer": "Dense", "config": {"units": 1}, "inputs": "both"}
  },
  "outputs": {"head": {"from": "head", "loss": "mse"}}
}
`;

// The sample as a user would save it: the only error left is the unknown "Dence".
const VALID = SAMPLE.replace("{§}", '{"units": 8}')
  .replace('    "c": §\n', "")
  .replaceAll(CURSOR, "");

function parseArgs(argv) {
  const args = { schema: null, modules: process.env.FUSEC_NODE_MODULES || null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--modules" && i + 1 < argv.length) args.modules = argv[++i];
    else if (argv[i].startsWith("-") && argv[i] !== "-") return null;
    else if (args.schema === null) args.schema = argv[i];
    else return null;
  }
  return args.schema === null ? null : args;
}

function loadModules(modules) {
  const base = modules ? resolve(modules, "..", "package.json") : import.meta.url;
  const require = createRequire(base);
  return {
    ls: require("vscode-json-languageservice"),
    td: require("vscode-languageserver-textdocument"),
  };
}

// The sample without its cursors, and each cursor's offset in that text.
function splitCursors(text) {
  const offsets = [];
  let clean = "";
  for (const ch of text) {
    if (ch === CURSOR) offsets.push(clean.length);
    else clean += ch;
  }
  return { clean, offsets };
}

function oneLine(text, max = 200) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function hoverText(hover) {
  if (!hover) return "(no hover)";
  const parts = Array.isArray(hover.contents) ? hover.contents : [hover.contents];
  const text = parts.map((p) => (typeof p === "string" ? p : p.value)).join(" | ");
  return oneLine(text.replace(/\\([\\`*_{}[\]()#+\-.!"$])/g, "$1")); // markdown escapes
}

function insertedText(item) {
  if (item.textEdit) return item.textEdit.newText ?? item.textEdit.insert?.newText;
  return item.insertText ?? item.label;
}

function printCompletions(title, list, limit = 40) {
  const items = list ? list.items : [];
  console.log(`${title}: ${items.length} items`);
  for (const item of items.slice(0, limit)) {
    const doc = item.documentation
      ? ` — ${oneLine(typeof item.documentation === "string" ? item.documentation : item.documentation.value, 90)}`
      : "";
    console.log(`  ${item.label} -> ${oneLine(insertedText(item), 120)}${doc}`);
  }
  if (items.length > limit) console.log(`  … ${items.length - limit} more`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args === null) {
    console.error(USAGE);
    process.exit(2);
  }
  const { ls, td } = loadModules(args.modules);
  const fromStdin = args.schema === "-";
  const schemaPath = fromStdin ? "(stdin)" : resolve(args.schema);
  const schema = JSON.parse(readFileSync(fromStdin ? 0 : schemaPath, "utf8"));
  const id = schema.$id || (fromStdin ? "fusec-schema:stdin" : pathToFileURL(schemaPath).href);
  const service = ls.getLanguageService({
    schemaRequestService: (uri) => Promise.reject(new Error(`no network: ${uri}`)),
  });
  service.configure({
    validate: true,
    allowComments: false,
    schemas: [{ uri: id, fileMatch: ["*.fusec.json"], schema }],
  });
  const { clean, offsets } = splitCursors(SAMPLE);
  const doc = td.TextDocument.create("file:///work/sample.fusec.json", "json", 1, clean);
  const json = service.parseJSONDocument(doc);
  const at = (n) => doc.positionAt(offsets[n]);

  console.log(`schema: ${basename(schemaPath)} ($id ${schema.$id || "none"})`);
  console.log(`hover "Dense": ${hoverText(await service.doHover(doc, at(0), json))}`);
  console.log(`hover "concat": ${hoverText(await service.doHover(doc, at(2), json))}`);
  printCompletions("new config key of a Dense node", await service.doComplete(doc, at(1), json));
  printCompletions('a new node ("c": |)', await service.doComplete(doc, at(3), json), 12);
  const valid = td.TextDocument.create(doc.uri, "json", 2, VALID);
  const diagnostics = await service.doValidation(valid, service.parseJSONDocument(valid));
  console.log(`diagnostics: ${diagnostics.length}`);
  for (const d of diagnostics) {
    const where = `${d.range.start.line + 1}:${d.range.start.character + 1}`;
    console.log(`  ${where} ${oneLine(d.message)}`);
  }
}

main().catch((err) => {
  const hint =
    err.code === "MODULE_NOT_FOUND"
      ? " (install vscode-json-languageservice and vscode-languageserver-textdocument; pass their node_modules with --modules)"
      : "";
  console.error(`json_service_check: ${String(err.message || err).split("\n")[0]}${hint}`);
  process.exit(1);
});
