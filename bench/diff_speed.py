"""`fusec diff` of two 800-node specs, end to end in a fresh process, against `fusec check` of one.

The old spec is ``gen_specs.py chain 800``; the new one changes about 25
nodes: 5 configs changed, 5 nodes added, 5 removed, 5 renamed, 5 renamed
and changed. Each sample
is one fresh process (``fusec diff OLD NEW --quiet``, exit 1: they differ),
interleaved with ``fusec check OLD``; median of 7 (--quick 3). The row: the
diff's wall time (target 0.5 s), and its ratio to one check. Both run with Python's
bytecode cache on, as an installed fusec does.

    python bench/diff_speed.py            # or: python bench/run_all.py diff
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gen_specs import make_spec
from harness import Row, fusec, interleave

NAME = "diff"
TITLE = "fusec diff of two 800-node specs, fresh process (only when named)   <= 0.5 s"
TARGET_S = 0.5


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--diff-nodes", type=int, help="nodes per spec (default 800)")
    group.add_argument("--diff-rounds", type=int, help="interleaved rounds (default 7; --quick 3)")


def changed(doc: dict[str, Any]) -> dict[str, Any]:
    """About 25 nodes changed: 5 configs, 5 added, 5 removed, 5 renamed, 5 renamed and changed (spread along)."""
    new = json.loads(json.dumps(doc))
    nodes = new["nodes"]
    ids = list(nodes)
    step = len(ids) // 26
    for k in range(5):  # configs changed: Dense nodes (every third node is one)
        nid = ids[3 * (k * step // 3)]
        nodes[nid]["config"]["activation"] = "tanh"
    for k in range(5, 10):  # removed: a Dropout bypassed
        nid = ids[3 * (k * step // 3) + 2]
        follower = next(n for n in nodes.values() if n.get("inputs") == nid)
        follower["inputs"] = nodes.pop(nid)["inputs"]
    for k in range(10, 15):  # added: a Dropout inserted
        nid = ids[3 * (k * step // 3)]
        follower = next(n for n in nodes.values() if n.get("inputs") == nid)
        follower["inputs"] = f"{nid}_drop"
        nodes[f"{nid}_drop"] = {"layer": "Dropout", "config": {"rate": 0.2}, "inputs": nid}
    for k in range(15, 20):  # renamed
        nid = ids[3 * (k * step // 3) + 1]
        nodes[f"{nid}_renamed"] = nodes.pop(nid)
        for n in nodes.values():
            if n.get("inputs") == nid:
                n["inputs"] = f"{nid}_renamed"
    for k in range(20, 25):  # renamed and changed: a Dense node (found by its neighbours)
        nid = ids[3 * (k * step // 3)]
        nodes[f"{nid}_v2"] = nodes.pop(nid)
        nodes[f"{nid}_v2"]["config"]["activation"] = "gelu"
        for n in nodes.values():
            if n.get("inputs") == nid:
                n["inputs"] = f"{nid}_v2"
    return new


#: As a user's install runs: Python caches compiled modules (a sandbox may set PYTHONDONTWRITEBYTECODE,
#: which makes every fresh process recompile fusec's modules, about 0.09 s here).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(cmd: list[str], ok: tuple[int, ...]) -> Any:
    def once() -> float:
        start = time.perf_counter()
        rc = subprocess.run(cmd, capture_output=True, check=False, env=_ENV).returncode
        elapsed = time.perf_counter() - start
        if rc not in ok:
            raise RuntimeError(f"{' '.join(cmd)} exited {rc}")
        return elapsed

    return once


def run(args: argparse.Namespace) -> list[Row]:
    """The entry point for bench/run_all.py: the diff against one check, fresh processes."""
    nodes = args.diff_nodes or 800
    rounds = args.diff_rounds or (3 if args.quick else 7)
    folder = Path(tempfile.mkdtemp(prefix="fusec-diff-"))
    old, new = folder / "old.json", folder / "new.json"
    doc = make_spec("chain", nodes)
    old.write_text(json.dumps(doc, indent=1))
    new.write_text(json.dumps(changed(doc), indent=1))
    diff = _timed(fusec("diff", str(old), str(new), "--quiet"), (1,))
    check = _timed(fusec("check", str(old)), (0,))
    d, c = interleave([diff, check], rounds, warmup=1)
    return [
        Row(NAME, f"diff, {nodes}+{nodes} nodes / check of one", d, c, "s", "f/b", note="fresh processes"),
        Row(NAME, f"diff, {nodes}+{nodes} nodes, end to end", d, [], "s", "exp", hi=TARGET_S, note="fresh processes"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser.add_argument_group("diff"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for row in run(args):
        fus, base = sorted(row.fusec)[len(row.fusec) // 2], sorted(row.base)[len(row.base) // 2]
        print(f"{row.name}: {fus:.3f} s vs {base:.3f} s (ratio {fus / base:.2f})")
    sys.exit(0)


if __name__ == "__main__":
    main()
