"""A user's .npz data set: the shared time series, imdb_stars in the IMDB layout, every fault.

Measured on the shared files (see the report): BasicMotions 40 + 40 series of (100, 6),
4 classes; JapaneseVowels 270 + 370 series of 7..26 (train) and 7..29 (test) frames of 12
coefficients, 9 speakers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import missing

from edge_gru.data.imdb import keras_shuffle_orders, load_imdb
from edge_gru.data.npz import inspect_npz, load_dataset, resolve_data_path, resolve_layout
from edge_gru.errors import EdgeGruError
from edge_gru.ir import InputSpec, Task

MOTIONS = InputSpec("features", 100, features=6)
VOWELS = InputSpec("features", 29, features=12)


def shared(name: str) -> Path:
    path = Path(os.environ["EDGE_GRU_DATA"]) / name
    if not path.is_file():
        missing(f"shared data file {path} is missing (set EDGE_GRU_DATA)")
    return path


def ragged(rows: list[Any]) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out


def write_npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


# -- the shared time series -------------------------------------------------------------


def test_basic_motions_summary_and_exact_load() -> None:
    path = shared("timeseries/BasicMotions.npz")
    summary = inspect_npz(path)
    assert (summary.layout, summary.kind, summary.features) == ("ids", "features", 6)
    assert (summary.min_length, summary.max_length) == (100, 100)
    assert (summary.train_size, summary.test_size) == (40, 40)
    assert (summary.label_kind, summary.num_classes, summary.y_width) == ("class_indices", 4, 1)
    assert summary.class_names == ("Standing", "Running", "Walking", "Badminton")

    data = load_dataset(path, MOTIONS, Task("multiclass", 4))
    with np.load(path) as f:
        stored_x, stored_y = f["x_test"], f["y_test"]
    assert data.x_train.shape == (40, 100, 6) and data.x_test.dtype == np.float32
    np.testing.assert_array_equal(data.x_test, stored_x)
    np.testing.assert_array_equal(data.y_test, stored_y)
    assert data.y_train.dtype == np.int64 and np.bincount(data.y_train).tolist() == [10] * 4
    assert data.class_names[3] == "Badminton" and data.word_index is None
    assert data.source == "npz:BasicMotions.npz (features, F = 6)" and data.notes == ()


def test_basic_motions_fitted_to_other_lengths() -> None:
    """A dense file is pre-truncated (keeps the last steps) and pre-padded like pad_sequences."""
    path = shared("timeseries/BasicMotions.npz")
    with np.load(path) as f:
        stored = f["x_train"]
    short = load_dataset(path, InputSpec("features", 80, features=6), Task("multiclass", 4))
    np.testing.assert_array_equal(short.x_train, stored[:, 20:])
    assert short.notes[0].startswith("x_train: 40 of 40 sequences longer than 80")
    long = load_dataset(
        path, InputSpec("features", 110, features=6, pad_value=-1.0), Task("multiclass", 4)
    )
    assert (long.x_train[:, :10] == -1.0).all()
    np.testing.assert_array_equal(long.x_train[:, 10:], stored)


def test_japanese_vowels_lengths_and_padding() -> None:
    import keras

    path = shared("timeseries/JapaneseVowels.npz")
    summary = inspect_npz(path)
    assert (summary.kind, summary.features, summary.num_classes) == ("features", 12, 9)
    assert (summary.min_length, summary.max_length) == (7, 29)
    assert (summary.train_size, summary.test_size) == (270, 370)
    with np.load(path, allow_pickle=True) as f:
        rows = list(f["x_train"])
        lengths_test = [len(r) for r in f["x_test"]]
    assert max(len(r) for r in rows) == 26 and max(lengths_test) == 29
    assert len(rows[0]) == 20

    data = load_dataset(path, VOWELS, Task("multiclass", 9))
    assert data.x_train.shape == (270, 29, 12) and data.x_test.shape == (370, 29, 12)
    assert data.class_names == tuple(str(i) for i in range(1, 10))
    # x_train[0] has 20 frames: 9 zero frames in front, then the 20 frames unchanged.
    assert not data.x_train[0, :9].any()
    np.testing.assert_array_equal(data.x_train[0, 9:], rows[0])
    assert data.notes == ()

    masked = load_dataset(
        path, InputSpec("features", 10, features=12, pad_value=-5.0), Task("multiclass", 9)
    )
    np.testing.assert_array_equal(masked.x_train[0], rows[0][-10:])
    np.testing.assert_array_equal(
        masked.x_train, keras.utils.pad_sequences(rows, maxlen=10, dtype="float32", value=-5.0)
    )
    shortest = int(np.argmin([len(r) for r in rows]))
    assert len(rows[shortest]) == 7 and (masked.x_train[shortest, :3] == -5.0).all()
    np.testing.assert_array_equal(masked.x_train[shortest, 3:], rows[shortest])
    assert masked.notes[0].startswith("x_train: ")


# -- IMDB layout -------------------------------------------------------------------------


def test_imdb_stars_equals_load_imdb_and_keeps_stars() -> None:
    path = shared("imdb_stars.npz")
    data = load_dataset(path, InputSpec("tokens", 60, vocab=2000), Task("regression", 1))
    reference = load_imdb(path.parent, num_words=2000, maxlen=60)
    np.testing.assert_array_equal(data.x_train, reference.x_train)
    np.testing.assert_array_equal(data.x_test, reference.x_test)
    assert data.x_train.dtype == np.int32 and data.y_test.dtype == np.float32
    assert sorted(np.unique(data.y_train).tolist()) == [1, 2, 3, 4, 7, 8, 9, 10]
    np.testing.assert_array_equal(data.y_test >= 7, reference.y_test == 1)
    assert data.word_index == path.parent / "imdb_word_index.json"
    assert data.source == "npz:imdb_stars.npz (keras_imdb, vocab 2000)"


def _tiny_imdb(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    ranks = [rng.integers(1, 30, size=n).tolist() for n in (0, 1, 4, 7, 12, 3)]
    (tmp_path / "imdb_word_index.json").write_text(json.dumps({"the": 1}))
    return write_npz(
        tmp_path / "tiny.npz", x_train=ragged(ranks), y_train=np.array([0, 1, 0, 1, 1, 0]),
        x_test=ragged(ranks[::-1]), y_test=np.array([1, 0, 1, 0, 0, 1]),
    )


def test_layout_rule_and_tiny_imdb_file(tmp_path: Path) -> None:
    path = _tiny_imdb(tmp_path)
    assert resolve_layout(path) == "keras_imdb" and resolve_layout(tmp_path) == "keras_imdb"
    assert resolve_layout(path, "ids") == "ids"
    spec = InputSpec("tokens", 5, vocab=20)
    data = load_dataset(path, spec, Task("binary", 1))
    reference = load_imdb(path, num_words=20, maxlen=5)  # imdb.py's own encoder
    np.testing.assert_array_equal(data.x_train, reference.x_train)
    np.testing.assert_array_equal(data.y_test, reference.y_test)
    assert (data.x_train == 2).any()  # ranks >= 17 were cut to OOV

    ids = load_dataset(path, InputSpec("tokens", 5, vocab=30), Task("binary", 1), layout="ids")
    with np.load(path, allow_pickle=True) as f:
        first = f["x_train"][3]
    np.testing.assert_array_equal(ids.x_train[3], first[-5:])  # no offset, no shuffle
    assert ids.word_index is None
    order, _ = keras_shuffle_orders(6, 6)
    assert order.tolist() != list(range(6))

    summary = inspect_npz(path)
    assert summary.max_length == 13 and summary.min_length == 1  # + start char
    with np.load(path, allow_pickle=True) as f:
        top_rank = max(max(r) for r in f["x_train"] if r)
    assert summary.max_token == top_rank + 3  # index_from, before any num_words cut


def test_ids_file_dense_and_ragged_tokens(tmp_path: Path) -> None:
    x = np.array([[0, 3, 4, 5], [1, 2, 3, 4]], dtype=np.int64)
    path = write_npz(
        tmp_path / "ids.npz", x_train=x, y_train=np.array([[1, 0, 1], [0, 0, 1]]),
        x_test=ragged([[7], [1, 2, 3, 4, 5, 6]]), y_test=np.array([[0, 1, 0], [1, 1, 1]]),
        class_names=np.array([b"a", b"b", b"c"]),
    )
    summary = inspect_npz(path)
    assert (summary.kind, summary.max_token, summary.max_length) == ("tokens", 7, 6)
    assert (summary.label_kind, summary.num_classes, summary.class_names) == (
        "multi_hot", 3, ("a", "b", "c"))
    data = load_dataset(path, InputSpec("tokens", 5, vocab=8), Task("multilabel", 3))
    np.testing.assert_array_equal(data.x_train, [[0, 0, 3, 4, 5], [0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(data.x_test, [[0, 0, 0, 0, 7], [2, 3, 4, 5, 6]])
    assert data.y_test.dtype == np.float32 and data.y_test.tolist() == [[0, 1, 0], [1, 1, 1]]


def test_label_forms(tmp_path: Path) -> None:
    x = np.zeros((3, 2, 1), np.float32)
    one_hot = np.eye(3)[[2, 0, 1]]
    path = write_npz(tmp_path / "oh.npz", x_train=x, y_train=one_hot, x_test=x, y_test=one_hot)
    data = load_dataset(path, InputSpec("features", 2, features=1), Task("multiclass", 3))
    assert data.y_train.tolist() == [2, 0, 1] and data.y_train.dtype == np.int64
    targets = np.array([[0.5, -2.0], [1.0, 3.0], [2.5, 0.0]])
    path = write_npz(tmp_path / "r.npz", x_train=x, y_train=targets, x_test=x, y_test=targets)
    assert inspect_npz(path).label_kind == "float_targets"
    data = load_dataset(path, InputSpec("features", 2, features=1), Task("regression", 2))
    assert data.y_test.dtype == np.float32 and data.y_test[0].tolist() == [0.5, -2.0]
    binary = np.array([[1.0], [0.0], [1.0]])
    path = write_npz(tmp_path / "b.npz", x_train=x, y_train=binary, x_test=x, y_test=binary)
    data = load_dataset(path, InputSpec("features", 2, features=1), Task("binary_logits", 1))
    assert data.y_train.tolist() == [1, 0, 1] and data.y_train.dtype == np.int64


def test_resolve_data_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGE_GRU_DATA", str(tmp_path))
    assert resolve_data_path(None) == tmp_path
    assert resolve_data_path(str(tmp_path)) == tmp_path
    with pytest.raises(EdgeGruError, match="does not exist"):
        resolve_data_path(tmp_path / "nope.npz")


# -- faults: one line each ---------------------------------------------------------------

FEATURES = InputSpec("features", 4, features=2)
TOKENS = InputSpec("tokens", 4, vocab=10)
GOOD_X = np.ones((3, 4, 2), np.float32)
GOOD_Y = np.array([0, 1, 2])


def _faulty(case: str) -> tuple[dict[str, Any], InputSpec, Task, str]:
    """(arrays, spec, task, expected words in the message) for each fault case."""
    mc = Task("multiclass", 3)
    base: dict[str, Any] = dict(x_train=GOOD_X, y_train=GOOD_Y, x_test=GOOD_X, y_test=GOOD_Y)
    nan_x = GOOD_X.copy()
    nan_x[1, 2, 0] = np.nan
    cases: dict[str, tuple[dict[str, Any], InputSpec, Task, str]] = {
        "missing_key": ({k: v for k, v in base.items() if k != "x_test"}, FEATURES, mc,
                        "lacks x_test"),
        "feature_count": (base, InputSpec("features", 4, features=3), mc,
                          "2 features per step; the model takes 3"),
        "tokens_for_features": ({**base, "x_test": np.ones((3, 4), np.int32)}, FEATURES, mc,
                                "x_train holds features but x_test holds tokens"),
        "features_for_tokens": (base, TOKENS, mc, "holds features but the model takes token"),
        "token_too_big": ({**base, "x_train": np.array([[1, 2], [3, 10], [0, 0]]),
                           "x_test": np.ones((3, 2), np.int64)}, TOKENS, mc,
                          "x_train[1] step 1 holds token id 10 >= the vocabulary size 10"),
        "token_negative": ({**base, "x_train": ragged([[1], [2, -1], []]),
                            "x_test": np.ones((3, 2), np.int64)}, TOKENS, mc,
                           "x_train[1] step 1 holds token id -1 < 0"),
        "float_tokens": ({**base, "x_train": np.ones((3, 4)), "x_test": np.ones((3, 4))},
                         TOKENS, mc, "token ids must be integers"),
        "nan_features": ({**base, "x_train": nan_x}, FEATURES, mc,
                         "x_train[1] step 2 holds NaN or inf"),
        "inf_ragged": ({**base, "x_test": ragged([np.ones((2, 2)), np.full((3, 2), np.inf),
                                                  np.ones((1, 2))])}, FEATURES, mc,
                       "x_test[1] step 0 holds NaN or inf"),
        "ragged_feature_count": ({**base, "x_test": ragged([np.ones((2, 2)), np.ones((2, 3)),
                                                            np.ones((1, 2))])}, FEATURES, mc,
                                 "x_test[1] has 3 features per step"),
        "nan_target": ({**base, "y_train": np.array([0.5, np.nan, 1.0])}, FEATURES,
                       Task("regression", 1), "y_train[1] is NaN or inf"),
        "class_out_of_range": ({**base, "y_test": np.array([0, 3, 1])}, FEATURES, mc,
                               "y_test[1] = 3 is out of range: 3 classes take integers 0..2"),
        "negative_class": ({**base, "y_test": np.array([0, -1, 1])}, FEATURES, mc,
                           "y_test[1] = -1 is out of range"),
        "binary_label_2": ({**base, "y_train": np.array([0, 1, 2])}, FEATURES,
                           Task("binary", 1), "y_train[2] = 2 is out of range: a binary task"),
        "multilabel_half": ({**base, "y_train": np.array([[0, 1], [0.5, 1], [1, 1]])},
                            FEATURES, Task("multilabel", 2), "y_train[1] = [0.5, 1.0]"),
        "multilabel_width": (base, FEATURES, Task("multilabel", 2),
                             "y_train has shape (3,): 2 labels need multi-hot (N, 2)"),
        "regression_width": (base, FEATURES, Task("regression", 2),
                             "2 regression outputs need (N, 2)"),
        "empty_test": ({**base, "x_test": GOOD_X[:0], "y_test": GOOD_Y[:0]}, FEATURES, mc,
                       "the test split is empty"),
        "length_mismatch": ({**base, "y_train": GOOD_Y[:2]}, FEATURES, mc,
                            "x_train has 3 samples but y_train has 2"),
        "string_labels": ({**base, "y_test": np.array(["a", "b", "c"])}, FEATURES, mc,
                          "y_test has dtype <U1: labels and targets must be numeric"),
        "class_names": ({**base, "class_names": np.array(["a", "b"])}, FEATURES, mc,
                        "class_names has 2 names but the multiclass model has 3 classes"),
    }
    return cases[case]


FAULTS = [
    "missing_key", "feature_count", "tokens_for_features", "features_for_tokens",
    "token_too_big", "token_negative", "float_tokens", "nan_features", "inf_ragged",
    "ragged_feature_count", "nan_target", "class_out_of_range", "negative_class",
    "binary_label_2", "multilabel_half", "multilabel_width", "regression_width", "empty_test",
    "length_mismatch", "string_labels", "class_names",
]


@pytest.mark.parametrize("case", FAULTS)
def test_fault_is_one_line_error(tmp_path: Path, case: str) -> None:
    arrays, spec, task, expected = _faulty(case)
    path = write_npz(tmp_path / f"{case}.npz", **arrays)
    with pytest.raises(EdgeGruError) as err:
        load_dataset(path, spec, task)
    message = str(err.value)
    assert "\n" not in message and expected in message, message
    assert message.startswith(f"{case}.npz: "), message  # names the file once


@pytest.mark.parametrize("case", ["text_file", "truncated_zip", "absent", "npy_file"])
def test_unreadable_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / "data.npz"
    if case == "text_file":
        path.write_text("x_train,y_train\n1,2\n")
    elif case == "truncated_zip":
        write_npz(path, x_train=GOOD_X, y_train=GOOD_Y, x_test=GOOD_X, y_test=GOOD_Y)
        path.write_bytes(path.read_bytes()[:300])
    elif case == "npy_file":
        np.save(tmp_path / "data.npy", GOOD_X)
        (tmp_path / "data.npy").rename(path)
    for call in (inspect_npz, lambda p: load_dataset(p, FEATURES, Task("multiclass", 3))):
        with pytest.raises(EdgeGruError) as err:
            call(path)
        message = str(err.value)
        assert "\n" not in message
        assert ("does not exist" if case == "absent" else "not a readable .npz") in message


def test_imdb_layout_faults(tmp_path: Path) -> None:
    path = _tiny_imdb(tmp_path)
    with pytest.raises(EdgeGruError, match="unknown data layout 'csv'"):
        load_dataset(path, TOKENS, Task("binary", 1), layout="csv")
    with pytest.raises(EdgeGruError, match="vocab 50 must be in 1..10"):
        load_dataset(path, TOKENS, Task("binary", 1), vocab=50)
    with pytest.raises(EdgeGruError, match="holds text but the model takes features"):
        load_dataset(path, FEATURES, Task("binary", 1))
    ids = write_npz(tmp_path / "ids.npz", x_train=np.zeros((3, 4), np.int64), y_train=GOOD_Y,
                    x_test=np.zeros((3, 4), np.int64), y_test=GOOD_Y)
    with pytest.raises(EdgeGruError, match="word rank 0; .* pass layout 'ids'"):
        inspect_npz(ids)  # auto -> keras_imdb, since the word index sits beside it
    assert inspect_npz(ids, layout="ids").max_token == 0
    with pytest.raises(EdgeGruError, match="layout 'ids' needs an .npz file"):
        inspect_npz(tmp_path, layout="ids")


# -- every zoo model's input spec and task -----------------------------------------------


def _unpad(x: np.ndarray) -> list[np.ndarray]:
    """The zoo's pre-padded batch back to variable-length rows (the zoo pads with 0)."""
    rows = []
    for row in x:
        real = row != 0 if row.ndim == 1 else (row != 0).any(axis=1)
        rows.append(row[int(np.argmax(real)) :] if real.any() else row[:0])
    return rows


