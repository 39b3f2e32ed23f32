"""What is saved next to a model: metadata fields and the drift reference files."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from reggaeton import profiles
from reggaeton.decision import decide
from reggaeton.schema import FEATURES_BY_NAME, LABEL_COLUMN

LIBRARIES = (
    "scikit-learn",
    "imbalanced-learn",
    "numpy",
    "pandas",
    "scipy",
    "joblib",
    "bentoml",
    "whylogs",
    "mlflow",
)


def git_commit(cwd: str | Path | None = None) -> str:
    """``git rev-parse HEAD`` of the working tree; else ``GIT_COMMIT`` from the environment
    (an image has no ``.git``: set it at build or deploy time); else ``"unknown"``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        if out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("GIT_COMMIT", "").strip() or "unknown"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a pipeline depends on, plus Python's."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def schema_columns(frame: pd.DataFrame) -> list[str]:
    """Schema features present in ``frame``, in schema order."""
    return [name for name in FEATURES_BY_NAME if name in frame.columns]


def training_ranges(frame: pd.DataFrame) -> dict[str, list[float]]:
    """``{feature: [min, max]}`` over the training rows, for every schema feature present."""
    return {
        name: [float(frame[name].min()), float(frame[name].max())]
        for name in schema_columns(frame)
        if frame[name].notna().any()
    }


def reference_sample(frame: pd.DataFrame, proba: Any, threshold: float) -> pd.DataFrame:
    """Training rows (schema features + label) with the served (calibrated) probability and the
    prediction at the stored threshold: the monitor compares live traffic with these columns."""
    sample = frame[[*schema_columns(frame), LABEL_COLUMN]].reset_index(drop=True).copy()
    sample["probability"] = proba
    sample["prediction"] = decide(sample["probability"].to_numpy(), threshold)
    return sample


def reference_files(sample: pd.DataFrame) -> dict[str, bytes]:
    """``profile.bin`` (whylogs profile of features, probability, prediction) + ``sample.csv``."""
    profiled = sample.drop(columns=[LABEL_COLUMN])
    view = profiles.profile_frame(profiled)
    return {
        "profile.bin": profiles.serialize(view),
        "sample.csv": sample.to_csv(index=False).encode(),
    }
