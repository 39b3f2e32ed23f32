"""The decision rule, written once: a song is reggaeton when its probability reaches the threshold.

Training chooses the threshold, the service answers with it, the scoring job and the monitor
recompute labels with it; all of them call :func:`decide` so the comparison (``>=``, not ``>``)
cannot drift between them.
"""

from __future__ import annotations

import numpy as np


def decide(proba: np.ndarray, threshold: float) -> np.ndarray:
    """Labels (1 reggaeton, 0 other) for probabilities, as int64: ``proba >= threshold``."""
    return (np.asarray(proba) >= threshold).astype(np.int64)
