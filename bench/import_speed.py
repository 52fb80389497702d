"""`fusec import resnet50.keras` vs `keras.saving.load_model`, and `fusec check` of an imported NASNetMobile.

Every run is a fresh process, end to end (start-up included), interleaved
side by side (``harness.interleave``). The archives are made once, in a
temporary folder, by Keras (``weights=None``: random weights, no download).
Targets: import / load_model <= 1; check of the imported NASNetMobile spec /
`python -c "import tensorflow"` <= 0.15.

    python bench/import_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import PY, QUIET_ENV, Row, checked_child, fusec, interleave, print_rows, run_child

NAME = "import"
TITLE = "fusec import vs keras.saving.load_model (<= 1); check of imported NASNetMobile vs import tensorflow (<= 0.15)"

_MAKE = (
    "import keras; "
    "keras.applications.ResNet50(weights=None).save({r50!r}); "
    "keras.applications.NASNetMobile(weights=None, input_shape=(96, 96, 3), classes=10).save({nas!r})"
)


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--import-rounds", type=int, help="interleaved rounds (default 7; --quick 3)")


def _make(folder: Path) -> tuple[Path, Path, Path]:
    """The two archives, and the NASNetMobile spec imported from its archive."""
    r50, nas = folder / "resnet50.keras", folder / "nasnet.keras"
    done = run_child([PY, "-c", _MAKE.format(r50=str(r50), nas=str(nas))], env=QUIET_ENV)
    if done.returncode != 0:
        raise SystemExit(f"could not make the archives: {done.stderr[-2000:]}")
    spec = folder / "nasnet.json"
    checked_child(fusec("import", str(nas), "-o", str(spec)))
    return r50, nas, spec


def measure(rounds: int, folder: Path) -> list[Row]:
    r50, _, spec = _make(folder)
    load = [PY, "-c", f"import keras; keras.saving.load_model({str(r50)!r})"]
    imp = fusec("import", str(r50), "-o", str(folder / "r50.json"))
    check = fusec("check", str(spec))
    tf = [PY, "-c", "import tensorflow"]
    sides = [lambda c=c: checked_child(c).seconds for c in (imp, load, check, tf)]
    t_imp, t_load, t_check, t_tf = interleave(sides, rounds, warmup=1)
    return [
        Row("import", "fusec import resnet50.keras / load_model", t_imp, t_load, "s", "f/b", hi=1.0),
        Row("import", "fusec check nasnet (imported) / import tensorflow", t_check, t_tf, "s", "f/b", hi=0.15),
    ]


def run(args: argparse.Namespace) -> list[Row]:
    rounds = getattr(args, "import_rounds", None) or (3 if args.quick else 7)
    with tempfile.TemporaryDirectory(prefix="fusec-bench-import-") as tmp:
        return measure(rounds, Path(tmp))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    add_arguments(ap.add_argument_group("import"))
    print_rows(run(ap.parse_args()))
