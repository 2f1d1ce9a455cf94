"""IMDB in the Keras layout, from a local folder, the Stanford texts, or Keras' cache.

Reproduces ``keras.datasets.imdb.load_data`` (shuffle with seed 113, ``start_char=1``,
``oov_char=2``, ``index_from=3``, the ``num_words`` cut) and the notebook's
``pad_sequences`` without importing TensorFlow, so the tests and the Pi runtime
see the same ids the model was trained on.

Where the data comes from, first match wins: ``--data DIR`` (or a file), then
``$EDGE_GRU_DATA``, then ``../shared/data`` beside a source checkout, then Keras' download
cache (``~/.keras/datasets``).
A folder may hold ``imdb.npz`` + ``imdb_word_index.json`` (preferred, fast), or the
Stanford ``aclImdb`` folder or ``aclImdb_labeled.tar.gz`` + ``imdb_word_index.json``.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgeGruError
from .padding import pad_sequences
from .text import encode_ranks, load_word_index, tokenize

DATA_ENV = "EDGE_GRU_DATA"
NPZ_NAME = "imdb.npz"
WORD_INDEX_NAME = "imdb_word_index.json"
TARBALL_NAME = "aclImdb_labeled.tar.gz"
KERAS_SHUFFLE_SEED = 113
SPLITS = ("train", "test")
LABELS = (("neg", 0), ("pos", 1))


@dataclass(frozen=True)
class DataSource:
    """Where the reviews and the word index are read from."""

    kind: str  # "npz", "aclimdb_dir" or "aclimdb_tar"
    path: Path
    word_index: Path

    def describe(self) -> str:
        return f"{self.kind}:{self.path.name}"


@dataclass(frozen=True)
class StanfordReview:
    """One labelled review file of the Stanford release."""

    split: str
    label: int
    review_id: int
    stars: int
    text: str


@dataclass(frozen=True)
class RawImdb:
    """Word ranks (1 = most frequent) and labels, shuffled as Keras shuffles them."""

    train_ranks: list[list[int]]
    y_train: np.ndarray
    test_ranks: list[list[int]]
    y_test: np.ndarray
    source: DataSource


@dataclass(frozen=True)
class ImdbSplits:
    """Padded id matrices ready for the model: ``(N, maxlen)`` int32 and labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_words: int
    maxlen: int
    source: DataSource


def default_data_dir() -> Path | None:
    """``$EDGE_GRU_DATA`` if set, else ``../shared/data`` beside a source checkout, if present.

    This is the one configurable place the CLI, tests, examples and benchmarks read.
    """
    value = os.environ.get(DATA_ENV)
    if value:
        return Path(value)
    # edge_gru/data/imdb.py -> the checkout is parents[2], the folder beside it parents[3]
    beside_checkout = Path(__file__).resolve().parents[3] / "shared" / "data"
    return beside_checkout if (beside_checkout / NPZ_NAME).is_file() else None


def _keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _find_word_index(*folders: Path) -> Path:
    for folder in folders:
        candidate = folder / WORD_INDEX_NAME
        if candidate.is_file():
            return candidate
    where = ", ".join(str(f) for f in folders)
    raise EdgeGruError(f"{WORD_INDEX_NAME} not found in {where}")


def resolve_source(data: str | Path | None = None) -> DataSource:
    """Pick the data source by the documented order; raise a one-line error if none fits."""
    if data is None:
        data = default_data_dir()
    if data is None:
        cache = _keras_cache_dir()
        if (cache / NPZ_NAME).is_file():
            return DataSource("npz", cache / NPZ_NAME, _find_word_index(cache))
        raise EdgeGruError(
            f"no IMDB data: pass --data DIR or set ${DATA_ENV} to a folder holding "
            f"{NPZ_NAME} + {WORD_INDEX_NAME} (or the Stanford aclImdb texts)"
        )
    path = Path(data)
    if not path.exists():
        raise EdgeGruError(f"data path does not exist: {path}")
    if path.is_file():
        if path.name.endswith((".tar.gz", ".tgz")):
            return DataSource("aclimdb_tar", path, _find_word_index(path.parent))
        if path.suffix == ".npz":
            return DataSource("npz", path, _find_word_index(path.parent))
        raise EdgeGruError(
            f"unsupported data file {path.name}: expected imdb.npz or aclImdb .tar.gz"
        )
    if (path / NPZ_NAME).is_file():
        return DataSource("npz", path / NPZ_NAME, _find_word_index(path))
    if (path / "aclImdb").is_dir():
        return DataSource("aclimdb_dir", path / "aclImdb", _find_word_index(path))
    if (path / "train").is_dir() and (path / "test").is_dir():
        return DataSource("aclimdb_dir", path, _find_word_index(path, path.parent))
    if (path / TARBALL_NAME).is_file():
        return DataSource("aclimdb_tar", path / TARBALL_NAME, _find_word_index(path))
    raise EdgeGruError(
        f"no IMDB data in {path}: expected {NPZ_NAME} + {WORD_INDEX_NAME}, "
        f"an aclImdb folder, or {TARBALL_NAME}"
    )


def _parse_member(name: str) -> tuple[str, int, int, int] | None:
    """``aclImdb/<split>/<pos|neg>/<id>_<stars>.txt`` -> (split, label, id, stars)."""
    parts = name.replace("\\", "/").split("/")
    if len(parts) < 3 or not parts[-1].endswith(".txt"):
        return None
    split, label_name, filename = parts[-3], parts[-2], parts[-1]
    labels = dict(LABELS)
    if split not in SPLITS or label_name not in labels:
        return None
    try:
        review_id, stars = (int(p) for p in filename[:-4].split("_"))
    except ValueError:
        return None
    return split, labels[label_name], review_id, stars


