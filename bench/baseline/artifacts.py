"""Build the naive baseline's files: two pickled scalers and a pickled GBM.

The original app kept ``scaler_loudness.pkl`` and ``scaler_tempo.pkl`` next to the model and
unpickled both on every request. This module recreates that layout from the seed data so the
benchmark can reproduce the original per-request work with the same estimator as ours.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.preprocessing import StandardScaler

from reggaeton.schema import LABEL_COLUMN, MODEL_FEATURES

SCALED_COLUMNS = ("loudness", "tempo")
MODEL_FILE = "model.pkl"
POSITIVE_CSV = "data_reggaeton.csv"
NEGATIVE_CSV = "data_todotipo.csv"


def scaler_file(column: str) -> str:
    """File name of the pickled scaler for ``column`` (``scaler_loudness.pkl``, ...)."""
    return f"scaler_{column}.pkl"


@dataclass(frozen=True)
class BaselineArtifacts:
    """Where the baseline's pickles live."""

    folder: Path

    @property
    def model_path(self) -> Path:
        """The pickled estimator."""
        return self.folder / MODEL_FILE

    def scaler_path(self, column: str) -> Path:
        """The pickled scaler of one column."""
        return self.folder / scaler_file(column)

    def exists(self) -> bool:
        """True when the model and both scalers are present."""
        return self.model_path.is_file() and all(
            self.scaler_path(c).is_file() for c in SCALED_COLUMNS
        )


def load_training_frame(data_dir: Path) -> pd.DataFrame:
    """Seed rows with a label: reggaeton CSV -> 1, the all-genres CSV -> 0."""
    positive = pd.read_csv(data_dir / POSITIVE_CSV, index_col=0).assign(**{LABEL_COLUMN: 1})
    negative = pd.read_csv(data_dir / NEGATIVE_CSV, index_col=0).assign(**{LABEL_COLUMN: 0})
    frame = pd.concat([positive, negative], ignore_index=True)
    return frame.dropna(subset=[*MODEL_FEATURES]).reset_index(drop=True)


def build(data_dir: Path, folder: Path, estimator: Any | None = None) -> BaselineArtifacts:
    """Fit the two scalers and the estimator the original way and pickle them into ``folder``.

    Args:
        data_dir: Folder with the seed CSVs.
        folder: Output folder (created).
        estimator: Unfitted estimator to train (cloned); defaults to a 300-tree GBM. The
            benchmark passes the final step of the served pipeline so both sides run the
            same kind and size of model.

    Returns:
        The artifact locations.
    """
    folder.mkdir(parents=True, exist_ok=True)
    frame = load_training_frame(data_dir)
    X = frame[list(MODEL_FEATURES)].astype(float).copy()
    for column in SCALED_COLUMNS:
        scaler = StandardScaler().fit(X[[column]])
        X[column] = scaler.transform(X[[column]])
        with open(folder / scaler_file(column), "wb") as fh:
            pickle.dump(scaler, fh)
    model = (
        clone(estimator)
        if estimator is not None
        else GradientBoostingClassifier(n_estimators=300, random_state=0)
    )
    model.fit(X, np.asarray(frame[LABEL_COLUMN], dtype=int))
    with open(folder / MODEL_FILE, "wb") as fh:
        pickle.dump(model, fh)
    return BaselineArtifacts(folder)


def load_model(arts: BaselineArtifacts) -> Any:
    """Unpickle the estimator (the original did this once, at import)."""
    with open(arts.model_path, "rb") as fh:
        return pickle.load(fh)


def naive_predict(arts: BaselineArtifacts, model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The original per-request work on a DataFrame: unpickle both scalers, scale, predict.

    Returns:
        Positive-class probabilities, one per row.
    """
    frame = frame[list(MODEL_FEATURES)].copy()
    for column in SCALED_COLUMNS:
        with open(arts.scaler_path(column), "rb") as fh:  # from disk, on every call
            scaler = pickle.load(fh)
        frame[column] = scaler.transform(frame[[column]])
    return model.predict_proba(frame)[:, 1]


def expected_probabilities(folder: Path, frame: pd.DataFrame) -> np.ndarray:
    """What the baseline app must answer for ``frame`` (used to check its answers)."""
    arts = BaselineArtifacts(folder)
    return naive_predict(arts, load_model(arts), frame)
