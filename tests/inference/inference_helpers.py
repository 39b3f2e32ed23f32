"""Helpers shared by the inference tests."""

from __future__ import annotations

import numpy as np

from reggaeton.schema import FEATURES_BY_NAME, MODEL_FEATURES


def in_bounds(rows: int, seed: int) -> np.ndarray:
    """Uniform random rows within the schema's physical bounds (columns MODEL_FEATURES)."""
    rng = np.random.default_rng(seed)
    low = np.array([FEATURES_BY_NAME[n].minimum for n in MODEL_FEATURES], dtype=float)
    high = np.array([FEATURES_BY_NAME[n].maximum for n in MODEL_FEATURES], dtype=float)
    return low + rng.random((rows, len(MODEL_FEATURES))) * (high - low)
