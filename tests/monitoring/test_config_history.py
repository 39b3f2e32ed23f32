"""Window resolution; merging stored run profiles; the MongoDB backend."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitoring.history import (
    merged_profile,
    merged_stored_profile,
    new_run_id,
    run_started,
    stored_profiles,
)
from monitoring.monitor import run
from monitoring.simulate import simulate
from monitoring.window import resolve_window
from reggaeton import profiles
from reggaeton.records.factory import open_store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_resolve_window() -> None:
    prev = NOW - timedelta(hours=2)
    assert resolve_window(None, NOW, None, prev, 24) == (prev, NOW)
    assert resolve_window(None, NOW, None, NOW - timedelta(days=3), 24)[0] == NOW - timedelta(
        hours=24
    )
    assert resolve_window(None, NOW, None, NOW, 24) == (NOW, NOW)  # nothing new
    assert resolve_window(None, NOW, timedelta(days=7), prev, 24)[0] == NOW - timedelta(days=7)
    with pytest.raises(ValueError, match="since"):
        resolve_window(NOW, NOW - timedelta(hours=1), None, None, 24)


@pytest.mark.integration
def test_runs_on_mongodb_backend_and_profiles_merge(registry, config, repo_root) -> None:
    store = open_store("mongomock://monitor-test/reggaeton")
    for hour in (3, 1):  # two windows, two runs
        end = NOW - timedelta(hours=hour - 1)
        simulate(
            store,
            registry,
            n=600,
            seed=hour,
            start=end - timedelta(hours=1),
            end=end,
            feedback=0.5,
            data_dir=repo_root / "data",
        )
        summary = run(
            config, store, registry, now=end, until=end, window=timedelta(hours=1), progress=None
        )
        assert summary["status"] == "ok" and summary["window"]["rows"] == 600
        assert summary["n_labelled"] > 200 and summary["performance_metrics"]["f1"] > 0
    assert len(store.monitoring_runs()) == 2
    assert len(stored_profiles(config.state_dir)) == 2
    week = merged_profile(config.state_dir, since=NOW - timedelta(days=7))
    assert profiles.row_count(week, "tempo") == 1200
    with pytest.raises(ValueError, match="no stored profile"):
        merged_profile(config.state_dir, since=NOW + timedelta(days=1))
    # The same from the store alone (a CronJob's files are gone with its pod).
    shutil.rmtree(config.state_dir)
    from_store = merged_stored_profile(store, since=NOW - timedelta(days=7))
    assert profiles.row_count(from_store, "tempo") == 1200
    reports = list(store.run_artifacts("report.html"))
    assert len(reports) == 2
    assert reports[-1][2].decode() == Path(summary["report_html"]).read_text()
    assert summary["stored_artifacts"] == ["profile.bin", "report.html", "drift_counts.npz"]
    # The second run's long window adds the first run's stored drift counts (MongoDB too).
    assert summary["long_window"]["runs"] == 2 and summary["long_window"]["rows"] == 1200
    with pytest.raises(ValueError, match="no stored profile"):
        merged_stored_profile(store, since=NOW + timedelta(days=1))


def test_a_run_id_starts_with_its_utc_start_time() -> None:
    started = datetime(2026, 3, 1, 13, 30, 5, tzinfo=timezone(timedelta(hours=1)))
    run_id = new_run_id(started)
    assert run_id.startswith("20260301T123005Z-") and run_id != new_run_id(started)
    assert run_started(run_id) == started
    with pytest.raises(ValueError):
        run_started("not-a-run")
