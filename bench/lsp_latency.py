"""`fusec lsp`: edit -> diagnostics on an 800-node spec in a warm server, against a cold `fusec check`.

The server runs as editors run it (`fusec lsp`, a child process spoken to
over stdio with LSP's framing); it opens the spec once and is warmed with a
few edits. Each timed edit is one small incremental change, timed from the
moment it is written to the server's stdin to the moment the diagnostics
for that version arrive: the debounce (server.DEBOUNCE, 0.1 s), the full
check and the conversion to diagnostics. Two kinds of edit alternate: one
that keeps the spec valid (a `doc` string changes) and one that breaks a
config key (`units` -> `unitz`) and mends it again, so the error path
(places, did-you-mean, quick-fix data) is measured too. The baseline is
`fusec check` of the same file in a fresh process (start-up included).
Target: every edit's diagnostics within 0.3 s (rows judged on their median).

    python bench/lsp_latency.py [--quick] [--lsp-nodes N] [--lsp-edits N]
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from gen_specs import make_spec
from harness import QUIET_ENV, Row, checked_child, fusec, interleave, print_rows

NAME = "lsp"
TITLE = "fusec lsp: edit -> diagnostics, 800-node spec, warm server (<= 0.3 s) vs a cold fusec check"
TARGET_S = 0.3


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--lsp-nodes", type=int, help="spec size in nodes (default 800)")
    group.add_argument("--lsp-edits", type=int, help="timed edits of each kind (default 15; --quick 4)")


class Server:
    """A `fusec lsp` child process and a reader thread that queues what it sends."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            fusec("lsp"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=QUIET_ENV
        )
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = stream.read(1)
                if not byte:
                    return
                header += byte
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            self.inbox.put(json.loads(stream.read(length)))

    def send(self, method: str, params: Any, request: bool = False) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return message.get("id")

    def wait(self, test: Any, timeout: float = 60.0) -> dict[str, Any]:
        """The first message ``test`` accepts (others are dropped)."""
        end = time.monotonic() + timeout
        while True:
            message = self.inbox.get(timeout=max(end - time.monotonic(), 0.001))
            if test(message):
                return message

    def diagnostics(self, version: int) -> list[Any]:
        def published(m: dict[str, Any]) -> bool:
            return m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("version") == version

        return list(self.wait(published)["params"]["diagnostics"])

    def close(self) -> None:
        number = self.send("shutdown", None, request=True)
        self.wait(lambda m: m.get("id") == number)
        self.send("exit", None)
        self.proc.wait(timeout=30)


class Session:
    """One open document in a warm server, edited in place."""

    def __init__(self, server: Server, path: Path) -> None:
        self.server, self.uri, self.version = server, path.as_uri(), 1
        self.lines = path.read_text().split("\n")
        number = server.send(
            "initialize", {"processId": None, "rootUri": path.parent.as_uri(), "capabilities": {}}, request=True
        )
        server.wait(lambda m: m.get("id") == number)
        server.send("initialized", {})
        item = {"uri": self.uri, "languageId": "json", "version": 1, "text": path.read_text()}
        server.send("textDocument/didOpen", {"textDocument": item})
        server.diagnostics(1)

    def edit(self, needle: str, new: str) -> tuple[float, int]:
        """Replace ``needle`` (its first line holding it) by ``new``; seconds until its diagnostics, and their count."""
        line = next(i for i, text in enumerate(self.lines) if needle in text)
        col = self.lines[line].index(needle)
        self.lines[line] = self.lines[line].replace(needle, new, 1)
        self.version += 1
        change = {
            "range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col + len(needle)}},
            "text": new,
        }
        start = time.perf_counter()
        self.server.send(
            "textDocument/didChange",
            {"textDocument": {"uri": self.uri, "version": self.version}, "contentChanges": [change]},
        )
        found = self.server.diagnostics(self.version)
        return time.perf_counter() - start, len(found)


def measure(nodes: int, edits: int) -> list[Row]:
    """Edit latency of both kinds, and the cold check of the same file, interleaved."""
    with tempfile.TemporaryDirectory(prefix="fusec-lsp-bench-") as tmp:
        spec = Path(tmp) / f"chain_{nodes}.json"
        spec.write_text(json.dumps(make_spec("chain", nodes), indent=1))
        server = Server()
        session = Session(server, spec)
        flip = {"doc": False, "key": False}

        def doc_edit() -> float:
            old, new = ("(chain", "[chain") if not flip["doc"] else ("[chain", "(chain")
            flip["doc"] = not flip["doc"]
            seconds, count = session.edit(old, new)
            assert count == (2 if flip["key"] else 0), f"a doc edit gave {count} diagnostics"
            return seconds

        def key_edit() -> float:
            old, new = ('"units"', '"unitz"') if not flip["key"] else ('"unitz"', '"units"')
            flip["key"] = not flip["key"]
            seconds, count = session.edit(old, new)
            assert count == (2 if flip["key"] else 0), f"a key edit gave {count} diagnostics"
            return seconds

        def cold() -> float:
            return checked_child(fusec("check", str(spec))).seconds

        try:
            valid, broken, checks = interleave([doc_edit, key_edit, cold], edits, warmup=2)
        finally:
            server.close()
    note = f"{nodes}-node chain spec"
    alone = "the ratio column shows the median in seconds (no baseline), judged against 0.3 s"
    return [
        Row("lsp latency", "edit -> diagnostics (valid edit)", valid, checks, "s", "f/b", note=note),
        Row("lsp latency", "edit -> diagnostics (edit with errors)", broken, checks, "s", "f/b", note=note),
        Row("lsp latency", "edit -> diagnostics (valid edit), seconds", valid, [], "s", "exp", hi=TARGET_S, note=alone),
        Row("lsp latency", "edit -> diagnostics (errors), seconds", broken, [], "s", "exp", hi=TARGET_S, note=alone),
    ]


def run(args: argparse.Namespace) -> list[Row]:
    nodes = args.lsp_nodes or 800
    edits = args.lsp_edits or (4 if args.quick else 15)
    return measure(nodes, edits)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    add_arguments(ap.add_argument_group("lsp"))
    print_rows(run(ap.parse_args()))
    sys.exit(0)
