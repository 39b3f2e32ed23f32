"""Fixtures for the inference tests: the session's trained model and the seed data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reggaeton.registry import Registry
from reggaeton.schema import MODEL_FEATURES


@pytest.fixture(scope="session")
def served(trained_home: Path):
    """(version, pipeline) of the promoted version of the session's trained model."""
    registry = Registry(trained_home)
    version = registry.serving_version()
    return version, registry.load_pipeline(version)


@pytest.fixture(scope="session")
def dataset(repo_root: Path) -> np.ndarray:
    """Every row of the seed CSVs with all model features present, columns MODEL_FEATURES."""
    frames = [pd.read_csv(p) for p in sorted((repo_root / "data").glob("*.csv"))]
    frame = pd.concat(frames, ignore_index=True)[list(MODEL_FEATURES)].dropna()
    return frame.to_numpy(dtype=np.float64)
