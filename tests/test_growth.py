"""The static checks cost time linear in the spec, for every shape of spec that once made them blow up.

Each generator below builds a spec of size N from a pattern that was once
quadratic or exponential: nested blocks re-exporting ports (exponential in
the nesting), dangling references and missing shared layers (a did-you-mean
search over every id for each), references inside blocks, mistyped layers
and long valid chains (the schema stage), and texts built to make the JSON
scanner backtrack. The test checks the spec at N and at 4N and asserts the
time grew less than 6x: linear growth gives about 4x, quadratic 16x.

No wall-clock limit is asserted (these machines are noisy): each size is
timed as the best of several batches, with the batch repeated until the
smaller size takes long enough to measure.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fusec.errors import FusecError, LoadError
from fusec.spec.load import parse_spec
from fusec.static.check import check_spec
from helpers import BASE

GROWTH_LIMIT = 6.0
#: the smaller size is repeated until one batch takes at least this long
MIN_BATCH_S = 0.05


def _doc(nodes: dict[str, Any], **sections: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(BASE))
    doc["nodes"] = nodes
    doc["outputs"] = sections.pop("outputs", {"y": {"from": next(iter(nodes)), "loss": "mse"}})
    doc.update(sections)
    return doc


def nested_port_reexports(n: int) -> dict[str, Any]:
    """12 levels of blocks, each re-exporting the n ports of an instance of the level below."""
    blocks: dict[str, Any] = {
        "b0": {
            "inputs": ["x"],
            "nodes": {"d": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"}},
            "outputs": {f"o{j}": "d" for j in range(n)},
        }
    }
    for k in range(1, 12):
        blocks[f"b{k}"] = {
            "inputs": ["x"],
            "nodes": {"i": {"block": f"b{k - 1}", "inputs": "x"}},
            "outputs": {f"o{j}": f"i.o{j}" for j in range(n)},
        }
    outputs = {f"y{j}": {"from": f"t.o{j}", "loss": "mse"} for j in range(n)}
    return _doc({"t": {"block": "b11", "inputs": "x"}}, blocks=blocks, outputs=outputs)


def dangling_references(n: int) -> dict[str, Any]:
    """n nodes, each reading an id that does not exist."""
    return _doc({f"n{i}": {"layer": "Dense", "config": {"units": 2}, "inputs": f"zz{i}"} for i in range(n)})


def missing_shared_layers(n: int) -> dict[str, Any]:
    """n calls of shared layers that are not defined, beside n that are."""
    shared = {f"s{i}": {"layer": "Dense", "config": {"units": 2}} for i in range(n)}
    nodes = {f"n{i}": {"shared": f"t{i}", "inputs": "x"} for i in range(n)}
    return _doc(nodes, shared=shared)


def references_inside_a_block(n: int) -> dict[str, Any]:
    """A block of n nodes that read ids missing from the block, instantiated once."""
    inner = {f"n{i}": {"layer": "Dense", "config": {"units": 2}, "inputs": f"zz{i}"} for i in range(n)}
    blocks = {"b": {"inputs": ["x"], "nodes": inner, "outputs": {"o": "n0"}}}
    return _doc({"t": {"block": "b", "inputs": "x"}}, blocks=blocks)


def missing_blocks(n: int) -> dict[str, Any]:
    """n instances of blocks that are not defined, beside n that are."""
    one = {
        "inputs": ["x"],
        "nodes": {"d": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"}},
        "outputs": {"o": "d"},
    }
    blocks = {f"b{i}": one for i in range(n)}
    return _doc({f"n{i}": {"block": f"c{i}", "inputs": "x"} for i in range(n)}, blocks=blocks)


def valid_chain(n: int) -> dict[str, Any]:
    """A valid chain of n Dense layers."""
    nodes = {}
    prev = "x"
    for i in range(n):
        nodes[f"n{i}"] = {"layer": "Dense", "config": {"units": 2}, "inputs": prev}
        prev = f"n{i}"
    return _doc(nodes, outputs={"y": {"from": prev, "loss": "mse"}})


def mistyped_layers(n: int) -> dict[str, Any]:
    """n nodes whose layer name is a typo, each config different."""
    return _doc({f"n{i}": {"layer": "Dens", "config": {"units": i + 1}, "inputs": "x"} for i in range(n)})


def block_bombs(n: int) -> dict[str, Any]:
    """n independent towers of blocks of ten instances of blocks of ten... (each refused by count)."""
    blocks: dict[str, Any] = {}
    for t in range(n):
        blocks[f"t{t}b0"] = {
            "inputs": ["x"],
            "nodes": {"d": {"layer": "Flatten", "inputs": "x"}},
            "outputs": {"o": "d"},
        }
        for i in range(1, 6):
            inner: dict[str, Any] = {f"i{j}": {"block": f"t{t}b{i - 1}", "inputs": "x"} for j in range(10)}
            inner["m"] = {"merge": "add", "inputs": [f"i{j}" for j in range(10)]}
            blocks[f"t{t}b{i}"] = {"inputs": ["x"], "nodes": inner, "outputs": {"o": "m"}}
    return _doc({f"n{t}": {"block": f"t{t}b5", "inputs": "x"} for t in range(n)}, blocks=blocks)


def fan_in(n: int) -> dict[str, Any]:
    """n Dense layers concatenated by one merge."""
    nodes: dict[str, Any] = {f"n{i}": {"layer": "Dense", "config": {"units": 1}, "inputs": "x"} for i in range(n)}
    nodes["m"] = {"merge": "concat", "inputs": [f"n{i}" for i in range(n)]}
    return _doc(nodes, outputs={"y": {"from": "m", "loss": "mse"}})


def one_long_cycle(n: int) -> dict[str, Any]:
    """n nodes, each reading the next, the last reading the first."""
    return _doc({f"n{i}": {"layer": "Dense", "config": {"units": 2}, "inputs": f"n{(i + 1) % n}"} for i in range(n)})


def shape_errors(n: int) -> dict[str, Any]:
    """n Conv2D layers on a vector input: one shape error each."""
    return _doc(
        {f"n{i}": {"layer": "Conv2D", "config": {"filters": 2, "kernel_size": 3}, "inputs": "x"} for i in range(n)}
    )


def near_miss_long_ids(n: int) -> dict[str, Any]:
    """n ids of 60 characters differing only at the end, and n references that nearly name one.

    difflib's full ratio costs about 1 ms on such a pair: the did-you-mean work
    must be bounded per check, not only in the number of lookups.
    """
    stem = "a" * 55
    nodes: dict[str, Any] = {
        f"{stem}{i:05d}": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"} for i in range(n)
    }
    nodes.update({f"r{i}": {"layer": "Dense", "config": {"units": 2}, "inputs": f"{stem}{i:04d}zz"} for i in range(n)})
    return _doc(nodes)


def near_misses_in_many_blocks(n: int) -> dict[str, Any]:
    """n blocks, each holding 20 long ids and 5 near-miss references, each instantiated once.

    A budget per block (rather than per check) made this grow with the
    number of blocks at about 4 s each.
    """
    stem = "b" * 55
    blocks: dict[str, Any] = {}
    for k in range(n):
        inner: dict[str, Any] = {
            f"{stem}{i:05d}": {"layer": "Dense", "config": {"units": 2}, "inputs": "x"} for i in range(20)
        }
        inner.update(
            {f"r{i}": {"layer": "Dense", "config": {"units": 2}, "inputs": f"{stem}{i:04d}zz"} for i in range(5)}
        )
        blocks[f"k{k}"] = {"inputs": ["x"], "nodes": inner, "outputs": {"o": "r0"}}
    return _doc({f"n{k}": {"block": f"k{k}", "inputs": "x"} for k in range(n)}, blocks=blocks)


SPECS: dict[str, tuple[Callable[[int], dict[str, Any]], int]] = {
    "nested_port_reexports": (nested_port_reexports, 40),
    "dangling_references": (dangling_references, 500),
    "missing_shared_layers": (missing_shared_layers, 500),
    "references_inside_a_block": (references_inside_a_block, 500),
    "missing_blocks": (missing_blocks, 300),
    "valid_chain": (valid_chain, 500),
    "mistyped_layers": (mistyped_layers, 500),
    "block_bombs": (block_bombs, 20),
    "fan_in": (fan_in, 500),
    "one_long_cycle": (one_long_cycle, 500),
    "shape_errors": (shape_errors, 500),
    "near_miss_long_ids": (near_miss_long_ids, 250),
    "near_misses_in_many_blocks": (near_misses_in_many_blocks, 8),
}


def _best_time(run: Callable[[], object], reps: int, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            run()
        best = min(best, time.perf_counter() - start)
    return best


def _growth(make: Callable[[int], Callable[[], object]], n: int, tries: int = 3) -> tuple[float, float]:
    """(time at n, time at 4n), the same number of repetitions for both.

    A machine busy with other work can slow one batch of the larger size;
    the pair is measured again (up to ``tries`` times) while the growth is
    over the limit. Quadratic growth (16x) fails every try.
    """
    small, large = make(n), make(4 * n)
    small()  # warm caches (the compiled schema, imports)
    large()
    reps = 1
    while _best_time(small, reps, 1) < MIN_BATCH_S and reps < 1024:
        reps *= 2
    for _ in range(tries):
        t_n, t_4n = _best_time(small, reps), _best_time(large, reps)
        if t_4n < GROWTH_LIMIT * t_n:
            break
    return t_n, t_4n


def _checker(tmp: Path, build: Callable[[int], dict[str, Any]]) -> Callable[[int], Callable[[], object]]:
    def make(n: int) -> Callable[[], object]:
        path = tmp / f"spec_{n}.json"
        path.write_text(json.dumps(build(n)), encoding="utf-8")

        def run() -> object:
            with contextlib.suppress(FusecError):
                return check_spec(path)
            return None

        return run

    return make


@pytest.mark.parametrize("name", list(SPECS))
def test_check_grows_linearly(name: str, tmp_path: Path) -> None:
    build, n = SPECS[name]
    t_n, t_4n = _growth(_checker(tmp_path, build), n)
    assert t_4n < GROWTH_LIMIT * t_n, f"{name}: {t_n:.4f} s at {n}, {t_4n:.4f} s at {4 * n} ({t_4n / t_n:.1f}x)"


def test_nested_port_reexports_is_not_exponential(tmp_path: Path) -> None:
    """Twelve levels of four re-exported ports: once 66 s, now ordinary (the output shapes are right too)."""
    path = tmp_path / "ports.json"
    path.write_text(json.dumps(nested_port_reexports(4)), encoding="utf-8")
    checked = check_spec(path)
    deep = "t" + "__i" * 11 + "__d"
    assert set(checked.info) == {"x", deep}  # the input and the one Dense deep inside, nothing more
    assert checked.info[deep].shape == (None, 2)


#: texts near the size limit built to make a scanner backtrack or a parser allocate, as a function of n
TEXTS: dict[str, Callable[[int], str]] = {
    "escaped_quotes": lambda n: '["' + '\\"' * (2 * n) + "," * n + '"]',
    "unterminated_string": lambda n: '["' + "a," * n,
    "many_strings": lambda n: "[" + '"",' * n + "1]",
    "commas_in_a_string": lambda n: '{"fusec": 1, "doc": "' + "," * n + '"}',
    "backslashes": lambda n: '["' + "\\\\" * n + '", ' + "1," * n + "1]",
    "empty_objects": lambda n: "[" + "{}," * n + "{}]",
    "deep_then_wide": lambda n: "[" * 60 + "0," * n + "0" + "]" * 60,
}
#: the smaller text holds more commas than load.MAX_VALUES, so both sizes take the same path
TEXT_N = 270_000


@pytest.mark.parametrize("name", list(TEXTS))
def test_parse_grows_linearly(name: str) -> None:
    """Pathological texts (at up to the size limit) cost time linear in their length."""

    def make(n: int) -> Callable[[], object]:
        data = TEXTS[name](n).encode()

        def run() -> object:
            with contextlib.suppress(LoadError):
                return parse_spec(data, "f.json")
            return None

        return run

    t_n, t_4n = _growth(make, TEXT_N)
    assert t_4n < GROWTH_LIMIT * t_n, f"{name}: {t_n:.4f} s, then {t_4n:.4f} s ({t_4n / t_n:.1f}x)"
