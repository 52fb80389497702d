// Which documents are fusec specs, and how to start `fusec lsp`: plain functions,
// kept apart from extension.js so that `node --test` checks them without VS Code.
"use strict";

const path = require("node:path");

// A spec is named *.fusec.json, or says which schema it follows, or carries the
// spec format's version key `"fusec": <integer>` near its top.
const NAME = /\.fusec\.json$/i;
const SCHEMA_KEY = /"\$schema"\s*:\s*"[^"]*fusec[^"]*"/;
const VERSION_KEY = /"fusec"\s*:\s*\d+\s*[,}]/;
const HEAD_CHARS = 4096;

/**
 * Whether a JSON document is a fusec spec.
 * @param {string} fileName the document's path (or URI path)
 * @param {string} text the document's text (only its first 4096 characters are read)
 * @returns {boolean}
 */
function isFusecSpec(fileName, text) {
  if (NAME.test(fileName)) return true;
  const head = text.slice(0, HEAD_CHARS);
  return SCHEMA_KEY.test(head) || VERSION_KEY.test(head);
}

/**
 * The command that starts the server, from the `fusec.path` setting.
 * `${workspaceFolder}` and a leading `~` are expanded.
 * @param {string | undefined} setting the `fusec.path` value ("fusec" when empty)
 * @param {string | undefined} workspaceFolder the first workspace folder's path
 * @param {string | undefined} home the user's home folder
 * @returns {{command: string, args: string[]}}
 */
function serverCommand(setting, workspaceFolder, home) {
  let command = (setting || "").trim() || "fusec";
  if (workspaceFolder) command = command.split("${workspaceFolder}").join(workspaceFolder);
  if (home && (command === "~" || command.startsWith("~/"))) {
    command = path.join(home, command.slice(1));
  }
  return { command, args: ["lsp"] };
}

module.exports = { isFusecSpec, serverCommand };
