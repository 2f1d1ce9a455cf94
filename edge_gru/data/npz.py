"""A user's data set in the Keras .npz layout (``--data FILE.npz``), read and checked.

The file holds ``x_train, y_train, x_test, y_test`` and optionally ``class_names``; see
:mod:`edge_gru.data.sequences` for the accepted ``x`` forms and
:func:`edge_gru.data.checks.check_labels` for ``y``. Two layouts:

- ``"ids"``: ``x`` holds ids (or features) exactly as the model sees them;
- ``"keras_imdb"``: ``x`` holds raw word *ranks* (1 = most frequent word), as ``imdb.npz``
  and ``imdb_stars.npz`` do. Reading it reproduces ``keras.datasets.imdb.load_data``: Keras'
  shuffle (seed 113), ``start_char=1``, ``index_from=3``, ids ``>= num_words`` become
  ``oov_char=2`` (:mod:`edge_gru.data.imdb`).

``layout="auto"`` (the lead's rule) is ``"keras_imdb"`` when ``imdb_word_index.json`` sits
beside the file or the path is an IMDB folder or the Stanford tarball, else ``"ids"``; a
recipe can force either. Object arrays (ragged sequences) are pickled inside the .npz, so
the file is loaded with ``allow_pickle=True``: only read files you trust.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import EdgeGruError
from ..ir import InputSpec, Task
from . import checks
from .dataset import Dataset
from .imdb import (
    INDEX_FROM_MIN,
    WORD_INDEX_NAME,
    DataSource,
    _keras_cache_dir,
    default_data_dir,
    keras_shuffle_orders,
    load_raw,
)
from .sequences import Sequences, read_sequences
from .text import INDEX_FROM, OOV_CHAR, START_CHAR

Layout = Literal["auto", "keras_imdb", "ids"]
LAYOUTS = ("auto", "keras_imdb", "ids")
KEYS = ("x_train", "y_train", "x_test", "y_test")
LabelKind = Literal["class_indices", "multi_hot", "float_targets"]


@dataclass(frozen=True)
class DataSummary:
    """What a data file holds, before it is fitted to a model.

    ``max_length``/``min_length``: steps of the longest/shortest sequence over both splits
    (for ``keras_imdb``: ids, so one more than the word count, for the start char; for a
    dense array: its ``T``). ``max_token``: the largest id (``keras_imdb``: before the
    ``num_words`` cut, so ``vocab = max_token + 1`` keeps every word). ``num_classes``: K, the
    largest class index + 1 or the multi-hot width (None for float targets). ``y_width``: 1
    for ``(N,)`` labels, else K.
    """

    path: Path
    layout: str  # "keras_imdb" or "ids"
    kind: str  # "tokens" or "features"
    features: int | None
    max_length: int
    min_length: int
    max_token: int | None
    label_kind: LabelKind
    num_classes: int | None
    y_width: int
    class_names: tuple[str, ...]
    train_size: int
    test_size: int


@dataclass(frozen=True)
class _Contents:
    """A file's arrays after the model-independent checks."""

    layout: str
    x_train: Sequences
    x_test: Sequences
    y_train: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    word_index: Path | None
    source: DataSource | None  # keras_imdb only


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Put the file's name in front of every error raised inside, unless it is already there."""
    try:
        yield
    except EdgeGruError as exc:
        if path.name in str(exc):
            raise
        raise EdgeGruError(f"{path.name}: {exc}") from exc


def resolve_data_path(data: str | Path | None) -> Path:
    """The file or folder ``--data`` names; None -> ``$EDGE_GRU_DATA`` (the IMDB default).

    Falls back like :func:`edge_gru.data.imdb.resolve_source`: ``../shared/data`` beside a
    source checkout, then Keras' download cache.
    """
    if data is None:
        data = default_data_dir()
        if data is None and (_keras_cache_dir() / "imdb.npz").is_file():
            data = _keras_cache_dir()
        if data is None:
            raise EdgeGruError(
                "no data: pass --data FILE.npz (or an IMDB folder) or set $EDGE_GRU_DATA"
            )
    path = Path(data)
    if not path.exists():
        raise EdgeGruError(f"data path does not exist: {path}")
    return path


