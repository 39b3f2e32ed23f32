"""A version's servable form: its compiled evaluator and a probe, as plain arrays (no pickle).

A version's pipeline is a pickle (``pipeline.joblib``), and unpickling runs code, so only the
training-side tools that wrote it load it. When the trainer saves a version, :func:`export`
compiles the pipeline (:mod:`reggaeton.fastpath`), keeps the result only if it equals
``predict_proba`` on :data:`PROBE_ROWS` random in-bounds rows, and writes the evaluator's
arrays together with that probe (the rows and the pipeline's own probabilities) as
``servable.npz``. The service and the scoring job read only that file: :func:`load` opens it
with ``numpy.load(allow_pickle=False)``, checks the node table cannot send the compiled walk out
of bounds, and replays the probe, so the evaluator is shown to give the pipeline's numbers on
the serving machine before it serves.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from reggaeton.fastpath import FastModel, compile_pipeline
from reggaeton.schema import FEATURES_BY_NAME, MODEL_FEATURES, POSITIVE_LABEL

SERVABLE_FILE = "servable.npz"
"""The servable form's file name in a version's folder."""
PROBE_ROWS = 1000
"""Random in-bounds rows the compiled evaluator must reproduce (more than one block of the
batch walk, :data:`reggaeton.fasttrees.BLOCK_ROWS`, so block boundaries are crossed)."""
PARITY_TOLERANCE = 1e-12
"""Largest difference in raw probability allowed between the evaluator and ``predict_proba``."""
FORMAT = 1
"""Version of the file's layout (``format`` in the file)."""


class NotServable(ValueError):
    """The pipeline has no compiled form, or a servable file is malformed or disagrees."""


def probe_matrix(rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Random rows within the schema's physical bounds, columns ``MODEL_FEATURES``."""
    rng = np.random.default_rng(seed)
    low = np.array([FEATURES_BY_NAME[n].minimum for n in MODEL_FEATURES], dtype=float)
    high = np.array([FEATURES_BY_NAME[n].maximum for n in MODEL_FEATURES], dtype=float)
    return low + rng.random((rows, len(MODEL_FEATURES))) * (high - low)


def pipeline_proba(pipeline: Any, model_matrix: np.ndarray) -> np.ndarray:
    """``pipeline.predict_proba`` of the positive class for rows in ``MODEL_FEATURES`` order."""
    import sklearn

    classes = [int(c) for c in getattr(pipeline, "classes_", [])]
    if sorted(classes) != [0, 1]:
        raise NotServable(f"expected classes [0, 1], got {classes}")
    X: Any = model_matrix
    if hasattr(pipeline, "feature_names_in_"):  # fitted on a DataFrame: keep the names
        import pandas as pd

        X = pd.DataFrame(model_matrix, columns=list(MODEL_FEATURES))
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        proba = np.asarray(pipeline.predict_proba(X))[:, classes.index(POSITIVE_LABEL)]
    if proba.shape != (len(model_matrix),) or not np.all((proba >= 0) & (proba <= 1)):
        raise NotServable("predict_proba returned invalid probabilities")
    return proba


def parity_gap(fast: FastModel, probe: np.ndarray, expected: np.ndarray) -> float:
    """Largest ``|fast - expected|`` over single rows, one partial block, several and all."""
    singles = np.concatenate([fast.raw_proba(probe[i : i + 1]) for i in range(8)])
    return max(
        float(np.max(np.abs(singles - expected[:8]))),
        float(np.max(np.abs(fast.raw_proba(probe[:100]) - expected[:100]))),
        float(np.max(np.abs(fast.raw_proba(probe[:300]) - expected[:300]))),
        float(np.max(np.abs(fast.raw_proba(probe) - expected))),
    )


def export(pipeline: Any) -> bytes:
    """The servable file of a fitted pipeline.

    Raises:
        NotServable: when the pipeline cannot be compiled or the result disagrees with
            ``predict_proba`` on the probe.
    """
    probe = probe_matrix()
    try:
        expected = pipeline_proba(pipeline, probe)
    except NotServable:
        raise
    except Exception as exc:
        raise NotServable(f"predict_proba fails on valid input: {exc}") from exc
    fast = compile_pipeline(pipeline, len(MODEL_FEATURES))
    if fast is None:
        steps = [type(step).__name__ for _, step in getattr(pipeline, "steps", [])]
        raise NotServable(
            f"no compiled form for {' -> '.join(steps) or type(pipeline).__name__}: the "
            "service serves "
            "ColumnTransformer(StandardScaler/passthrough) + GradientBoosting, "
            "HistGradientBoosting, RandomForest/ExtraTrees or LogisticRegression"
        )
    gap = parity_gap(fast, probe, expected)
    if not gap <= PARITY_TOLERANCE:
        raise NotServable(f"{fast.name} differs from predict_proba by {gap:g}")
    buffer = io.BytesIO()
    np.savez(
        buffer,
        format=np.array(FORMAT),
        features=np.array(MODEL_FEATURES),
        **{"probe.rows": probe, "probe.proba": expected},
        **fast.to_arrays(),
    )
    return buffer.getvalue()


def load(data: bytes) -> FastModel:
    """Read a servable file and replay its probe.

    Raises:
        NotServable: when the file is malformed, is for other features, or the evaluator
            does not reproduce the stored probabilities.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError) as exc:
        raise NotServable(f"not a servable file: {exc}") from exc
    found = arrays.get("format")
    if found is None or found.shape != () or int(found) != FORMAT:
        raise NotServable(f"format {found}, this code reads format {FORMAT}")
    features = [str(f) for f in arrays.get("features", [])]
    if features != list(MODEL_FEATURES):
        raise NotServable(f"compiled for features {features}, the service sends {MODEL_FEATURES}")
    try:
        fast = FastModel.from_arrays(arrays, len(MODEL_FEATURES))
        probe, expected = arrays["probe.rows"], arrays["probe.proba"]
    except (ValueError, KeyError) as exc:
        raise NotServable(str(exc)) from exc
    if probe.shape != (PROBE_ROWS, len(MODEL_FEATURES)) or expected.shape != (PROBE_ROWS,):
        raise NotServable("the probe has the wrong shape")
    gap = parity_gap(fast, np.asarray(probe, dtype=np.float64), expected)
    if not gap <= PARITY_TOLERANCE:
        raise NotServable(f"{fast.name} differs from the stored predict_proba by {gap:g}")
    return fast
