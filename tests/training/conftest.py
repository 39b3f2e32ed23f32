"""Fixtures for the training tests: fast configs and writable copies of the trained home."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from reggaeton.registry import Registry
from training.config import TrainConfig, load_config

TINY = ["model.params.n_estimators=1", "cv.folds=2"]
"""A deliberately weak model (1 tree), trained in about a second."""


@pytest.fixture
def tiny_config() -> TrainConfig:
    """The default config with one tree and 2 folds (a worse model, fast)."""
    return load_config(overrides=TINY)


@pytest.fixture
def fast_config(fast_overrides: list[str]) -> TrainConfig:
    """The config the session's ``trained_home`` model was trained with."""
    return load_config(overrides=fast_overrides)


@pytest.fixture
def config_with() -> Callable[..., TrainConfig]:
    """``config_with("cv.folds=3", ...)``: the default config plus overrides."""
    return lambda *overrides: load_config(overrides=list(overrides))


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
