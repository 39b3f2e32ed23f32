"""Fixtures for the training tests: fast configs and writable copies of the trained home."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from reggaeton.registry import Registry
from training.config import ORIGINAL_CONFIG, TrainConfig, load_config

TINY = ["model.params.n_estimators=1", "cv.folds=2"]
"""A deliberately weak model (1 tree of the original GBM+SMOTE), trained in about a second."""
# Tests that set GBM parameters start from ORIGINAL_CONFIG, not from ``default.yaml`` (which
# ``make experiment`` may replace with another estimator).


@pytest.fixture
def tiny_config() -> TrainConfig:
    """The original config with one tree and 2 folds (a worse model, fast)."""
    return load_config(ORIGINAL_CONFIG, TINY)


@pytest.fixture
def fast_config(fast_overrides: list[str]) -> TrainConfig:
    """The config the session's ``trained_home`` model was trained with."""
    return load_config(ORIGINAL_CONFIG, fast_overrides)


@pytest.fixture
def config_with() -> Callable[..., TrainConfig]:
    """``config_with("cv.folds=3", ...)``: the original config plus overrides."""
    return lambda *overrides: load_config(ORIGINAL_CONFIG, list(overrides))


@pytest.fixture
def home_copy(trained_home: Path, tmp_path: Path) -> Path:
    """A writable copy of the session's trained home (one promoted version)."""
    dest = tmp_path / "home"
    shutil.copytree(trained_home, dest)
    return dest


@pytest.fixture
def registry_copy(home_copy: Path) -> Registry:
    """A Registry over :func:`home_copy`."""
    return Registry(home_copy)


@pytest.fixture(scope="session")
def tiny_data(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """``--set`` overrides pointing the data at a small copy of the seed CSVs (the first 40
    reggaeton songs, 400 others): the protocol and the search run in seconds on it."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("tiny_data")
    pd.read_csv(repo_root / "data/data_reggaeton.csv").head(40).to_csv(
        folder / "reggaeton.csv", index=False
    )
    pd.read_csv(repo_root / "data/data_todotipo.csv").head(400).to_csv(
        folder / "other.csv", index=False
    )
    return [
        f"data.reggaeton_csv={folder / 'reggaeton.csv'}",
        f"data.other_csv={folder / 'other.csv'}",
        "data.unlabelled_csv=null",
    ]


@pytest.fixture(scope="session")
def tiny_xy(tiny_data: list[str]) -> tuple:
    """Model matrix and labels of the training part of :func:`tiny_data`'s seeded split."""
    from reggaeton.schema import LABEL_COLUMN, MODEL_FEATURES
    from training.data import load_labelled, split_holdout
    from training.pipeline import to_matrix

    config = load_config(overrides=tiny_data)
    labelled, _ = load_labelled(
        config.data.reggaeton_csv, config.data.other_csv, list(MODEL_FEATURES)
    )
    train, _ = split_holdout(labelled, config.split.test_size, config.seed)
    return to_matrix(train, MODEL_FEATURES), train[LABEL_COLUMN].to_numpy(dtype=int)