def iter_stanford_reviews(source: DataSource, split: str | None = None) -> Iterator[StanfordReview]:
    """The labelled Stanford reviews in the order ``imdb.npz`` stores them.

    Order: per split, negative files then positive files, each sorted by review id.
    """
    found: list[StanfordReview] = []
    try:
        if source.kind == "aclimdb_tar":
            with tarfile.open(source.path) as tar:
                for member in tar:
                    key = _parse_member(member.name) if member.isfile() else None
                    if key and (split is None or key[0] == split):
                        handle = tar.extractfile(member)
                        text = handle.read().decode("utf-8") if handle else ""
                        found.append(StanfordReview(key[0], key[1], key[2], key[3], text))
        elif source.kind == "aclimdb_dir":
            for file in source.path.glob("*/*/*.txt"):
                key = _parse_member(str(file.relative_to(source.path.parent)))
                if key and (split is None or key[0] == split):
                    text = file.read_text(encoding="utf-8")
                    found.append(StanfordReview(key[0], key[1], key[2], key[3], text))
        else:
            raise EdgeGruError(f"{source.path.name} holds no review texts")
    except (OSError, tarfile.TarError, UnicodeDecodeError, EOFError) as exc:
        raise EdgeGruError(f"cannot read reviews from {source.path}: {exc}") from exc
    order = {s: i for i, s in enumerate(SPLITS)}
    found.sort(key=lambda r: (order[r.split], r.label, r.review_id))
    yield from found


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=True) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as exc:
        raise EdgeGruError(f"{path} lacks array {exc}; expected the Keras IMDB layout") from exc
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as exc:
        raise EdgeGruError(f"{path} is not a readable .npz file ({type(exc).__name__})") from exc
    for split in SPLITS:
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]) or not len(arrays[f"x_{split}"]):
            raise EdgeGruError(f"{path}: x_{split} and y_{split} are empty or differ in length")
    return arrays


def _ranks_from_texts(source: DataSource) -> dict[str, np.ndarray]:
    try:
        index = load_word_index(source.word_index)
    except (OSError, ValueError) as exc:
        raise EdgeGruError(f"cannot read word index {source.word_index}: {exc}") from exc
    per_split: dict[str, tuple[list[list[int]], list[int]]] = {s: ([], []) for s in SPLITS}
    for review in iter_stanford_reviews(source):
        xs, ys = per_split[review.split]
        xs.append([index[w] for w in tokenize(review.text) if w in index])
        ys.append(review.label)
    arrays: dict[str, np.ndarray] = {}
    for split, (xs, ys) in per_split.items():
        if not xs:
            raise EdgeGruError(f"{source.path} holds no {split} reviews")
        x = np.empty(len(xs), dtype=object)
        x[:] = xs
        arrays[f"x_{split}"] = x
        arrays[f"y_{split}"] = np.asarray(ys, dtype=np.int64)
    return arrays


def load_raw(data: str | Path | DataSource | None = None) -> RawImdb:
    """Read word ranks and labels, shuffled with Keras' seed so splits match the notebook."""
    source = data if isinstance(data, DataSource) else resolve_source(data)
    arrays = _read_npz(source.path) if source.kind == "npz" else _ranks_from_texts(source)
    orders = keras_shuffle_orders(len(arrays["x_train"]), len(arrays["x_test"]))
    shuffled = {}
    for split, indices in zip(SPLITS, orders):
        shuffled[split] = (
            [list(map(int, seq)) for seq in arrays[f"x_{split}"][indices]],
            np.asarray(arrays[f"y_{split}"][indices], dtype=np.int64),
        )
    return RawImdb(
        train_ranks=shuffled["train"][0],
        y_train=shuffled["train"][1],
        test_ranks=shuffled["test"][0],
        y_test=shuffled["test"][1],
        source=source,
    )


def keras_shuffle_orders(n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """The sample orders of ``keras.datasets.imdb.load_data``: int64 ``(n_train,)``, ``(n_test,)``.

    One ``RandomState(113)`` permutes the training split, then the test split
    (keras/src/datasets/imdb.py).
    """
    rng = np.random.RandomState(KERAS_SHUFFLE_SEED)
    orders = []
    for n in (n_train, n_test):
        indices = np.arange(n)
        rng.shuffle(indices)
        orders.append(indices)
    return orders[0], orders[1]


def encode_and_pad(ranks: list[list[int]], num_words: int, maxlen: int) -> np.ndarray:
    """Word ranks -> padded model ids, as ``load_data`` + ``pad_sequences`` produce them."""
    return pad_sequences((encode_ranks(r, num_words) for r in ranks), maxlen)


def load_imdb(
    data: str | Path | DataSource | None = None, num_words: int = 10000, maxlen: int = 100
) -> ImdbSplits:
    """The notebook's data: ``imdb.load_data(num_words)`` then ``pad_sequences(maxlen)``."""
    if num_words <= INDEX_FROM_MIN or maxlen <= 0:
        raise EdgeGruError(f"num_words must be > {INDEX_FROM_MIN} and maxlen > 0")
    raw = load_raw(data)
    return ImdbSplits(
        x_train=encode_and_pad(raw.train_ranks, num_words, maxlen),
        y_train=raw.y_train,
        x_test=encode_and_pad(raw.test_ranks, num_words, maxlen),
        y_test=raw.y_test,
        num_words=num_words,
        maxlen=maxlen,
        source=raw.source,
    )


INDEX_FROM_MIN = 3  # ids 0, 1, 2 are padding, start and OOV
