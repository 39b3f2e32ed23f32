"""Typed training configuration: dataclasses loaded from YAML, overridable with ``key=value``.

``load_config()`` reads ``training/configs/default.yaml``; ``--config FILE`` replaces it and
``--set model.params.n_estimators=1`` overrides single values (dotted paths; values are
parsed as YAML, so ``1`` is an int, ``null`` is None and ``[a, b]`` a list).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reggaeton.schema import FEATURES_BY_NAME, MODEL_FEATURES

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"
ESTIMATORS = ("gbm", "hgb", "rf", "logreg")
IMBALANCE = ("smote", "class_weight", "none")
THRESHOLDS = ("f1", "fbeta", "fixed")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


@dataclass
class DataConfig:
    """Where the data is and which columns the model uses."""

    reggaeton_csv: str = "data/data_reggaeton.csv"
    other_csv: str = "data/data_todotipo.csv"
    unlabelled_csv: str | None = "data/data_test.csv"
    features: list[str] | None = None
    feedback_days: int = 90
    feedback_eval_fraction: float = 0.3

    @property
    def feature_list(self) -> list[str]:
        """The model's input columns, in order (``MODEL_FEATURES`` unless configured)."""
        return list(self.features) if self.features else list(MODEL_FEATURES)


@dataclass
class ModelConfig:
    """Estimator, its parameters and the columns the preprocessing scales."""

    estimator: str = "gbm"
    scale: list[str] = field(default_factory=lambda: ["loudness", "tempo"])
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImbalanceConfig:
    """How the minority class (reggaeton) is handled while fitting."""

    strategy: str = "smote"
    k_neighbors: int = 5


@dataclass
class SplitConfig:
    """The stratified hold-out split."""

    test_size: float = 0.2


@dataclass
class CVConfig:
    """Stratified k-fold cross-validation on the training part."""

    folds: int = 5


@dataclass
class ThresholdConfig:
    """How the decision threshold is chosen from out-of-fold predictions."""

    strategy: str = "f1"
    beta: float = 1.0
    value: float = 0.5


@dataclass
class GateConfig:
    """Promotion gate tolerances."""

    f1_tolerance: float = 0.0
    pr_auc_tolerance: float = 0.0
    min_feedback_rows: int = 20


@dataclass
class TrainConfig:
    """The whole training configuration."""

    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    imbalance: ImbalanceConfig = field(default_factory=ImbalanceConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    gate: GateConfig = field(default_factory=GateConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML friendly), e.g. for metadata and MLflow params."""
        return dataclasses.asdict(self)


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
    file = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {file}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config {file}: top level must be a mapping")
    return raw


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``dotted.key=value`` in a raw config mapping (in place)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. cv.folds=3")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: cannot parse value: {exc}") from exc
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a plain mapping."""
    config = _build(TrainConfig, copy.deepcopy(raw), "")
    validate(config)
    return config


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]} "
                          f"(known under {prefix.rstrip('.') or 'top level'}: {', '.join(fields)})")
    kwargs = {}
    for name, value in raw.items():
        sub = _SECTIONS.get(name) if not prefix else None
        if sub is None:
            _check_type(f"{prefix}{name}", value, str(fields[name].type))
        kwargs[name] = _build(sub, value, f"{name}.") if sub else value
    return cls(**kwargs)


_TYPE_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true/false",
               "None": "null", "list[str]": "a list of strings", "dict[str, Any]": "a mapping"}


def _check_type(key: str, value: Any, annotation: str) -> None:
    """Refuse a value that does not fit the field's annotation (``str | None``, ``list[str]``,
    ...), naming the key: a typo in YAML or ``--set`` must not surface as a traceback later."""
    kinds = [k.strip() for k in annotation.split("|")]
    for kind in kinds:
        if ((kind == "None" and value is None)
                or (kind == "str" and isinstance(value, str))
                or (kind == "bool" and isinstance(value, bool))
                or (kind == "int" and isinstance(value, int) and not isinstance(value, bool))
                or (kind == "float" and isinstance(value, int | float)
                    and not isinstance(value, bool))
                or (kind == "list[str]" and isinstance(value, list)
                    and all(isinstance(v, str) for v in value))
                or (kind.startswith("dict") and isinstance(value, dict))):
            return
    wanted = " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    raise ConfigError(f"{key} must be {wanted}, got {value!r}")


_SECTIONS: dict[str, type] = {
    "data": DataConfig, "model": ModelConfig, "imbalance": ImbalanceConfig,
    "split": SplitConfig, "cv": CVConfig, "threshold": ThresholdConfig, "gate": GateConfig,
}


def _check_number(key: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        raise ConfigError(f"{key} must be {'an integer' if integer else 'a number'} "
                          f"in [{low:g}, {high:g}], got {value!r}")


def validate(config: TrainConfig) -> None:
    """Check choices, ranges and column names.

    Raises:
        ConfigError: naming the offending key.
    """
    if config.model.estimator not in ESTIMATORS:
        raise ConfigError(f"model.estimator must be one of {ESTIMATORS}, "
                          f"got {config.model.estimator!r}")
    if config.imbalance.strategy not in IMBALANCE:
        raise ConfigError(f"imbalance.strategy must be one of {IMBALANCE}, "
                          f"got {config.imbalance.strategy!r}")
    if config.threshold.strategy not in THRESHOLDS:
        raise ConfigError(f"threshold.strategy must be one of {THRESHOLDS}, "
                          f"got {config.threshold.strategy!r}")
    if not isinstance(config.model.params, dict):
        raise ConfigError("model.params must be a mapping")
    _check_number("seed", config.seed, 0, 2**32 - 1, integer=True)
    _check_number("cv.folds", config.cv.folds, 2, 20, integer=True)
    _check_number("split.test_size", config.split.test_size, 0.05, 0.5)
    _check_number("threshold.value", config.threshold.value, 0.0, 1.0)
    _check_number("threshold.beta", config.threshold.beta, 0.01, 100)
    _check_number("imbalance.k_neighbors", config.imbalance.k_neighbors, 1, 50, integer=True)
    _check_number("gate.f1_tolerance", config.gate.f1_tolerance, 0.0, 1.0)
    _check_number("gate.pr_auc_tolerance", config.gate.pr_auc_tolerance, 0.0, 1.0)
    _check_number("data.feedback_eval_fraction", config.data.feedback_eval_fraction, 0.0, 0.9)
    _check_number("data.feedback_days", config.data.feedback_days, 1, 3650, integer=True)
    _check_number("gate.min_feedback_rows", config.gate.min_feedback_rows, 1, 10**7,
                  integer=True)
    features = config.data.feature_list
    for name in features:
        if name not in FEATURES_BY_NAME:
            raise ConfigError(f"data.features: unknown feature {name!r}")
    if len(set(features)) != len(features):
        raise ConfigError("data.features: duplicated feature")
    for name in config.model.scale:
        if name not in features:
            raise ConfigError(f"model.scale: {name!r} is not one of data.features")
