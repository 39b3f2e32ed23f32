"""Fixtures of the monitoring tests: simulated SQLite prediction logs and a fast config."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitoring.config import MonitoringConfig
from monitoring.simulate import parse_drift, simulate
from reggaeton.records.sqlite import SQLiteStore
from reggaeton.registry import Registry

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""Fixed 'now': every simulated window ends here, every monitor run looks back from it."""


@pytest.fixture(scope="session")
def registry(trained_home: Path) -> Registry:
    """The session's trained model store (read-only)."""
    return Registry(trained_home)


@pytest.fixture
def config(tmp_path: Path) -> MonitoringConfig:
    """Default thresholds; reports and state in a temporary folder."""
    return MonitoringConfig(
        reports_dir=str(tmp_path / "reports"), state_dir=str(tmp_path / "state")
    )


@pytest.fixture
def make_log(
    tmp_path: Path, registry: Registry, repo_root: Path
) -> Callable[..., tuple[SQLiteStore, dict[str, Any]]]:
    """Write simulated traffic into a fresh SQLite log; returns (store, simulate() result)."""
    stores: list[SQLiteStore] = []

    def make(
        n: int = 2000,
        seed: int = 0,
        drift: tuple[str, ...] = (),
        feedback: float = 0.0,
        flip: float = 0.0,
        name: str | None = None,
    ) -> tuple[SQLiteStore, dict[str, Any]]:
        store = SQLiteStore(tmp_path / (name or f"log-{seed}-{len(stores)}.db"))
        stores.append(store)
        out = simulate(
            store,
            registry,
            n=n,
            seed=seed,
            drifts=[parse_drift(d) for d in drift],
            feedback=feedback,
            flip=flip,
            start=NOW - timedelta(hours=2),
            end=NOW,
            data_dir=repo_root / "data",
        )
        return store, out

    yield make
    for store in stores:
        store.close()
