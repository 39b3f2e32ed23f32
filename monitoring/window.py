"""Read a window of the prediction log in chunks and fold it into small accumulators.

One pass over the window, whatever its size: each chunk updates, per model version, the
drift accumulators built from that version's reference, the quality counts and the labelled
records, and is profiled with whylogs; chunk profiles are merged. Memory is bounded by the
chunk size plus the reference samples (plus 17 bytes per labelled record).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO

import numpy as np
import pandas as pd

from monitoring import drift
from monitoring.quality import QualityAccumulator
from monitoring.reference import Reference
from reggaeton import profiles
from reggaeton.records.base import RecordStore
from reggaeton.schema import CATEGORICAL_FEATURES, FEATURES
from reggaeton.timeutil import as_utc, utcnow

PROFILE_COLUMNS = tuple(f.name for f in FEATURES) + ("probability", "prediction")


def resolve_window(
    since: datetime | None,
    until: datetime | None,
    window: timedelta | None,
    previous_until: datetime | None,
    max_hours: float,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The ``[since, until)`` window of a run.

    Explicit ``since`` wins; else ``until - window``; else the end of the previous run,
    but never more than ``max_hours`` back (first run: the last ``max_hours``).
    """
    until = as_utc(until) if until else (now or utcnow())
    if since is not None:
        start = as_utc(since)
    elif window is not None:
        start = until - window
    else:
        start = until - timedelta(hours=max_hours)
        if previous_until is not None:
            start = max(start, as_utc(previous_until))
    if since is None and window is None and start >= until:
        return until, until  # nothing new since the previous run: an empty window
    if start >= until:
        raise ValueError(
            f"window: since ({start.isoformat()}) must be before until ({until.isoformat()})"
        )
    return start, until


