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


def edit_treelite_dump(monkeypatch, edit) -> None:
    """Make treelite's public importer return its JSON dump after ``edit(dump)`` (in place)."""
    import json

    import treelite.sklearn

    real = treelite.sklearn.import_model

    class Edited:
        def __init__(self, model):
            self.model = model

        def dump_as_json(self, pretty_print=True):
            data = json.loads(real(self.model).dump_as_json(pretty_print=False))
            edit(data)
            return json.dumps(data)

    monkeypatch.setattr(treelite.sklearn, "import_model", Edited)
