"""The second hostile review's classes, each closed generally and kept closed here.

The first review's cases live in tests/corpus; the second one wrote new
cases of the same classes and found: suggestions whose cost a spec could
still multiply (long near-miss ids, many blocks), a block input bound to a
port that `x.0` could not read, a follow-on error naming an id the user
never wrote, a transposed convolution that compiles but cannot run on the
CPU build, spec paths that crashed (too long) or were called missing (a
symlink loop), file names that forged lines on success, and a weights file
whose shapes only Keras could refuse, with a message cut at its colon. The
archive cases (objects standing for others, damaged members, names Keras
refuses, weights in the wrong group) are in tests/test_corpus_archives.py;
the growth patterns in tests/test_growth.py.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_corpus_archives import SUB_SPEC, weights_h5

from fusec.cli import cli
from fusec.errors import NameIndex, printable
from fusec.keras.submodel import weights_detail
from fusec.render.style import visible
from fusec.static.check import check_spec
from helpers import spec, write


def _check(*args: str | Path) -> Any:
    return CliRunner().invoke(cli, ["check", *map(str, args)])


def test_block_input_bound_to_a_port_reads_as_x0(tmp_path: Path) -> None:
    """An instance given `l.2` (an LSTM's state): inside, `x` and `x.0` are that one tensor."""
    doc = spec(
        inputs={"x": {"shape": [3, 2]}},
        nodes={
            "l": {"layer": "LSTM", "config": {"units": 2, "return_state": True}, "inputs": "x"},
            "t": {"block": "b", "inputs": "l.2"},
        },
        outputs={"y": {"from": "t", "loss": "mse"}},
        blocks={
            "b": {
                "inputs": ["x"],
                "nodes": {"d": {"layer": "Dense", "config": {"units": 5}, "inputs": "x.0"}},
                "outputs": {"o": "d"},
            }
        },
    )
    checked = check_spec(write(tmp_path, doc))
    assert checked.info["t__d"].shape == (None, 5)
    assert checked.info["t__d"].params == 2 * 5 + 5


def test_block_output_naming_no_node_is_said_once(tmp_path: Path) -> None:
    """Nodes fed by a wrong block output are not blamed for it, and no expanded id (`t__x`) is shown."""
    doc = spec(
        nodes={
            "t": {"block": "pt", "inputs": "x"},
            "d": {"layer": "Dense", "config": {"units": 2}, "inputs": "t"},
        },
        outputs={"y": {"from": "d", "loss": "mse"}},
        blocks={
            "pt": {
                "inputs": ["x"],
                "nodes": {"h": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"}},
                "outputs": {"o": "x"},
            }
        },
    )
    result = _check(write(tmp_path, doc))
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert result.exit_code == 1
    assert len(errors) == 1 and "block `pt` output `o` names no node `x`" in errors[0], result.stderr
    assert "t__" not in result.stderr


def test_dilated_transposed_convolution_is_a_warning(tmp_path: Path) -> None:
    """It compiles, but TensorFlow's CPU kernels refuse to run it: said by check, refused by --strict."""
    doc = spec(
        inputs={"x": {"shape": [4, 4, 1]}},
        nodes={
            "c": {
                "layer": "Conv2DTranspose",
                "config": {"filters": 1, "kernel_size": 3, "dilation_rate": 2},
                "inputs": "x",
            }
        },
        outputs={"y": {"from": "c", "loss": "mse"}},
    )
    path = write(tmp_path, doc)
    plain = _check(path)
    assert plain.exit_code == 0 and "$.nodes.c.config.dilation_rate" in plain.stderr
    assert "refuse dilated transposed convolutions" in plain.stderr
    assert _check(path, "--strict").exit_code == 1
    undilated = write(
        tmp_path, json.loads(json.dumps(doc).replace('"dilation_rate": 2', '"dilation_rate": 1')), "u.json"
    )
    assert "warning" not in _check(undilated).stderr


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda t: t / ("s" * 300 + ".json"), "the path is too long for the file system"),
        (lambda t: (t / "loop.json").symlink_to("loop.json") or t / "loop.json", "a loop of symbolic links"),
        (lambda t: t / "missing.json", "no such file"),
        (lambda t: (t / "d").mkdir() or t / "d", "not a regular file"),
    ],
    ids=["too-long", "symlink-loop", "missing", "folder"],
)
def test_spec_paths_that_cannot_be_read(tmp_path: Path, make: Any, fragment: str) -> None:
    """Exit 1 with the reason, for every command that reads a spec, never an internal error."""
    path = make(tmp_path)
    for command in (["check"], ["summary"], ["render"], ["compile", "-o", str(tmp_path / "out")]):
        result = CliRunner().invoke(cli, [command[0], str(path), *command[1:], "--json"])
        assert result.exit_code == 1, result.output
        report = json.loads(result.stdout)
        assert report["files"][0]["errors"][0]["code"] == "file"
        assert fragment in report["files"][0]["errors"][0]["message"]
    assert not (tmp_path / "out").exists()


