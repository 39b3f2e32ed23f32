"""Typed training configuration: a pydantic model tree loaded from YAML, with ``--set`` overrides.

``load_config()`` reads ``training/configs/default.yaml``; ``--config FILE`` replaces it and
``--set model.params.n_estimators=1`` overrides single values (dotted paths; values are
parsed as YAML, so ``1`` is an int, ``null`` is None and ``[a, b]`` a list). Validation is
pydantic's, in strict mode: a YAML value of the wrong type (``cv.folds=three``,
``data.reggaeton_csv=5``) is refused with the key named instead of failing later in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reggaeton.schema import MODEL_FEATURES
from reggaeton.settings import ConfigError, read_yaml, set_dotted, validate

__all__ = ["ConfigError", "TrainConfig", "apply_override", "from_dict", "load_config", "load_raw"]

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"
ORIGINAL_CONFIG = Path(__file__).parent / "configs" / "original.yaml"
"""The original GBM+SMOTE configuration, kept for the record and as the experiment's baseline."""
Estimator = Literal["gbm", "hgb", "rf", "logreg"]
Imbalance = Literal["smote", "class_weight", "none"]
ThresholdStrategy = Literal["f1", "fbeta", "fixed"]
CalibrationMethod = Literal["isotonic", "sigmoid"]
ESTIMATORS = get_args(Estimator)


class _Section(BaseModel):
    """Common model settings: unknown keys are errors, YAML values are taken as they are."""

    model_config = ConfigDict(extra="forbid", strict=True)


class DataConfig(_Section):
    """Where the data is. The model's inputs are ``reggaeton.schema.MODEL_FEATURES``: the service
    sends exactly those columns, so a version trained on others could not be served."""

    reggaeton_csv: str = "data/data_reggaeton.csv"
    other_csv: str = "data/data_todotipo.csv"
    unlabelled_csv: str | None = "data/data_test.csv"
    feedback_days: int = Field(90, ge=1, le=3650)
    feedback_eval_fraction: float = Field(0.3, ge=0.0, le=0.9)


class ModelConfig(_Section):
    """Estimator, its parameters and the columns the preprocessing scales."""

    estimator: Estimator = "gbm"
    scale: list[str] = ["loudness", "tempo"]
    params: dict[str, Any] = {}


class ImbalanceConfig(_Section):
    """How the minority class (reggaeton) is handled while fitting."""

    strategy: Imbalance = "smote"
    k_neighbors: int = Field(5, ge=1, le=50)


class SplitConfig(_Section):
    """The stratified hold-out split."""

    test_size: float = Field(0.2, ge=0.05, le=0.5)


class CVConfig(_Section):
    """Stratified k-fold cross-validation on the training part."""

    folds: int = Field(5, ge=2, le=20)


class ThresholdConfig(_Section):
    """How the decision threshold is chosen from out-of-fold predictions."""

    strategy: ThresholdStrategy = "f1"
    beta: float = Field(1.0, ge=0.01, le=100)
    value: float = Field(0.5, ge=0.0, le=1.0)


class GateConfig(_Section):
    """Promotion gate tolerances."""

    f1_tolerance: float = Field(0.0, ge=0.0, le=1.0)
    pr_auc_tolerance: float = Field(0.0, ge=0.0, le=1.0)
    min_feedback_rows: int = Field(20, ge=1, le=10**7)


class CalibrationConfig(_Section):
    """How raw scores become the served probability (fitted on out-of-fold scores)."""

    method: CalibrationMethod = "sigmoid"


class ProtocolConfig(_Section):
    """The evaluation protocol of ``make experiment`` (see :mod:`training.protocol`)."""

    repeats: int = Field(5, ge=1, le=50)
    folds: int = Field(5, ge=2, le=20)
    inner_folds: int = Field(3, ge=2, le=20)


class SearchConfig(_Section):
    """The Optuna search of ``make experiment`` (see :mod:`training.search`)."""

    budget_seconds: float = Field(180.0, gt=0)
    max_trials: int = Field(1000, ge=1)
    outer_folds: int = Field(5, ge=2, le=20)
    inner_folds: int = Field(3, ge=2, le=20)
    n_jobs: int = Field(2, ge=1, le=64)


class TrainConfig(_Section):
    """The whole training configuration."""

    seed: int = Field(42, ge=0, le=2**32 - 1)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    imbalance: ImbalanceConfig = ImbalanceConfig()
    split: SplitConfig = SplitConfig()
    cv: CVConfig = CVConfig()
    threshold: ThresholdConfig = ThresholdConfig()
    gate: GateConfig = GateConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    search: SearchConfig = SearchConfig()

    @model_validator(mode="after")
    def _scaled_columns_are_inputs(self) -> TrainConfig:
        """``model.scale`` may only name model inputs: the scaler would find no such column."""
        for name in self.model.scale:
            if name not in MODEL_FEATURES:
                raise ValueError(f"model.scale: {name!r} is not one of MODEL_FEATURES")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML friendly), e.g. for metadata and MLflow params."""
        return self.model_dump()


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a config file and apply ``key=value`` overrides.

    Args:
        path: YAML file; None means ``training/configs/default.yaml``.
        overrides: ``dotted.key=value`` strings, applied in order.

    Raises:
        ConfigError: unreadable file, unknown key, wrong type or invalid value.
    """
    raw = load_raw(path)
    for item in overrides or []:
        apply_override(raw, item)
    return from_dict(raw)


def load_raw(path: str | Path | None = None) -> dict[str, Any]:
    """The YAML mapping of a config file (default file when ``path`` is None).

    Raises:
        ConfigError: unreadable file or not a mapping.
    """
    return read_yaml(path or DEFAULT_CONFIG)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``dotted.key=value`` in a raw config mapping, in place (:func:`from_dict` validates)."""
    set_dotted(raw, item)


def from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a plain mapping.

    Raises:
        ConfigError: naming each offending key and its problem.
    """
    return validate(TrainConfig, raw)
