"""Load, validate, clean and split the training data.

``data_reggaeton.csv`` rows get label 1 (reggaeton), ``data_todotipo.csv`` rows label 0;
``data_test.csv`` is unlabelled and only checked. Every problem raises :class:`DataError`
naming the file and the column, which the CLI prints before exiting non-zero.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from reggaeton.schema import (
    FEATURES,
    FEATURES_BY_NAME,
    LABEL_COLUMN,
    NEGATIVE_LABEL,
    POSITIVE_LABEL,
    label_name,
)


class DataError(ValueError):
    """The data cannot be used. ``file`` and ``column`` say where (either may be None)."""

    def __init__(self, file: str | Path | None, column: str | None, problem: str) -> None:
        self.file = str(file) if file is not None else None
        self.column = column
        where = self.file or "data"
        if column:
            where += f": column {column!r}"
        super().__init__(f"{where}: {problem}")


@dataclass
class CleaningReport:
    """How many rows cleaning removed."""

    rows_in: int
    dropped_missing: int
    dropped_duplicates: int
    rows_out: int


@dataclass
class Dataset:
    """Everything a training run needs from the data side."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    cleaning: CleaningReport
    data_sha256: str
    files_sha256: dict[str, str]
    feedback_eval: pd.DataFrame | None = None
    rows: dict[str, Any] = field(default_factory=dict)


def read_source(path: str | Path, features: list[str], label: int | None) -> pd.DataFrame:
    """Read one CSV, check its columns and types, and attach ``label`` (unless None).

    Raises:
        DataError: unreadable file, missing column, non-numeric or out-of-range values.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except FileNotFoundError as exc:
        raise DataError(path, None, "file not found") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, None, f"unreadable CSV ({type(exc).__name__}: {exc})") from exc
    raw = raw.loc[:, [c for c in raw.columns if not str(c).startswith("Unnamed:")]]
    for name in features:
        if name not in raw.columns:
            raise DataError(path, name, "missing column")
    keep = [f.name for f in FEATURES if f.name in raw.columns]
    frame = pd.DataFrame({name: _numeric(path, name, raw[name]) for name in keep})
    for name in keep:
        _check_range(path, name, frame[name])
    if label is not None:
        frame[LABEL_COLUMN] = np.int64(label)
    return frame


def _numeric(path: Path, name: str, column: pd.Series) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            path, name, f"wrong type: expected numbers, line {row + 2} has {column.iloc[row]!r}"
        )
    return values.astype("float64")


def _check_range(path: Path, name: str, values: pd.Series) -> None:
    feature = FEATURES_BY_NAME[name]
    problems = values.dropna().map(feature.check).dropna()
    if len(problems):
        row = int(values.index.get_loc(problems.index[0]))
        raise DataError(
            path,
            name,
            f"{len(problems)} value(s) out of range, e.g. line "
            f"{row + 2}: {values.iloc[row]!r} {problems.iloc[0]}",
        )


def clean(frame: pd.DataFrame, features: list[str]) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop rows with a missing model feature or label, then exact duplicate rows.

    Duplicates are judged on every schema feature present plus the label (identifiers and
    the CSV index are not part of a song's content).
    """
    rows_in = len(frame)
    needed = [*features, LABEL_COLUMN] if LABEL_COLUMN in frame else list(features)
    complete = frame.dropna(subset=needed)
    content = [c for c in complete.columns if c in FEATURES_BY_NAME or c == LABEL_COLUMN]
    unique = complete.drop_duplicates(subset=content)
    report = CleaningReport(
        rows_in, rows_in - len(complete), len(complete) - len(unique), len(unique)
    )
    return unique.reset_index(drop=True), report


def frame_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's canonical CSV form (column order and values)."""
    return hashlib.sha256(frame.to_csv(index=False, float_format="%.17g").encode()).hexdigest()


def load_labelled(
    reggaeton_csv: str | Path, other_csv: str | Path, features: list[str]
) -> tuple[pd.DataFrame, CleaningReport]:
    """Read both labelled files, clean them, and check both classes are present.

    Raises:
        DataError: see :func:`read_source`; also when a class has no usable rows.
    """
    sources = {POSITIVE_LABEL: Path(reggaeton_csv), NEGATIVE_LABEL: Path(other_csv)}
    frames = [read_source(path, features, label) for label, path in sources.items()]
    combined = pd.concat(frames, ignore_index=True)
    cleaned, report = clean(combined, features)
    for label, path in sources.items():
        if not (cleaned[LABEL_COLUMN] == label).any():
            raise DataError(
                path,
                None,
                f"empty class: no usable {label_name(label)} rows (after dropping missing values)",
            )
    return cleaned, report


def split_holdout(
    frame: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded stratified hold-out split (train, hold-out)."""
    train, holdout = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[LABEL_COLUMN]
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def feedback_frame(export: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Labelled production rows from a prediction-log export, oldest first.

    Returns:
        Columns ``features`` + ``label`` + ``timestamp``; rows without feedback or with a
        missing feature are left out.
    """
    if export.empty or "feedback_label" not in export:
        return pd.DataFrame(columns=[*features, LABEL_COLUMN, "timestamp"])
    rows = export[export["feedback_label"].notna()]
    missing = [f for f in features if f not in rows.columns]
    if missing:
        raise DataError("prediction log", missing[0], "missing column in feedback export")
    rows = rows.dropna(subset=features)
    out = rows[features].astype("float64").copy()
    out[LABEL_COLUMN] = rows["feedback_label"].astype("int64")
    out["timestamp"] = rows["timestamp"]
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


def load_feedback(uri: str | None, days: int, features: list[str]) -> pd.DataFrame:
    """Labelled production rows of the last ``days`` days from the prediction log at ``uri``."""
    from reggaeton.records import open_store
    from reggaeton.timeutil import utcnow

    store = open_store(uri)
    try:
        export = store.export(since=utcnow() - timedelta(days=days))
    finally:
        store.close()
    return feedback_frame(export, features)


def split_feedback(
    feedback: pd.DataFrame, eval_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split feedback by time: older rows for training, the newest share for the gate."""
    n_eval = int(round(len(feedback) * eval_fraction))
    cut = len(feedback) - n_eval
    return feedback.iloc[:cut].reset_index(drop=True), feedback.iloc[cut:].reset_index(drop=True)


def rows_in(frame: pd.DataFrame, other: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Boolean mask of ``frame``'s rows whose ``features`` values all equal a row of ``other``
    (e.g. production feedback rows that are hold-out songs)."""
    if frame.empty or other.empty:
        return np.zeros(len(frame), dtype=bool)
    known = set(other[features].itertuples(index=False, name=None))
    return np.fromiter(
        (row in known for row in frame[features].itertuples(index=False, name=None)),
        dtype=bool,
        count=len(frame),
    )


def class_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per class name, e.g. ``{"reggaeton": 56, "other": 1716}``."""
    counts = frame[LABEL_COLUMN].value_counts()
    return {label_name(k): int(counts.get(k, 0)) for k in (POSITIVE_LABEL, NEGATIVE_LABEL)}
