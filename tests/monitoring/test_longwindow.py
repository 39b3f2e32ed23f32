"""The long window (issue 14, slow drift): exact merged counts, one correction family for both
windows, the runs it takes, and a fast version of bench/slow_drift_bench.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.slow_drift_bench import population, trial
from monitoring.assess import assess_drift
from monitoring.config import MonitoringConfig, load_config
from monitoring.longwindow import decode_counts, encode_counts, merge
from monitoring.monitor import run
from monitoring.reference import Reference
from monitoring.simulate import parse_drift, simulate
from monitoring.window import VersionScan, WindowScan

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _scans(rng, n_windows=3, size=400):
    draw = population()
    ref_frame = draw(rng, 1000).drop(columns=["prediction", "probability", "feedback_label"])
    ref = Reference("sim", ref_frame, {}, numeric=["loudness", "tempo"], categorical=["key"])
    frames = [draw(rng, size, shift=0.3) for _ in range(n_windows)]
    scans = []
    for frame in frames:
        vs = VersionScan("sim", ref)
        vs.update(frame)
        scans.append(vs)
    return ref, frames, scans


def _stored(vs, k):
    since = NOW + timedelta(hours=k)
    return (
        f"run{k}",
        decode_counts(
            encode_counts(WindowScan(since, since + timedelta(hours=1), versions={"sim": vs}))
        ),
    )


def test_merged_counts_are_the_concatenated_window_exactly() -> None:
    ref, frames, scans = _scans(np.random.default_rng(1))
    previous = [_stored(scans[1], 1), _stored(scans[0], 0)]  # newest first
    lw = merge(scans[2], NOW + timedelta(hours=3), NOW + timedelta(hours=2), previous)
    assert (lw.runs, lw.rows, lw.run_ids, lw.since) == (3, 1200, ["run1", "run0"], NOW)
    allv = pd.concat(frames, ignore_index=True)
    for name in ("loudness", "tempo"):
        acc = lw.numeric[name]
        expected = stats.ks_2samp(ref.sample[name], allv[name])
        from monitoring import drift

        got = drift.ks_test(acc)
        assert got["n_window"] == 1200
        assert got["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
        assert got["pvalue"] == pytest.approx(expected.pvalue, rel=1e-6)
        assert scans[2].numeric[name].n == 400  # the current window is left untouched
    assert lw.categorical["key"] == allv["key"].value_counts().astype(int).to_dict()


def test_both_windows_share_one_bonferroni_family() -> None:
    ref, _, scans = _scans(np.random.default_rng(2))
    config = MonitoringConfig()
    alone = assess_drift(scans[2], config)
    lw = merge(
        scans[2],
        NOW + timedelta(hours=3),
        NOW + timedelta(hours=2),
        [_stored(scans[1], 1), _stored(scans[0], 0)],
    )
    both = assess_drift(scans[2], config, lw)
    assert (alone["tests"], both["tests"], alone["long_window"]) == (3, 6, None)
    for name, res in both["features"].items():
        assert res["p_adjusted"] == pytest.approx(min(1.0, 6 * res["pvalue"]))
        assert alone["features"][name]["p_adjusted"] == pytest.approx(min(1.0, 3 * res["pvalue"]))
    for res in both["long_window"]["features"].values():
        assert res["p_adjusted"] == pytest.approx(min(1.0, 6 * res["pvalue"]))
        assert res["n_window"] in (1200, sum(lw.categorical["key"].values()))


def test_counts_of_another_reference_are_not_added() -> None:
    _, _, scans = _scans(np.random.default_rng(3))
    _, _, other = _scans(np.random.default_rng(4))
    lw = merge(scans[1], NOW + timedelta(hours=2), NOW + timedelta(hours=1), [_stored(other[0], 0)])
    assert lw is None  # nothing merged: the long window would be the current one


def test_slow_shift_caught_by_the_long_window_not_by_one_window() -> None:
    """A fast cut of bench/slow_drift_bench.py (independent draws, 8 trials): loudness +0.5 dB
    in 8 windows of 600 songs; the run's long window (4,800 songs) finds it far more often than
    today's rule (about 95% vs 45% over 20 trials), and other features stay (almost) quiet."""
    draw, rng, config = population(), np.random.default_rng(14), MonitoringConfig()
    results = [trial(draw, rng, runs=8, window=600, shift=0.5, config=config) for _ in range(8)]
    short = sum("loudness" in r["short_only"] for r in results)
    long = sum("loudness" in r["long"] for r in results)
    assert long >= 7 and long >= short + 2, (short, long)
    assert sum(bool((r["long"] | r["short"]) - {"loudness"}) for r in results) <= 1


def test_monitor_runs_merge_the_previous_non_overlapping_runs(registry, config, repo_root) -> None:
    from reggaeton.records.sqlite import SQLiteStore

    store = SQLiteStore(f"{config.state_dir}-log.db")
    shift = [parse_drift("loudness=+1")]
    for k in range(5):
        end = NOW - timedelta(hours=4 - k)
        simulate(
            store,
            registry,
            n=400,
            seed=30 + k,
            drifts=shift,
            start=end - timedelta(hours=1),
            end=end,
            data_dir=repo_root / "data",
        )
        summary = run(
            config, store, registry, now=end, until=end, window=timedelta(hours=1), progress=None
        )
        lw = summary["long_window"]
        assert lw["enabled"] and lw["runs"] == min(k + 1, 4)
    drift = summary["serving"]["data_drift"]
    assert lw["rows"] == 1600 and lw["since"] == (NOW - timedelta(hours=4)).isoformat()
    assert drift["tests"] == 2 * len(drift["features"])
    long_p = drift["long_window"]["features"]["loudness"]["p_adjusted"]
    assert long_p < drift["features"]["loudness"]["p_adjusted"]
    assert "loudness" in lw["drifted"] and summary["status"] == "alert"
    assert any("slow drift over the last 4 runs" in r for r in summary["reasons"])
    html = Path(summary["report_html"]).read_text()
    assert html.count('id="long-window"') == 1 and "1,600 records" in html
    # A re-run over a day overlaps every earlier window: nothing to merge, no double counting.
    again = run(
        config, store, registry, now=NOW, until=NOW, window=timedelta(hours=24), progress=None
    )
    assert again["long_window"]["runs"] == 1 and "not tested" in again["long_window"]["note"]
    config.drift.long_window_runs = 0
    off = run(config, store, registry, now=NOW, until=NOW, window=timedelta(hours=1), progress=None)
    assert off["long_window"]["enabled"] is False
    assert off["serving"]["data_drift"]["tests"] == len(off["serving"]["data_drift"]["features"])
    store.close()


def test_long_window_config(tmp_path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("drift: {long_window_runs: 8}\n")
    assert load_config(path, {}).drift.long_window_runs == 8
    assert MonitoringConfig().drift.long_window_runs == 4
    path.write_text("drift: {long_window_runs: -1}\n")
    with pytest.raises(ValueError, match="drift.long_window_runs"):
        load_config(path, {})
