"""Pure inference: validated song matrix -> probabilities -> labels, for one model version.

A :class:`Predictor` is built once per model version (:func:`load_predictor`) and never mutated,
so swapping the serving version is one reference assignment. The model is the version's
servable file (:mod:`reggaeton.servable`): the compiled evaluator of :mod:`reggaeton.fastpath`
as plain arrays, checked against the pipeline's own ``predict_proba`` when it was saved and
again when it is loaded. No pickle is loaded here. This module only orders the columns
(``MODEL_FEATURES``) and calls it; the raw score then goes through the version's calibration
map (:mod:`reggaeton.calibration`) and the one decision rule (:func:`reggaeton.decision.decide`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reggaeton.calibration import apply_calibration
from reggaeton.decision import decide
from reggaeton.fastpath import FastModel
from reggaeton.registry import ModelLoadError, ModelVersion, Registry
from reggaeton.schema import MODEL_FEATURES, label_name
from reggaeton.servable import probe_matrix
from service.validation import MODEL_INDEX


@dataclass(frozen=True)
class Predictor:
    """One loaded model version, ready to score.

    Attributes:
        version: The registry version (tag, metadata, folder).
        model: The version's compiled evaluator.
    """

    version: ModelVersion
    model: FastModel
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
        """Which evaluator serves, e.g. ``"trees:hgb"`` (``GET /model``)."""
        return self.model.name

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The version's calibration map (None: raw scores are served)."""
        return self.version.metadata.get("calibration")

    def raw_proba(self, model_matrix: np.ndarray) -> np.ndarray:
        """Uncalibrated ``predict_proba[:, 1]`` for rows whose columns are ``MODEL_FEATURES``."""
        return self.model.raw_proba(model_matrix)

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


def build_predictor(version: ModelVersion, model: FastModel) -> Predictor:
    """Check a version's metadata against the service and wrap its evaluator.

    Raises:
        ModelLoadError: when the version is incompatible (features, calibration).
    """
    features = version.metadata.get("features")
    if features is not None and list(features) != list(MODEL_FEATURES):
        raise ModelLoadError(
            f"{version.tag}: trained on features {features}, "
            f"the service sends {list(MODEL_FEATURES)}"
        )
    try:
        apply_calibration(model.raw_proba(probe_matrix(8)), version.metadata.get("calibration"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{version.tag}: unusable calibration: {exc}") from exc
    return Predictor(version=version, model=model)


def load_predictor(registry: Registry, tag: str | None = None) -> Predictor:
    """Load, verify and wrap a version (the pinned/promoted one when ``tag`` is None).

    Raises:
        ModelLoadError: when the version is missing, corrupted or incompatible.
    """
    version = registry.serving_version(tag)
    return build_predictor(version, registry.load_servable(version))


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
