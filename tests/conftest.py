"""Shared fixtures: the real IMDB data and small trained models, found through one place.

Data comes from ``$EDGE_GRU_DATA`` (default ``../shared/data`` beside the repository).
In CI (``CI=true``) a missing data file or tool fails the test; on a laptop it skips.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("EDGE_GRU_DATA", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edge_gru.data.imdb import ImdbSplits, load_imdb  # noqa: E402
from edge_gru.recipe import ModelConfig  # noqa: E402
from edge_gru.weights import GruWeights  # noqa: E402


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(reason: str) -> None:
    """Fail in CI, skip elsewhere: a missing tool or file must never pass silently in CI."""
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (.ci/run installs it)")
    return path  # type: ignore[return-value]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["EDGE_GRU_DATA"])
    for name in ("imdb.npz", "imdb_word_index.json", "aclImdb_labeled.tar.gz"):
        if not (path / name).is_file():
            missing(f"IMDB data file {path / name} is missing (set EDGE_GRU_DATA)")
    return path


@pytest.fixture(scope="session")
def imdb(data_dir: Path) -> ImdbSplits:
    """The seed configuration's data: vocab 10000, maxlen 100, all 25,000 + 25,000 reviews."""
    return load_imdb(data_dir, 10000, 100)


@dataclass(frozen=True)
class TrainedModel:
    keras: Any
    weights: GruWeights
    config: ModelConfig
    data: ImdbSplits


def train_small(data_dir: Path, **overrides: Any) -> TrainedModel:
    """A real model trained briefly (8,000 reviews, 1 epoch, ~79% accuracy): fast, not chance."""
    from edge_gru.model.training import extract_weights, train_model

    config = ModelConfig(epochs=1, train_subset=8000, **overrides)
    data = load_imdb(data_dir, config.vocab, config.maxlen)
    model = train_model(config, data.x_train, data.y_train, verbose=0)
    return TrainedModel(model, extract_weights(model, config.maxlen), config, data)


@pytest.fixture(scope="session")
def small_model(data_dir: Path) -> TrainedModel:
    """Seed dimensions, ``reset_after=True``."""
    return train_small(data_dir)


@pytest.fixture(scope="session")
def small_model_reset_before(data_dir: Path) -> TrainedModel:
    """A second configuration so nothing is tied to the seed numbers."""
    return train_small(data_dir, vocab=2000, units=16, maxlen=80, reset_after=False)


@pytest.fixture(scope="session")
def test_ids(imdb: ImdbSplits) -> np.ndarray:
    return imdb.x_test[:1000]