def resolve_layout(path: Path, layout: str = "auto") -> str:
    """``"keras_imdb"`` or ``"ids"`` for ``path`` by the rule in the module docstring."""
    if layout not in LAYOUTS:
        raise EdgeGruError(f"unknown data layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    imdb_texts = path.is_dir() or path.name.endswith((".tar.gz", ".tgz"))
    if layout == "ids" and imdb_texts:
        raise EdgeGruError(f"layout 'ids' needs an .npz file, not {path}")
    if layout != "auto":
        return layout
    return "keras_imdb" if imdb_texts or (path.parent / WORD_INDEX_NAME).is_file() else "ids"


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive, or a one-line error for an unreadable file/missing key."""
    if not path.is_file():
        raise EdgeGruError(f"data file does not exist: {path}")
    if not zipfile.is_zipfile(path):
        raise EdgeGruError(f"{path} is not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=True) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise EdgeGruError(
                    f"{path.name}: lacks {', '.join(missing)} (the Keras layout needs "
                    f"{', '.join(KEYS)}; it holds {', '.join(f.files) or 'nothing'})"
                )
            names = ("class_names",) if "class_names" in f.files else ()
            return {k: f[k] for k in KEYS + names}
    except EdgeGruError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError,
            ImportError, AttributeError, TypeError) as exc:
        raise EdgeGruError(
            f"{path} is not a readable .npz file ({type(exc).__name__}: {exc})"
        ) from exc


def _class_names(arrays: dict[str, np.ndarray], where: str) -> tuple[str, ...]:
    if "class_names" not in arrays:
        return ()
    names = arrays["class_names"]
    if names.ndim != 1:
        raise EdgeGruError(f"{where}: class_names has shape {names.shape}: expected (K,)")
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names.tolist())


def _check_ranks(seqs: Sequences, where: str) -> None:
    if seqs.kind != "tokens":
        raise EdgeGruError(
            f"{where}: {seqs.name} holds features, not word ranks; pass layout 'ids'"
        )
    if seqs.values.size and seqs.values.min() < 1:
        low = int(seqs.values.argmin())
        raise EdgeGruError(
            f"{where}: {seqs.locate(low)} holds word rank {int(seqs.values[low])}; the "
            f"keras_imdb layout stores ranks >= 1 (for model ids pass layout 'ids')"
        )


def _read_contents(path: Path, layout: str) -> _Contents:
    """Read and run every check that needs no model; ``keras_imdb`` splits come back shuffled."""
    layout = resolve_layout(path, layout)
    where = path.name
    if layout == "keras_imdb" and (path.is_dir() or path.suffix != ".npz"):
        raw = load_raw(path)  # the IMDB folder or the Stanford texts, checked by imdb.py
        arrays: dict[str, np.ndarray] = {
            "x_train": _object_array(raw.train_ranks), "y_train": raw.y_train,
            "x_test": _object_array(raw.test_ranks), "y_test": raw.y_test,
        }
        source: DataSource | None = raw.source
    else:
        arrays = _read_npz(path)
        source = None
    checks.check_sizes(arrays, where)
    x_train = read_sequences("x_train", arrays["x_train"])
    x_test = read_sequences("x_test", arrays["x_test"])
    checks.check_same_kind(x_train, x_test, where)
    word_index = None
    if layout == "keras_imdb":
        for seqs in (x_train, x_test):
            _check_ranks(seqs, where)
        if source is None:  # an .npz of ranks: Keras' shuffle, as imdb.load_raw applies it
            source = DataSource("npz", path, path.parent / WORD_INDEX_NAME)
            train_order, test_order = keras_shuffle_orders(x_train.count, x_test.count)
            x_train, x_test = x_train.take(train_order), x_test.take(test_order)
            arrays = {
                **arrays,
                "y_train": np.asarray(arrays["y_train"])[train_order],
                "y_test": np.asarray(arrays["y_test"])[test_order],
            }
        word_index = source.word_index if source.word_index.is_file() else None
    for seqs in (x_train, x_test):
        checks.check_values(seqs)
    for split in checks.SPLITS:  # numeric, finite, (N,) or (N, K)
        checks.check_numeric_labels(f"y_{split}", np.asarray(arrays[f"y_{split}"]))
    return _Contents(
        layout, x_train, x_test, np.asarray(arrays["y_train"]), np.asarray(arrays["y_test"]),
        _class_names(arrays, where), word_index, source,
    )


def _object_array(rows: list[list[int]]) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out


def _label_kind(y_train: np.ndarray, y_test: np.ndarray) -> tuple[LabelKind, int | None, int]:
    """(kind, K, width) guessed from the stored labels; the recipe's task decides in the end."""
    ys = [y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y for y in (y_train, y_test)]
    width = 1 if ys[0].ndim == 1 else int(ys[0].shape[1])
    if ys[0].ndim == 2 and width > 1 and all(((y == 0) | (y == 1)).all() for y in ys):
        return "multi_hot", width, width
    if ys[0].ndim == 1 and all(y.dtype.kind in "biu" and (y >= 0).all() for y in ys):
        return "class_indices", int(max(int(y.max()) for y in ys)) + 1, 1
    return "float_targets", None, width


def inspect_npz(path: str | Path, layout: str = "auto") -> DataSummary:
    """What ``path`` holds (kind, shapes, lengths, labels), checked but not fitted to a model.

    Raises EdgeGruError for an unreadable file, a missing key, empty splits, x/y length
    mismatches, inputs of unknown form, NaN/inf features, negative ids, non-numeric labels.
    """
    path = Path(path)
    with _naming(path):
        return _inspect(path, layout)


def _inspect(path: Path, layout: str) -> DataSummary:
    c = _read_contents(path, layout)
    if c.y_train.ndim != c.y_test.ndim or c.y_train.shape[1:] != c.y_test.shape[1:]:
        raise EdgeGruError(
            f"{path.name}: y_train is {c.y_train.shape[1:] or '(N,)'} per sample, "
            f"y_test {c.y_test.shape[1:] or '(N,)'}"
        )
    lengths = np.concatenate([c.x_train.lengths, c.x_test.lengths])
    max_token = None
    if c.x_train.kind == "tokens":
        tops = [int(s.values.max()) for s in (c.x_train, c.x_test) if s.values.size]
        max_token = max(tops, default=0)
        if c.layout == "keras_imdb":  # ranks -> ids, plus the start char in front
            max_token = max(max_token + INDEX_FROM, 1)
            lengths = lengths + 1
    label_kind, num_classes, width = _label_kind(c.y_train, c.y_test)
    return DataSummary(
        path=path, layout=c.layout, kind=c.x_train.kind, features=c.x_train.features,
        max_length=int(lengths.max()), min_length=int(lengths.min()), max_token=max_token,
        label_kind=label_kind, num_classes=num_classes, y_width=width,
        class_names=c.class_names, train_size=c.x_train.count, test_size=c.x_test.count,
    )


def _encode_ranks(seqs: Sequences, num_words: int) -> Sequences:
    """Word ranks -> model ids as ``load_data`` does (:func:`edge_gru.data.text.encode_ranks`).

    ``start_char`` in front of every sequence, rank ``r`` -> id ``r + index_from``, ids
    ``>= num_words`` -> ``oov_char``; vectorised over the int64 ``values``.
    """
    ids = seqs.values + INDEX_FROM
    ids[ids >= num_words] = OOV_CHAR
    values = np.insert(ids, seqs.starts, START_CHAR)
    return Sequences(seqs.name, "tokens", None, seqs.lengths + 1, values)


def load_dataset(
    path: str | Path,
    spec: InputSpec,
    task: Task,
    layout: str = "auto",
    vocab: int | None = None,
) -> Dataset:
    """Read ``path``, check it against the model's input and task, and fit it to ``spec``.

    ``vocab`` (default ``spec.vocab``) is the ``num_words`` cut for the ``keras_imdb`` layout
    and the bound token ids must stay below; it may not exceed ``spec.vocab``. Returns x as
    int32 ``(N, T)`` or float32 ``(N, T, F)`` padded/truncated at the front to
    ``spec.timesteps`` with ``spec.pad_value``, y as documented in
    :func:`edge_gru.data.checks.check_labels`. ``class_names``: the file's, else the task's.
    """
    path = Path(path)
    with _naming(path):
        return _load(path, spec, task, layout, vocab)


def _load(path: Path, spec: InputSpec, task: Task, layout: str, vocab: int | None) -> Dataset:
    if spec.timesteps <= 0:
        raise EdgeGruError(f"the model's input length must be > 0, got {spec.timesteps}")
    bound = _vocab_bound(spec, vocab)
    c = _read_contents(path, layout)
    x_train, x_test = c.x_train, c.x_test
    if c.layout == "keras_imdb":
        if spec.kind != "tokens":
            raise EdgeGruError(f"{path.name} holds text but the model takes features")
        if bound is None or bound <= INDEX_FROM_MIN:
            raise EdgeGruError(
                f"{path.name}: the keras_imdb layout needs a vocabulary size > {INDEX_FROM_MIN}"
            )
        x_train, x_test = _encode_ranks(x_train, bound), _encode_ranks(x_test, bound)
    for seqs in (x_train, x_test):
        checks.check_against_spec(seqs, spec, bound)
    y_train = checks.check_labels("y_train", c.y_train, task)
    y_test = checks.check_labels("y_test", c.y_test, task)
    checks.check_class_names(c.class_names, task, path.name)
    notes = tuple(
        f"{seqs.name}: {seqs.truncated(spec.timesteps)} of {seqs.count} sequences longer than "
        f"{spec.timesteps} steps lose their first steps"
        for seqs in (x_train, x_test)
        if seqs.truncated(spec.timesteps)
    )
    origin = c.source.describe() if c.source is not None else f"npz:{path.name}"
    described = f"{c.layout}, vocab {bound}" if c.layout == "keras_imdb" else c.layout
    if spec.kind == "features":
        described = f"features, F = {spec.features}"
    return Dataset(
        x_train=x_train.fit(spec.timesteps, spec.pad_value),
        y_train=y_train,
        x_test=x_test.fit(spec.timesteps, spec.pad_value),
        y_test=y_test,
        source=f"{origin} ({described})",
        class_names=c.class_names or tuple(task.class_names),
        word_index=c.word_index,
        notes=notes,
    )


def _vocab_bound(spec: InputSpec, vocab: int | None) -> int | None:
    if vocab is None:
        return spec.vocab
    if vocab <= 0 or (spec.vocab is not None and vocab > spec.vocab):
        raise EdgeGruError(f"vocab {vocab} must be in 1..{spec.vocab} (the model's vocabulary)")
    return vocab
