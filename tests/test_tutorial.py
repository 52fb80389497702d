"""The tutorial of docs/training.md runs as written, and README's excerpt is the same commands.

How the commands are found (so the doc and this test cannot drift):

* The tutorial is the section of docs/training.md under the heading
  ``## Tutorial: ...``, up to the next ``## `` heading.
* Every fenced ``sh`` block in it is run, in order, one command at a time
  (a line ending in ``\\`` continues on the next; blank and ``#`` lines are
  skipped), with ``bash -c``, in a fresh folder holding copies of the files
  the tutorial reads (``COPIED``), this Python's ``bin`` folder first on
  ``PATH`` (``python``, ``fusec``, ``saved_model_cli``). Every fenced
  ``python`` block is run where it appears, with this Python. Each must exit 0.
* A ``text`` block right after a run block shows what the run prints: each of
  its lines must appear in the output, except lines that carry numbers a run
  does not repeat exactly (timings, losses, probabilities: ``VARYING``) and
  lines with ``...``; ``/home/me/fusec`` stands for the folder it runs in.
* ``CHECKS`` adds what each command must do beyond exiting 0 (the loss falls,
  accuracy beats chance, the served answer is keyed by the output names).
* The section ``## Serving in production: ...`` is not run (it needs Docker),
  but its request body is fed to the exported signature, and its response
  must be keyed by the same output names.
* The reference's data-check example (the ``console`` block under ``### Data
  checks``) is run on the tutorial's data spoiled as ``SPOILED`` says, and must
  print the same errors.
* README.md's ``sh`` block under ``## Training`` holds the tutorial's
  commands, in the same order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import ROOT

DOC = ROOT / "docs" / "training.md"
README = ROOT / "README.md"
TUTORIAL = "## Tutorial:"
PRODUCTION = "## Serving in production"
#: The repository files the tutorial reads, copied into the folder it runs in.
COPIED = ("specs/product_reviews.json", "examples/product_reviews_data.py")
#: Shown output lines whose numbers change from run to run (or machine to machine).
VARYING = re.compile(r"^(epoch \d+/\d+ - |\[\[|trained \d+ epoch|note: kept the weights of epoch)")
HOME = "/home/me/fusec"
FENCE = re.compile(r"^(```+)\s*([\w+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced block: its language, its text and its first line in the file (1-based)."""

    lang: str
    text: str
    line: int