@dataclass
class VersionScan:
    """What one model version's records of the window amount to."""

    tag: str
    reference: Reference | None
    rows: int = 0
    numeric: dict[str, drift.EcdfAccumulator] = field(default_factory=dict)
    categorical: dict[str, dict[int, int]] = field(default_factory=dict)
    probability: drift.EcdfAccumulator | None = None
    positives: int = 0
    quality: QualityAccumulator | None = None
    labelled: list[np.ndarray] = field(default_factory=list)
    late_labelled: int = 0

    def __post_init__(self) -> None:
        ref = self.reference
        if ref is None:
            return
        self.numeric = {
            n: drift.EcdfAccumulator(ref.sample[n].to_numpy(dtype=float)) for n in ref.numeric
        }
        self.categorical = {n: {} for n in ref.categorical}
        if ref.probabilities is not None:
            self.probability = drift.EcdfAccumulator(ref.probabilities)
        self.quality = QualityAccumulator([f.name for f in FEATURES], ref.training_ranges)

    def update(self, chunk: pd.DataFrame) -> None:
        """Fold one chunk (records of this version only) into the accumulators."""
        self.rows += len(chunk)
        prediction = _floats(chunk["prediction"])
        self.positives += int(np.nansum(prediction == 1))
        if self.reference is None:
            return
        for name, acc in self.numeric.items():
            if name in chunk:
                acc.update(_floats(chunk[name]))
        for name, counts in self.categorical.items():
            if name in chunk:
                drift.add_counts(counts, drift.count_values(_floats(chunk[name])))
        probability = _floats(chunk["probability"])
        if self.probability is not None:
            self.probability.update(probability)
        self.quality.update(chunk)
        self._add_labelled(chunk, prediction, probability)

    def add_late_labels(self, chunk: pd.DataFrame) -> None:
        """Labelled records predicted before the window whose feedback came during it: they
        count for performance only (their inputs belong to an earlier window's drift)."""
        self.late_labelled += self._add_labelled(
            chunk, _floats(chunk["prediction"]), _floats(chunk["probability"])
        )

    def _add_labelled(
        self, chunk: pd.DataFrame, prediction: np.ndarray, probability: np.ndarray
    ) -> int:
        label = _floats(chunk["feedback_label"])
        has = ~np.isnan(label)
        if has.any():
            self.labelled.append(np.column_stack([label[has], prediction[has], probability[has]]))
        return int(has.sum())

    def labels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(labels, predictions, probabilities)`` of the labelled records."""
        if not self.labelled:
            empty = np.empty(0)
            return empty, empty, empty
        stacked = np.concatenate(self.labelled)
        return stacked[:, 0], stacked[:, 1], stacked[:, 2]


@dataclass
class WindowScan:
    """The whole window: per-version scans and one merged whylogs profile."""

    since: datetime
    until: datetime
    versions: dict[str, VersionScan] = field(default_factory=dict)
    profile: Any = None
    rows: int = 0
    chunks: int = 0
    seconds: float = 0.0


def scan_window(
    store: RecordStore,
    since: datetime,
    until: datetime,
    reference_for: Callable[[str], Reference | None],
    chunk_size: int = 50_000,
    progress: TextIO | None = sys.stderr,
    profile: bool = True,
) -> WindowScan:
    """Stream ``[since, until)`` of the log once.

    Args:
        store: The prediction log.
        since / until: Window bounds (UTC).
        reference_for: Version tag -> its reference (None when the version is unknown).
        chunk_size: Records per chunk.
        progress: Where progress lines go (None = silent).
        profile: Build the whylogs profile of the window.
    """
    start = time.perf_counter()
    total = store.count(since, until)
    scan = WindowScan(since=since, until=until)
    if progress:
        print(
            f"monitor: reading {total:,} records from {since.isoformat()} to {until.isoformat()}",
            file=progress,
            flush=True,
        )
    views = []
    for chunk in store.iter_window(since, until, chunk_size=chunk_size):
        scan.chunks += 1
        scan.rows += len(chunk)
        for tag, part in chunk.groupby("model_version", sort=False):
            if tag not in scan.versions:
                scan.versions[tag] = VersionScan(str(tag), reference_for(str(tag)))
            scan.versions[tag].update(part)
        if profile:
            cols = [c for c in PROFILE_COLUMNS if c in chunk]
            views.append(profiles.profile_frame(_profile_frame(chunk[cols])))
            if len(views) >= 8:
                views = [profiles.merge(views)]
        if progress:
            pct = 100.0 * scan.rows / total if total else 100.0
            print(
                f"monitor: {scan.rows:,}/{total:,} records ({pct:.0f}%) "
                f"{time.perf_counter() - start:.1f}s",
                file=progress,
                flush=True,
            )
    scan.profile = profiles.merge(views) if views else None
    scan.seconds = time.perf_counter() - start
    return scan


def add_late_feedback(
    scan: WindowScan,
    store: RecordStore,
    days: float,
    reference_for: Callable[[str], Reference | None],
    chunk_size: int = 50_000,
) -> int:
    """Fold into ``scan`` the predictions of the ``days`` before its window whose feedback
    arrived during the window (see ``performance.late_feedback_days``). Returns how many."""
    if days <= 0:
        return 0
    total = 0
    for chunk in store.iter_late_feedback(
        scan.since, scan.until, scan.since - timedelta(days=days), scan.since, chunk_size=chunk_size
    ):
        total += len(chunk)
        for tag, part in chunk.groupby("model_version", sort=False):
            if tag not in scan.versions:
                scan.versions[tag] = VersionScan(str(tag), reference_for(str(tag)))
            scan.versions[tag].add_late_labels(part)
    return total


def _floats(column: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing values, whatever the backend's dtype."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _profile_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical features as integers (whylogs keeps frequent items for them)."""
    out = frame.copy()
    for name in CATEGORICAL_FEATURES:
        if name in out:
            out[name] = pd.to_numeric(out[name], errors="coerce").astype("Int64")
    out["prediction"] = pd.to_numeric(out["prediction"], errors="coerce").astype("Int64")
    return out
