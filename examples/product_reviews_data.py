"""Make training and validation data for specs/product_reviews.json (the training tutorial, docs/training.md).

Each example is one product review, made up by a hidden rule a model can
learn (and never sees):

- Every review has a hidden satisfaction ``s`` (a standard normal number).
- ``facts`` (8 numbers, each about standard-normal): price, review length,
  photos attached, the reviewer's past reviews, days since purchase,
  verified purchase (1 or -1), discount, product returned (1 or -1; unhappy
  buyers return more often).
- ``words`` (12 word ids): the review's first 5 to 12 words, padded with 0.
  Ids 1-40 are praise ("great", "love"...), 41-80 complaints, 81-299
  neutral; the happier the reviewer, the more praise and the fewer
  complaints.
- ``rating`` (class 0 to 4, i.e. 1 to 5 stars): satisfaction, plus the
  discount, minus the price, plus a little noise, cut into five bands of
  about a fifth of the reviews each.
- ``helpful`` (0 or 1): long reviews, reviews with photos, strong opinions
  and verified purchases are voted helpful more often (a coin tossed with
  that probability).

So a model that reads both inputs beats chance (20 % for the rating, about
60 % for always answering "helpful") by a wide margin, but not perfectly:
the words only hint at the satisfaction, and ``helpful`` is a coin toss.

Formats (``--format``): ``csv`` (one column per input and output; vectors as
space-separated values in one column, the convention fusec's CSV reader
documents), ``parquet`` (list columns; needs pyarrow) or ``npz`` (one array
per name). The same ``--seed`` gives the same files, byte for byte.

Usage::

    python examples/product_reviews_data.py --out out/data     # out/data/train.csv, out/data/validation.csv
    python examples/product_reviews_data.py --out out/data --format parquet --train 20000
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Word ids: 0 pads, then praise, complaints, neutral words (the spec's Embedding has input_dim 300).
VOCABULARY = 300
PRAISE = (1, 41)
COMPLAINTS = (41, 81)
WORDS = 12
#: What each of the 8 ``facts`` is, in order.
FACTS = ("price", "length", "photos", "past_reviews", "days", "verified", "discount", "returned")
#: Score cut points between the five star bands (about a fifth of the reviews in each).
BANDS = (-1.0, -0.35, 0.35, 1.0)

Arrays = dict[str, np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _words(s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each review's first 12 word ids: praise and complaints as often as its satisfaction says."""
    n = len(s)
    praise, complaint = 0.5 * _sigmoid(2.5 * s), 0.5 * _sigmoid(-2.5 * s)
    draw = rng.random((n, WORDS))
    ids = np.where(
        draw < praise[:, None],
        rng.integers(*PRAISE, (n, WORDS)),
        np.where(
            draw < (praise + complaint)[:, None],
            rng.integers(*COMPLAINTS, (n, WORDS)),
            rng.integers(COMPLAINTS[1], VOCABULARY, (n, WORDS)),
        ),
    )
    length = rng.integers(5, WORDS + 1, n)
    ids[np.arange(WORDS)[None, :] >= length[:, None]] = 0  # padding after the last word
    return ids.astype(np.int32)


def make_reviews(n: int, rng: np.random.Generator) -> Arrays:
    """``n`` reviews by the hidden rule: ``facts``, ``words``, ``rating`` and ``helpful`` arrays.

    Args:
        n: how many reviews.
        rng: the random generator (seeded: the same seed gives the same reviews).

    Returns:
        Arrays keyed by the spec's input and output names, first axis the reviews.
    """
    s = rng.normal(size=n)
    price, length, past, days, discount = rng.normal(size=(5, n))
    photos = np.minimum(rng.poisson(0.6, n), 4) - 0.6
    verified = np.where(rng.random(n) < 0.7, 1.0, -1.0)
    returned = np.where(rng.random(n) < _sigmoid(-2.0 * s - 1.5), 1.0, -1.0)
    facts = np.stack([price, length, photos, past, days, verified, discount, returned], axis=1)
    score = s + 0.5 * discount - 0.4 * price + 0.2 * rng.normal(size=n)
    vote = 1.5 * length + 1.2 * photos + 0.8 * np.abs(s) + 0.4 * verified - 0.4
    return {
        "facts": facts.astype(np.float32),
        "words": _words(s, rng),
        "rating": np.digitize(score, BANDS).astype(np.int32),
        "helpful": (rng.random(n) < _sigmoid(3.0 * vote)).astype(np.int32),
    }


def _cell(row: np.ndarray) -> str:
    """One CSV cell: a number, or a vector's values separated by spaces."""
    values = np.atleast_1d(row)
    if values.dtype.kind == "f":
        return " ".join(f"{v:.4f}" for v in values)
    return " ".join(str(int(v)) for v in values)


def write_csv(arrays: Arrays, path: Path) -> None:
    """A header naming the columns, then one review per line."""
    names = list(arrays)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(names)
        for i in range(len(arrays[names[0]])):
            out.writerow([_cell(arrays[name][i]) for name in names])


def write_parquet(arrays: Arrays, path: Path) -> None:
    """One column per name: vectors as fixed-size list columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {}
    for name, values in arrays.items():
        if values.ndim == 1:
            columns[name] = pa.array(values)
        else:
            columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
    pq.write_table(pa.table(columns), path)


def write_npz(arrays: Arrays, path: Path) -> None:
    """One array per name (plain numbers: no pickled objects)."""
    save: Callable[..., None] = np.savez  # its stubs type the keywords as its own options
    save(path, **arrays)


WRITERS: dict[str, Callable[[Arrays, Path], None]] = {"csv": write_csv, "parquet": write_parquet, "npz": write_npz}


def _count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError("give a number of reviews from 1 to 10,000,000")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="product_reviews_data.py",
        description="Write made-up product reviews to train specs/product_reviews.json on: "
        "OUT/train.FORMAT and OUT/validation.FORMAT, the same for the same --seed.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out/data"), help="Folder to write to (made if missing; default: out/data)."
    )
    parser.add_argument("--format", choices=sorted(WRITERS), default="csv", help="File format (default: csv).")
    parser.add_argument("--train", type=_count, default=4000, help="Training reviews (default: 4000).")
    parser.add_argument("--validation", type=_count, default=1000, help="Validation reviews (default: 1000).")
    parser.add_argument("--seed", type=int, default=0, help="Random seed (default: 0).")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Write the two files and say where they went."""
    args = _parser().parse_args(argv)
    rng = np.random.default_rng(args.seed)
    write = WRITERS[args.format]
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for part, n in (("train", args.train), ("validation", args.validation)):
            arrays = make_reviews(n, rng)
            path = args.out / f"{part}.{args.format}"
            write(arrays, path)
            stars = np.bincount(arrays["rating"], minlength=5) / n
            shown = " ".join(f"{100 * p:.0f}%" for p in stars)
            print(f"wrote {path}: {n} reviews (stars 1-5: {shown}; helpful: {100 * arrays['helpful'].mean():.0f}%)")
    except OSError as exc:
        print(f"error: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ImportError:
        print("error: --format parquet needs pyarrow (pip install pyarrow)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
