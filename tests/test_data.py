"""IMDB loading: the npz path, the Stanford texts and the raw-text encoder give the same ids."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from edge_gru.data.imdb import (
    encode_and_pad,
    iter_stanford_reviews,
    load_imdb,
    load_raw,
    resolve_source,
)
from edge_gru.data.padding import pad_sequences
from edge_gru.data.text import TextEncoder, load_ranked_words, save_ranked_words, tokenize
from edge_gru.errors import EdgeGruError

# Keras' own dump starts with this review ("this film was just brilliant ..."), which the
# data README identifies as aclImdb/train/pos/576_10.txt.
KERAS_FIRST_REVIEW_PREFIX = [1, 14, 22, 16, 43, 530, 973, 1622, 1385, 65, 458, 4468, 66, 3941]


@pytest.fixture(scope="module")
def stanford(data_dir: Path) -> list:
    """All 50,000 labelled Stanford reviews, in the order imdb.npz stores them."""
    return list(iter_stanford_reviews(resolve_source(data_dir / "aclImdb_labeled.tar.gz")))


def test_raw_text_encodes_to_the_npz_ids(data_dir: Path, stanford: list) -> None:
    """The TF-free encoder reproduces every one of the 50,000 stored reviews from its text."""
    encoder = TextEncoder.from_file(data_dir / "imdb_word_index.json", num_words=10000)
    with np.load(data_dir / "imdb.npz", allow_pickle=True) as f:
        stored = {split: (f[f"x_{split}"], f[f"y_{split}"]) for split in ("train", "test")}
    seen = {"train": 0, "test": 0}
    for review in stanford:
        xs, ys = stored[review.split]
        i = seen[review.split]
        assert encoder.ranks(review.text) == list(xs[i]), (review.split, review.review_id)
        assert ys[i] == review.label
        seen[review.split] += 1
    assert seen == {"train": 25000, "test": 25000}


def test_tarball_source_equals_npz_source(data_dir: Path) -> None:
    from_npz = load_raw(data_dir)
    from_text = load_raw(data_dir / "aclImdb_labeled.tar.gz")
    assert from_text.source.kind == "aclimdb_tar"
    assert from_npz.train_ranks == from_text.train_ranks
    assert from_npz.test_ranks == from_text.test_ranks
    np.testing.assert_array_equal(from_npz.y_test, from_text.y_test)


def test_aclimdb_folder_source(data_dir: Path, tmp_path: Path) -> None:
    """An extracted ``aclImdb`` folder is read like the tarball (test split spot-checked)."""
    with tarfile.open(data_dir / "aclImdb_labeled.tar.gz") as tar:
        members = [m for m in tar if m.isfile() and "/test/pos/" in m.name][:50]
        tar.extractall(tmp_path, members=members, filter="data")
    (tmp_path / "imdb_word_index.json").symlink_to(data_dir / "imdb_word_index.json")
    source = resolve_source(tmp_path)
    assert source.kind == "aclimdb_dir"
    reviews = list(iter_stanford_reviews(source, "test"))
    assert len(reviews) == 50 and {r.label for r in reviews} == {1}
    assert [r.review_id for r in reviews] == sorted(r.review_id for r in reviews)


def test_raw_text_encoder_matches_keras_first_review(data_dir: Path, stanford: list) -> None:
    review = next(r for r in stanford if r.split == "train" and r.label == 1 and r.review_id == 576)
    encoder = TextEncoder.from_file(data_dir / "imdb_word_index.json", num_words=10000)
    ids = encoder.encode(review.text)
    assert ids[: len(KERAS_FIRST_REVIEW_PREFIX)] == KERAS_FIRST_REVIEW_PREFIX
    assert len(ids) == 218  # the Keras dump's first review has 218 ids
    padded = pad_sequences([ids], 100)[0]
    np.testing.assert_array_equal(
        padded, encode_and_pad([encoder.ranks(review.text)], 10000, 100)[0]
    )


def test_load_imdb_shapes_cut_and_padding(imdb) -> None:
    assert imdb.x_train.shape == (25000, 100) and imdb.x_test.shape == (25000, 100)
    assert imdb.x_train.dtype == np.int32
    assert imdb.x_train.max() == 9999 and imdb.x_train.min() == 0
    # Labels shuffled with Keras' seed 113: balanced and mixed, not neg-then-pos.
    assert imdb.y_train.sum() == 12500 and 0 < imdb.y_train[:100].sum() < 100
    # Every short review is pre-padded and starts with the start char after its padding.
    row = next(r for r in imdb.x_test if r[0] == 0)
    first = np.argmax(row != 0)
    assert row[first] == 1 and not row[:first].any()


def test_num_words_maps_rare_words_to_oov(data_dir: Path) -> None:
    small = load_imdb(data_dir, num_words=50, maxlen=30)
    assert small.x_train.max() == 49
    assert (small.x_train == 2).sum() > (small.x_train == 3).sum()


def test_pad_sequences_matches_keras() -> None:
    import keras

    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 100, size=n)) for n in (0, 1, 5, 9, 10, 11, 40)]
    np.testing.assert_array_equal(
        pad_sequences(seqs, 10), keras.utils.pad_sequences(seqs, maxlen=10)
    )


def test_ranked_word_file_round_trip(data_dir: Path, tmp_path: Path) -> None:
    from edge_gru.data.text import load_word_index

    index = load_word_index(data_dir / "imdb_word_index.json")
    save_ranked_words(index, tmp_path / "w.txt.gz")
    assert load_ranked_words(tmp_path / "w.txt.gz") == index
    first = (tmp_path / "w.txt.gz").read_bytes()
    save_ranked_words(index, tmp_path / "w.txt.gz")
    assert (tmp_path / "w.txt.gz").read_bytes() == first


def test_tokenize_filters_like_keras() -> None:
    assert tokenize("Great!! A <br />film,\tno?\nYES") == ["great", "a", "br", "film", "no", "yes"]


@pytest.mark.parametrize("name", ["nope", "imdb.npz"])
def test_missing_data_is_one_line_error(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    if name.endswith(".npz"):
        target.write_bytes(b"not a zip")
        (tmp_path / "imdb_word_index.json").write_text("{}")
    with pytest.raises(EdgeGruError) as err:
        load_imdb(target if not name.endswith(".npz") else tmp_path)
    assert "\n" not in str(err.value)


def test_default_data_dir_is_the_shared_folder_beside_the_checkout(monkeypatch) -> None:
    """Without $EDGE_GRU_DATA a source checkout reads ../shared/data (its layout moved once)."""
    from edge_gru.data.imdb import default_data_dir

    monkeypatch.delenv("EDGE_GRU_DATA", raising=False)
    beside = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    assert default_data_dir() == (beside if (beside / "imdb.npz").is_file() else None)
    assert beside.is_dir()  # CI has ../shared beside the clone
