"""The drift reference saved with a model version (training sample, profile, metadata)."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from monitoring import drift
from reggaeton import profiles
from reggaeton.registry import ModelLoadError, ModelVersion, Registry
from reggaeton.schema import FEATURES

SAMPLE_FILE = "sample.csv"
PROFILE_FILE = "profile.bin"


@dataclass
class Reference:
    """A version's reference data.

    Attributes:
        tag: Version tag.
        sample: Training rows (features, ``label``, ``probability``, ``prediction``).
        metadata: The version's ``metadata.json``.
        profile: whylogs profile of the training frame (None when absent).
        numeric / categorical: Features present in the sample, by test type.
    """

    tag: str
    sample: pd.DataFrame
    metadata: dict[str, Any]
    profile: Any = None
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)

    @property
    def probabilities(self) -> np.ndarray | None:
        """Predicted probabilities of the reference rows (None when not stored)."""
        if "probability" not in self.sample:
            return None
        p = self.sample["probability"].to_numpy(dtype=float)
        return p[np.isfinite(p)] if np.isfinite(p).any() else None

    @property
    def positive_rate(self) -> tuple[int, int] | None:
        """``(positives, n)`` of the reference predictions."""
        if "prediction" not in self.sample:
            return None
        pred = self.sample["prediction"].dropna().to_numpy(dtype=float)
        return (int((pred == 1).sum()), int(pred.size)) if pred.size else None

    @property
    def training_ranges(self) -> dict[str, list[float]]:
        """Feature -> ``[min, max]`` at training (metadata, else the sample)."""
        ranges = dict(self.metadata.get("training_ranges") or {})
        for name in self.numeric + self.categorical:
            if name not in ranges:
                col = self.sample[name].dropna()
                ranges[name] = [float(col.min()), float(col.max())]
        return ranges

    def category_counts(self, name: str) -> dict[int, int]:
        """Counts of each category of a categorical feature in the sample."""
        return drift.count_values(self.sample[name].to_numpy(dtype=float))


def from_version(version: ModelVersion) -> Reference:
    """Load the reference of a version.

    Raises:
        ModelLoadError: when ``reference/sample.csv`` is missing or unreadable.
    """
    path = version.reference_path(SAMPLE_FILE)
    try:
        sample = pd.read_csv(io.BytesIO(path.read_bytes()))
    except Exception as exc:
        raise ModelLoadError(f"{version.tag}: cannot read reference {path}: {exc}") from exc
    profile = None
    profile_path = version.reference_path(PROFILE_FILE)
    if profile_path.exists():
        profile = profiles.deserialize(profile_path.read_bytes())
    numeric, categorical = [], []
    for feature in FEATURES:
        if feature.name in sample and sample[feature.name].notna().sum() > 0:
            (categorical if feature.categorical else numeric).append(feature.name)
    return Reference(
        tag=version.tag,
        sample=sample,
        metadata=version.metadata,
        profile=profile,
        numeric=numeric,
        categorical=categorical,
    )


def reference_loader(registry: Registry) -> Callable[[str], Reference | None]:
    """A cached ``tag -> Reference | None`` lookup (None: version or reference not found)."""

    @functools.cache
    def load(tag: str) -> Reference | None:
        try:
            return from_version(registry.get(tag))
        except ModelLoadError:
            return None

    return load
