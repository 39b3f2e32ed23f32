"""Pure inference: validated song matrix -> probabilities -> labels, for one model version.

A :class:`Predictor` is built once per model version (:func:`load_predictor`) and never mutated,
so swapping the serving version is one reference assignment. Preprocessing lives inside the
model artifact; this module only orders the columns (``MODEL_FEATURES``) and calls it, either
through the generic ``pipeline.predict_proba`` or through the fast path of
:mod:`service.fastpath` when the pipeline's structure is supported and the fast path agrees
with ``predict_proba`` on a probe set. Either way the raw score then goes through the version's
calibration map (:mod:`reggaeton.calibration`) and the one decision rule
(:func:`reggaeton.decision.decide`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reggaeton.calibration import apply_calibration
from reggaeton.decision import decide
from reggaeton.registry import ModelLoadError, ModelVersion, Registry
from reggaeton.schema import FEATURES_BY_NAME, MODEL_FEATURES, POSITIVE_LABEL, label_name
from service.fastpath import EVALUATORS, FastModel, compile_pipeline
from service.validation import MODEL_INDEX

logger = logging.getLogger(__name__)
PROBE_ROWS = 1000
"""Random in-bounds rows on which a new version (and its fast path) is checked before serving
(more than one :data:`service.fasttrees.BLOCK_ROWS` block, so the batch walk's block
boundaries are covered)."""
PATH_NAMES = (*EVALUATORS, "pipeline")
"""Every value of :attr:`Predictor.path_name` (``inference_path`` of ``GET /model``)."""
PARITY_TOLERANCE = 1e-12
"""Largest difference in raw probability between the fast path and ``predict_proba``."""


@dataclass(frozen=True)
class Predictor:
    """One loaded model version, ready to score.

    Attributes:
        version: The registry version (tag, metadata, folder).
        pipeline: The fitted scikit-learn pipeline.
        fast: The compiled fast path, or None when the generic path is used.
        positive_column: Column of ``predict_proba`` that holds class 1.
    """

    version: ModelVersion
    pipeline: Any
    fast: FastModel | None
    positive_column: int
    labels: tuple[str, str] = field(default=(label_name(0), label_name(1)))

    @property
    def tag(self) -> str:
        """Full tag of the version (``reggaeton_clf:...``)."""
        return self.version.tag

    @property
    def threshold(self) -> float:
        """Decision threshold stored with the version: reggaeton when probability >= it."""
        return self.version.threshold

    @property
    def path_name(self) -> str:
        """Which evaluator serves, e.g. ``"trees:gbm"`` or ``"pipeline"`` (``GET /model``)."""
        return self.fast.name if self.fast is not None else "pipeline"

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The version's calibration map (None: raw scores are served)."""
        return self.version.metadata.get("calibration")

    def raw_proba(self, model_matrix: np.ndarray) -> np.ndarray:
        """Uncalibrated ``predict_proba[:, 1]`` for rows whose columns are ``MODEL_FEATURES``."""
        if self.fast is not None:
            return self.fast.raw_proba(model_matrix)
        return generic_proba(self.pipeline, model_matrix, self.positive_column)

    def predict_proba(self, model_matrix: np.ndarray) -> np.ndarray:
        """Calibrated probability of reggaeton for rows whose columns are ``MODEL_FEATURES``."""
        return apply_calibration(self.raw_proba(model_matrix), self.calibration)

    def predict(self, validated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score a validated matrix (columns of :data:`service.validation.COLUMNS`).

        Returns:
            ``(probabilities, labels)`` with labels 1 (reggaeton) or 0 (other).
        """
        proba = self.predict_proba(validated[:, MODEL_INDEX])
        return proba, decide(proba, self.threshold)


def generic_proba(pipeline: Any, model_matrix: np.ndarray, positive_column: int) -> np.ndarray:
    """``pipeline.predict_proba`` without per-call validation (the inputs are validated)."""
    import sklearn

    X: Any = model_matrix
    if hasattr(pipeline, "feature_names_in_"):  # fitted on a DataFrame: keep the names
        import pandas as pd

        X = pd.DataFrame(model_matrix, columns=list(MODEL_FEATURES))
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        return np.asarray(pipeline.predict_proba(X))[:, positive_column]


def probe_matrix(rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Random rows within the schema's physical bounds, columns ``MODEL_FEATURES``."""
    rng = np.random.default_rng(seed)
    low = np.array([FEATURES_BY_NAME[n].minimum for n in MODEL_FEATURES], dtype=float)
    high = np.array([FEATURES_BY_NAME[n].maximum for n in MODEL_FEATURES], dtype=float)
    return low + rng.random((rows, len(MODEL_FEATURES))) * (high - low)


def build_predictor(version: ModelVersion, pipeline: Any, allow_fast: bool = True) -> Predictor:
    """Check a loaded pipeline and wrap it, compiling the fast path when it is supported.

    Raises:
        ModelLoadError: when the version is incompatible (features, classes, output).
    """
    features = version.metadata.get("features")
    if features is not None and list(features) != list(MODEL_FEATURES):
        raise ModelLoadError(
            f"{version.tag}: trained on features {features}, "
            f"the service sends {list(MODEL_FEATURES)}"
        )
    classes = [int(c) for c in getattr(pipeline, "classes_", [0, 1])]
    if sorted(classes) != [0, 1]:
        raise ModelLoadError(f"{version.tag}: expected classes [0, 1], got {classes}")
    positive = classes.index(POSITIVE_LABEL)
    probe = probe_matrix()
    try:
        reference = generic_proba(pipeline, probe, positive)
    except Exception as exc:
        raise ModelLoadError(f"{version.tag}: predict_proba fails on valid input: {exc}") from exc
    if reference.shape != (len(probe),) or not np.all((reference >= 0) & (reference <= 1)):
        raise ModelLoadError(f"{version.tag}: predict_proba returned invalid probabilities")
    try:
        apply_calibration(reference, version.metadata.get("calibration"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{version.tag}: unusable calibration: {exc}") from exc
    fast = _checked_fast_path(version, pipeline, probe, reference) if allow_fast else None
    return Predictor(version=version, pipeline=pipeline, fast=fast, positive_column=positive)


def _checked_fast_path(
    version: ModelVersion, pipeline: Any, probe: np.ndarray, reference: np.ndarray
) -> FastModel | None:
    """The fast path when it compiles and equals ``predict_proba`` on the probe rows.

    Single rows, one partial block, several blocks and the whole probe are compared, so
    every block boundary of the batch walk is crossed.
    """
    try:
        fast = compile_pipeline(pipeline, len(MODEL_FEATURES))
        if fast is None:
            return None
        singles = np.concatenate([fast.raw_proba(probe[i : i + 1]) for i in range(8)])
        worst = max(
            float(np.max(np.abs(singles - reference[:8]))),
            float(np.max(np.abs(fast.raw_proba(probe[:100]) - reference[:100]))),
            float(np.max(np.abs(fast.raw_proba(probe[:300]) - reference[:300]))),
            float(np.max(np.abs(fast.raw_proba(probe) - reference))),
        )
    except Exception:  # an unexpected structure must never stop the version from serving
        logger.warning("%s: fast path failed; using the generic path", version.tag, exc_info=True)
        return None
    if not worst <= PARITY_TOLERANCE:
        logger.warning(
            "%s: fast path (%s) differs from predict_proba by %g; using the generic path",
            version.tag,
            fast.name,
            worst,
        )
        return None
    return fast


def load_predictor(
    registry: Registry, tag: str | None = None, allow_fast: bool = True
) -> Predictor:
    """Load, verify and wrap a version (the pinned/promoted one when ``tag`` is None).

    Raises:
        ModelLoadError: when the version is missing, corrupted or incompatible.
    """
    version = registry.serving_version(tag)
    pipeline = registry.load_pipeline(version)
    return build_predictor(version, pipeline, allow_fast=allow_fast)


def result_rows(
    predictor: Predictor, proba: np.ndarray, labels: np.ndarray, request_ids: list[str]
) -> list[dict[str, Any]]:
    """The JSON results, one per song, in the original response shape."""
    names = predictor.labels
    tag = predictor.tag
    return [
        {
            "prediction": [float(lab)],
            "label": names[lab],
            "probability": p,
            "model_version": tag,
            "request_id": rid,
        }
        for p, lab, rid in zip(proba.tolist(), labels.tolist(), request_ids, strict=True)
    ]