def _labels(task: Task, n: int, rng: np.random.Generator) -> np.ndarray:
    k = task.outputs
    if task.kind in ("binary", "binary_logits"):
        return rng.integers(0, 2, size=n)
    if task.kind == "multiclass":
        return rng.integers(0, k, size=n)
    if task.kind == "multilabel":
        return rng.integers(0, 2, size=(n, k))
    return rng.normal(size=(n, k)) if k > 1 else rng.normal(size=n)


def test_every_zoo_model_reads_its_data_like_pad_sequences(tmp_path: Path) -> None:
    """Ragged rows written for each zoo model load exactly as keras' pad_sequences pads them,
    with the spec and task the frontend reads from the model (incl. a Masking value of -1)."""
    import keras
    from model_zoo import build_zoo

    from edge_gru.frontend.keras import from_keras

    rng = np.random.default_rng(5)
    pad_values = set()
    for name, build in build_zoo().items():
        zoo = build()
        ir = from_keras(zoo.model, timesteps=zoo.x.shape[1])
        rows = _unpad(zoo.x)
        y = _labels(ir.task, len(rows), rng)
        path = write_npz(tmp_path / f"{name}.npz", x_train=ragged(rows), y_train=y,
                         x_test=ragged(rows[::-1]), y_test=y[::-1])
        data = load_dataset(path, ir.input, ir.task)
        dtype = "int32" if ir.input.kind == "tokens" else "float32"
        expected = keras.utils.pad_sequences(
            rows[::-1], maxlen=ir.input.timesteps, dtype=dtype, value=ir.input.pad_value
        )
        assert data.x_test.dtype == expected.dtype, name
        np.testing.assert_array_equal(data.x_test, expected, err_msg=name)
        if ir.input.pad_value == 0:
            np.testing.assert_array_equal(data.x_train, zoo.x, err_msg=name)
        np.testing.assert_array_equal(data.y_train.reshape(y.shape), y.astype(data.y_train.dtype))
        pad_values.add(ir.input.pad_value)
    assert pad_values == {0.0, -1.0}
