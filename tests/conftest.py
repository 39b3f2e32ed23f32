"""Session fixtures shared by every test area.

``trained_home`` trains ONE small model (fast config, default pipeline structure) into a
temporary BentoML home once per session; ``mlflow_uri`` is a temporary SQLite tracking URI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FAST_OVERRIDES = ["model.params.n_estimators=40", "cv.folds=3"]
"""The original configuration (``configs/original.yaml``: ColumnTransformer(StandardScaler) +
GBM + SMOTE), made fast: 40 trees, 3 folds. Tests name it because ``default.yaml`` is whatever
``make experiment`` last found best."""

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")


def pytest_configure(config: pytest.Config) -> None:
    """Let ``open_store("mongomock://name/db")`` open an in-memory MongoDB in every test."""
    from mongomock_store import register

    register()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (data/ lives there)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def fast_overrides() -> list[str]:
    """The ``--set`` overrides the ``trained_home`` model was trained with."""
    return list(FAST_OVERRIDES)


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a BENTOML_HOME holding one promoted ``reggaeton_clf`` version.

    Trained on data/ with the default config except 40 trees and 3 CV folds (same pipeline
    structure, SMOTE, threshold chosen on out-of-fold predictions). No MLflow logging.
    Treat it as read-only: copy it (``shutil.copytree``) before promoting or saving.
    """
    from reggaeton.registry import Registry
    from training.config import ORIGINAL_CONFIG, load_config
    from training.train import run_training

    home = tmp_path_factory.mktemp("bentoml_home")
    config = load_config(ORIGINAL_CONFIG, FAST_OVERRIDES)
    result = run_training(config, Registry(home), tracking_uri=None, root=REPO_ROOT)
    assert result.promoted, result.decision.reason
    return home


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A temporary SQLite MLflow tracking URI (artifacts land next to it)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