def test_file_names_cannot_forge_lines(tmp_path: Path) -> None:
    """A spec named with a new line prints it escaped on success lines too (one `ok:` line, no `error:`)."""
    path = write(tmp_path, spec(), "a\nerror: forged.json")
    for argv in (["check", str(path)], ["summary", str(path)]):
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 0, result.output
        assert not any(line.startswith("error:") for line in result.output.splitlines()), result.output
        assert printable(str(path)) in result.output


def test_suggestions_are_bounded_per_check(tmp_path: Path) -> None:
    """Many blocks each with near misses of long ids: at most MAX_FUZZY fuzzy suggestions in the whole check."""
    stem = "a" * 55
    blocks: dict[str, Any] = {}
    for k in range(12):
        inner: dict[str, Any] = {
            f"{stem}{i:05d}": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"} for i in range(10)
        }
        inner.update(
            {f"r{i}": {"layer": "Dense", "config": {"units": 2}, "inputs": f"{stem}{i:04d}zz"} for i in range(5)}
        )
        blocks[f"k{k}"] = {"inputs": ["x"], "nodes": inner, "outputs": {"o": "r0"}}
    nodes = {f"n{k}": {"block": f"k{k}", "inputs": "x"} for k in range(12)}
    doc = spec(nodes=nodes, blocks=blocks, outputs={"y": {"from": "n0", "loss": "mse"}})
    result = _check(write(tmp_path, doc), "--json")
    errors = json.loads(result.stdout)["files"][0]["errors"]
    assert sum("no node or input named" in e["message"] for e in errors) == 60  # every dangling reference...
    assert 0 < sum("did you mean" in e["hint"] for e in errors) <= NameIndex.MAX_FUZZY  # ...suggestions bounded


def test_suggestions_still_find_the_nearest(tmp_path: Path) -> None:
    """The bounded search gives difflib's answer on ordinary names."""
    names = ["image_encoder", "text_encoder", "fusion", "head", "image_pool"]
    index = NameIndex(names)
    assert index.near("image_encodr") == difflib.get_close_matches("image_encodr", names, n=3, cutoff=0.6)
    assert index.near("image_encodr")[0] == "image_encoder"
    assert index.near("Fusion") == ["fusion"]
    assert index.near("zzz") == []


def test_invisible_fillers_are_escaped_in_diagrams() -> None:
    """Default-ignorable characters that draw as nothing (Hangul fillers, variation selectors) are escaped."""
    for ch in ("\u115f", "\u3164", "\ufe0f", "\u034f", "\U000e0100"):
        shown = visible(f"a{ch}b")
        assert ch not in shown and shown.startswith("a\\") and shown.endswith("b")
    assert printable("a\u115fb") == "a\\u115fb"


def test_keras_weight_refusals_read_in_one_line() -> None:
    """Keras's message (layer, variable, shapes, then the values) becomes the layer, the variable and both shapes."""
    text = (
        "A total of 1 objects could not be loaded. Example error message for object <Dense name=dense, "
        "built=True>:\n\nThe shape of the target variable and the shape of the target value in "
        "`variable.assign(value)` must match. variable.shape=(4, 3), Received: value.shape=(3, 4). Target "
        "variable: <Variable path=dense/kernel, shape=(4, 3), dtype=float32, value=[[0. 0. 0.]]>\n\n"
        "List of objects that could not be loaded:\n[<Dense name=dense, built=True>]"
    )
    assert weights_detail(ValueError(text)) == (
        "layer `dense` (Dense): variable `dense/kernel` has shape (4, 3), the stored value (3, 4)"
    )
    count = (
        "A total of 1 objects could not be loaded. Example error message for object <Dense name=d, built=True>:"
        "\n\nLayer 'd' expected 2 variables, but received 1 variables during loading. Expected: ['kernel', 'bias']"
        "\n\nList of objects that could not be loaded:\n[<Dense name=d, built=True>]"
    )
    assert weights_detail(ValueError(count)) == (
        "layer `d` (Dense): Layer 'd' expected 2 variables, but received 1 variables during loading. "
        "Expected: ['kernel', 'bias']"
    )


@pytest.mark.slow
def test_transposed_weights_refused_with_shapes(tmp_path: Path) -> None:
    """Right counts, wrong shape: only Keras can tell; compile says which variable, exit 1, nothing written."""
    write(tmp_path, SUB_SPEC, "sub.json")  # x (4,) -> Dense(3), as the archive corpus writes it
    arrays = {"layers/dense/vars/0": (3, 4), "layers/dense/vars/1": (3,)}  # the kernel transposed
    (tmp_path / "sub.weights.h5").write_bytes(weights_h5(arrays))
    doc = spec(
        inputs={"x": {"shape": [4]}},
        nodes={"y": {"model": "sub.json", "weights": "sub.weights.h5", "inputs": "x"}},
        outputs={"out": {"from": "y"}},
    )
    path = write(tmp_path, doc)
    assert check_spec(path).totals.params == 15  # the counts fit: check cannot tell
    proc = subprocess.run(
        [sys.executable, "-m", "fusec", "compile", str(path), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "the weights in `sub.weights.h5` do not fit the sub-model" in proc.stderr
    assert "has shape (4, 3), the stored value (3, 4)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