def section(path: Path, heading: str) -> list[Block]:
    """The fenced blocks of the section of ``path`` whose heading starts with ``heading``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    assert start is not None, f"{path.name} has no heading starting with {heading!r}"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    blocks, i = [], start + 1
    while i < end:
        m = FENCE.match(lines[i].strip())
        if not m:
            i += 1
            continue
        j = i + 1
        while j < end and lines[j].strip() != m.group(1):
            j += 1
        blocks.append(Block(m.group(2), "\n".join(lines[i + 1 : j]), i + 1))
        i = j + 1
    return blocks


def commands(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, blank lines and comments left out."""
    joined = re.sub(r"\\\n\s*", "", block.text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def tutorial_commands(path: Path, heading: str) -> list[str]:
    return [c for b in section(path, heading) if b.lang == "sh" for c in commands(b)]


# --- what each command must do, beyond exiting 0 -------------------------------------------


def _history(work: Path) -> dict[str, Any]:
    return dict(json.loads((work / "out/product_reviews/history.json").read_text(encoding="utf-8")))


def _check_fit(work: Path, output: str) -> None:
    """The loss falls, and both heads beat chance by a wide margin on the validation reviews."""
    epochs = _history(work)["epochs"]
    assert len(epochs) >= 3, epochs
    assert epochs[-1]["loss"] < 0.8 * epochs[0]["loss"], [e["loss"] for e in epochs]
    final = json.loads((work / "out/product_reviews/fusec.json").read_text(encoding="utf-8"))["training"]["final"]
    assert final["val_rating_accuracy"] > 0.4, final  # chance: 0.2
    assert final["val_helpful_accuracy"] > 0.75, final  # always "helpful": about 0.57
    assert (work / "out/product_reviews/history.png").stat().st_size > 1000
    assert not (work / "out/product_reviews.fit-backup").exists()


def _check_export(work: Path, output: str) -> None:
    assert (work / "out/serving/product_reviews/1/saved_model.pb").is_file()


def _check_show(work: Path, output: str) -> None:
    for name in ("inputs['facts']", "inputs['words']", "outputs['rating']", "outputs['helpful']"):
        assert name in output


def _check_run(work: Path, output: str) -> None:
    """The served answer for the tutorial's review: keyed by the output names; five stars, helpful."""
    found = dict(re.findall(r"Result for output key (\w+):\s*\n(\[\[[^\]]*\]\])", output))
    assert set(found) == {"rating", "helpful"}, output
    rating = [float(v) for v in found["rating"].strip("[]").split()]
    assert len(rating) == 5 and rating.index(max(rating)) == 4, rating
    assert float(found["helpful"].strip("[]")) > 0.5


#: Checks by the start of the command.
CHECKS: dict[str, Callable[[Path, str], None]] = {
    "fusec fit ": _check_fit,
    "fusec export ": _check_export,
    "saved_model_cli show ": _check_show,
    "saved_model_cli run ": _check_run,
}


# --- running ---------------------------------------------------------------------------------


def _environment(work: Path) -> dict[str, str]:
    """This Python's scripts first on PATH, and ``python`` meaning this Python."""
    bin_dir = work / ".bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _run(argv: list[str], work: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)
    shown = " ".join(argv)[-300:]
    assert done.returncode == 0, f"`{shown}` exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _expect_shown(block: Block, output: str, work: Path) -> None:
    """Every line the doc shows for a run appears in its output (bar the varying ones)."""
    for line in block.text.replace(HOME, str(work)).splitlines():
        if line.strip() and "..." not in line and not VARYING.match(line.strip()):
            assert line in output, f"docs/training.md:{block.line}: shown but not printed: {line!r}\n{output[-3000:]}"


def _run_block(block: Block, work: Path, env: dict[str, str]) -> str:
    if block.lang == "python":
        assert not re.search(r"\b(import|from)\s+fusec\b", block.text), "the serving snippet must not need fusec"
        script = work / f"block_{block.line}.py"
        script.write_text(block.text + "\n", encoding="utf-8")
        return _run([sys.executable, str(script)], work, env)
    output = ""
    for command in commands(block):
        got = _run(["bash", "-c", command], work, env)
        for start, check in CHECKS.items():
            if command.startswith(start):
                check(work, got)
        output += got
    return output


def _serve_request(keras: Any, work: Path) -> None:
    """The production section's request, fed to the exported signature as TF Serving would."""
    import tensorflow as tf

    request, response = (json.loads(b.text) for b in section(DOC, PRODUCTION) if b.lang == "json")
    serve = tf.saved_model.load(str(work / "out/serving/product_reviews/1")).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    assert request["signature_name"] == "serving_default"
    batch = {name: tf.constant([row[name] for row in request["instances"]], spec.dtype) for name, spec in specs.items()}
    answer = serve(**batch)
    assert set(answer) == set(response["predictions"][0]) == {"rating", "helpful"}
    assert int(tf.argmax(answer["rating"], axis=1)[0]) == response["predictions"][0]["rating"].index(
        max(response["predictions"][0]["rating"])
    )


#: How docs/training.md's `bad.csv` spoils the tutorial's train.csv: (row, column, new cell).
SPOILED = (
    (6, "rating", "5"),
    (9, "facts", "0.1 nan 0.3 0.2 0.1 1 0 -1"),
    (12, "words", "1 2 3 4 5 6 7 8 9 10 11"),
    (20, "words", "1 2 3 4 5 6 7 8 9 10 11 300"),
    (30, "rating", "5"),
)


def _check_data_errors(work: Path, env: dict[str, str]) -> None:
    """The reference's data-check example: the same errors, word for word, exit 1, nothing written."""
    block = next(b for b in section(DOC, "### Data checks") if b.lang == "console")
    command, *shown = block.text.splitlines()
    lines = (work / "out/data/train.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    for row, column, cell in SPOILED:
        cells = lines[row + 1].split(",")
        cells[header.index(column)] = cell
        lines[row + 1] = ",".join(cells)
    (work / "bad.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = sorted(p.name for p in (work / "out").iterdir())
    done = subprocess.run(
        ["bash", "-c", command.removeprefix("$ ")], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    printed = [line for line in (done.stdout + done.stderr).splitlines() if ": error: " in line]
    assert printed == shown, "docs/training.md's data-check example is stale:\n" + "\n".join(printed)
    assert sorted(p.name for p in (work / "out").iterdir()) == before


def test_the_tutorial_runs_as_written(keras: Any, tmp_path: Path) -> None:
    """Every command of the tutorial, in order, in an empty folder: each exits 0 and shows what the doc shows."""
    work = tmp_path / "work"
    for rel in COPIED:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, work / rel)
    env = _environment(work)
    blocks = section(DOC, TUTORIAL)
    ran = 0
    for i, block in enumerate(blocks):
        if block.lang not in ("sh", "python"):
            continue
        output = _run_block(block, work, env)
        ran += 1
        if i + 1 < len(blocks) and blocks[i + 1].lang == "text":
            _expect_shown(blocks[i + 1], output, work)
    assert ran >= 6, "the tutorial's run blocks were not found: the convention changed?"
    head = [b.text for b in blocks if b.lang == "text" and b.text.startswith("facts,")]
    assert head, "the CSV excerpt is gone"
    lines = (work / "out/data/train.csv").read_text(encoding="utf-8").splitlines()
    assert head[0].splitlines() == lines[: len(head[0].splitlines())]
    _serve_request(keras, work)
    _check_data_errors(work, env)


def test_readme_shows_the_tutorials_commands() -> None:
    """README's training excerpt is the tutorial's commands, in the same order."""
    tutorial = tutorial_commands(DOC, TUTORIAL)
    assert tutorial_commands(README, "## Training") == tutorial
    assert any(c.startswith("fusec fit ") for c in tutorial) and any(c.startswith("fusec export ") for c in tutorial)


def test_production_commands_match_the_exported_layout() -> None:
    """TF Serving mounts the folder `fusec export` wrote, and the request names that model."""
    export = next(c for c in tutorial_commands(DOC, TUTORIAL) if c.startswith("fusec export "))
    serving_dir = export.split("--serving-dir")[1].split()[0]
    shell = [c for b in section(DOC, PRODUCTION) if b.lang == "sh" for c in commands(b)]
    docker = next(c for c in shell if c.startswith("docker run"))
    assert f'"$PWD/{serving_dir}/product_reviews:/models/product_reviews"' in docker
    assert "MODEL_NAME=product_reviews" in docker
    curl = next(c for c in shell if c.startswith("curl"))
    assert "/v1/models/product_reviews:predict" in curl and "@request.json" in curl


def test_command_parser() -> None:
    block = Block("sh", "# a comment\nfusec fit a \\\n  --data b\n\nfusec export c\n", 1)
    assert commands(block) == ["fusec fit a --data b", "fusec export c"]
