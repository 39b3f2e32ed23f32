"""Data quality of the window: missing and invalid values, values outside the training range."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from monitoring.config import QualityConfig
from reggaeton.schema import FEATURES_BY_NAME


@dataclass
class QualityAccumulator:
    """Counts per feature, updated chunk by chunk.

    Attributes:
        features: Features checked.
        training_ranges: Feature -> ``[min, max]`` seen at training (model metadata).
        rows: Records seen.
        missing / invalid / out_of_range: Feature -> count.
    """

    features: Sequence[str]
    training_ranges: Mapping[str, Sequence[float]]
    rows: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)

    def update(self, chunk: pd.DataFrame) -> None:
        """Add one chunk of the prediction log."""
        n = len(chunk)
        self.rows += n
        for name in self.features:
            if name not in chunk:
                self.missing[name] = self.missing.get(name, 0) + n
                continue
            v = pd.to_numeric(chunk[name], errors="coerce").to_numpy(dtype=float)
            present = ~np.isnan(v)
            self.missing[name] = self.missing.get(name, 0) + int((~present).sum())
            invalid = int(FEATURES_BY_NAME[name].invalid(v[present]).sum())
            self.invalid[name] = self.invalid.get(name, 0) + invalid
            rng = self.training_ranges.get(name)
            if rng is not None and len(rng) == 2:
                vals = v[present]
                outside = (vals < float(rng[0])) | (vals > float(rng[1]))
                self.out_of_range[name] = self.out_of_range.get(name, 0) + int(outside.sum())


def assess_quality(
    acc: QualityAccumulator, config: QualityConfig, optional: Sequence[str] = ()
) -> dict[str, Any]:
    """Summarise the counts and decide ``ok`` or ``warning`` (quality never alerts alone).

    Args:
        acc: Filled accumulator.
        config: Fractions above which a feature is flagged.
        optional: Features allowed to be missing (not flagged for missingness).
    """
    rows = max(acc.rows, 1)
    per_feature: dict[str, dict[str, Any]] = {}
    flagged: list[str] = []
    for name in acc.features:
        item = {
            "missing": acc.missing.get(name, 0),
            "invalid": acc.invalid.get(name, 0),
            "out_of_training_range": acc.out_of_range.get(name, 0),
        }
        item["missing_fraction"] = item["missing"] / rows
        item["out_of_range_fraction"] = item["out_of_training_range"] / rows
        problems = []
        if name not in optional and item["missing_fraction"] > config.max_missing:
            problems.append(f"{item['missing_fraction']:.1%} missing")
        if item["invalid"] / rows > config.max_invalid:
            problems.append(f"{item['invalid']} invalid")
        if item["out_of_range_fraction"] > config.max_out_of_range:
            problems.append(f"{item['out_of_range_fraction']:.1%} outside the training range")
        item["problems"] = problems
        if problems:
            flagged.append(f"{name}: {', '.join(problems)}")
        per_feature[name] = item
    return {
        "status": "warning" if flagged else "ok",
        "rows": acc.rows,
        "features": per_feature,
        "flagged": flagged,
    }
