"""End to end against real SQLite logs written by the simulator and a trained model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitoring import job
from monitoring.monitor import run
from monitoring.simulate import simulate
from reggaeton import profiles
from reggaeton.records.base import PredictionRecord
from reggaeton.schema import FEATURES

pytestmark = pytest.mark.integration
SEEDS = range(6)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # as in conftest.py


def _run(config, store, registry, **kw):
    return run(
        config, store, registry, now=NOW, until=NOW, window=timedelta(hours=24), progress=None, **kw
    )


def test_no_alert_on_training_distribution_false_alarm_rate(make_log, registry, config) -> None:
    statuses, min_p = [], []
    for seed in SEEDS:
        store, _ = make_log(n=2000, seed=seed, feedback=0.3)
        summary = _run(config, store, registry)
        statuses.append(summary["status"])
        feats = summary["serving"]["data_drift"]["features"]
        assert len(feats) == len(FEATURES)  # key, mode and time_signature included
        min_p.append(min(f["pvalue"] for f in feats.values()))
        assert summary["drifted_features"] == []
        assert summary["prediction_drift_status"] == "ok", summary["reasons"]
    alarms = sum(s == "alert" for s in statuses)
    uncorrected = sum(p < config.drift.threshold for p in min_p)
    print(
        f"\nfalse-alarm rate over {len(statuses)} seeds: {alarms}/{len(statuses)} "
        f"(Bonferroni, default); without correction {uncorrected}/{len(statuses)}; "
        f"statuses {statuses}; smallest raw p per run {[round(p, 3) for p in min_p]}"
    )
    assert alarms == 0


def test_alert_names_exactly_the_drifted_features(make_log, registry, config) -> None:
    store, _ = make_log(n=2000, seed=11, drift=("tempo=+20", "loudness=*1.2"))
    summary = _run(config, store, registry)
    assert summary["status"] == "alert"
    assert sorted(summary["drifted_features"]) == ["loudness", "tempo"]
    assert "data drift in loudness, tempo" in summary["reasons"]
    feats = summary["serving"]["data_drift"]["features"]
    assert feats["tempo"]["test"] == "ks" and feats["key"]["test"] == "chi2"
    # Louder, faster songs look less like reggaeton: the model's outputs move too.
    pred = summary["serving"]["prediction_drift"]
    assert pred["positive_rate"]["category"] == "drift" and pred["status"] == "warning"
    assert pred["probability"]["pvalue"] < 0.01
    assert any(r.startswith("prediction drift in") for r in summary["reasons"])
    # Stored: summary in the store and reports/, profile under state/profiles
    assert store.monitoring_runs(1)[0]["run_id"] == summary["run_id"]
    assert json.loads(Path(summary["report_json"]).read_text())["status"] == "alert"
    view = profiles.deserialize(Path(summary["profile_path"]).read_bytes())
    assert profiles.row_count(view, "tempo") == 2000


def test_categorical_drift_detected_by_chi_square(make_log, registry, config) -> None:
    store, _ = make_log(n=2000, seed=12, drift=("mode=*0",))
    summary = _run(config, store, registry)
    assert summary["drifted_features"] == ["mode"]
    assert summary["serving"]["data_drift"]["features"]["mode"]["test"] == "chi2"


def test_performance_alert_when_feedback_shows_a_drop(make_log, registry, config) -> None:
    store, _ = make_log(n=2000, seed=13, feedback=0.6, flip=0.3)
    summary = _run(config, store, registry)
    perf = summary["serving"]["performance"]
    assert summary["drifted_features"] == []
    assert perf["status"] == "alert" and summary["status"] == "alert"
    assert perf["n_labelled"] > 500 and perf["metrics"]["confusion_matrix"]
    assert any("below the model's" in r for r in summary["reasons"])


def test_late_feedback_counts_in_the_window_it_arrives(
    make_log, registry, config, repo_root
) -> None:
    """Predictions of two days ago, labelled (badly) during today's window: today's run
    judges performance on them; their inputs do not enter today's drift tests."""
    store, _ = make_log(n=300, seed=18, name="late.db")  # today's unlabelled traffic
    old = simulate(
        store,
        registry,
        n=2000,
        seed=19,
        feedback=0.6,
        flip=0.3,
        start=NOW - timedelta(hours=50),
        end=NOW - timedelta(hours=48),
        feedback_at=NOW - timedelta(hours=1),
        data_dir=repo_root / "data",
    )
    summary = _run(config, store, registry)
    perf = summary["serving"]["performance"]
    assert perf["late_labelled"] == perf["n_labelled"] == old["feedback"] > 500
    assert perf["status"] == "alert" and summary["status"] == "alert"
    assert summary["serving"]["rows"] == 300 and summary["window"]["rows"] == 300
    config.performance.late_feedback_days = 0  # off: those labels are never seen
    off = _run(config, store, registry)
    assert off["serving"]["performance"]["status"] == "insufficient_data"
    config.performance.late_feedback_days = 1  # predictions older than the look-back: ignored
    assert _run(config, store, registry)["serving"]["performance"]["n_labelled"] == 0


def test_insufficient_data_below_minimum_sample(make_log, registry, config, capsys) -> None:
    store, _ = make_log(n=40, seed=14, feedback=1.0, name="small.db")
    summary = _run(config, store, registry)
    assert summary["status"] == "insufficient_data"
    assert summary["serving"]["data_drift"]["reason"].startswith("insufficient data")
    assert summary["serving"]["performance"]["status"] == "insufficient_data"
    # The CLI reports it with exit code 3 and prints where the report is.
    code = job.main(
        [
            "--store",
            f"sqlite:///{store.path}",
            "--home",
            str(registry.home),
            "--until",
            NOW.isoformat(),
            "--window",
            "24h",
            "--quiet",
            "--reports-dir",
            config.reports_dir,
        ]
    )
    out = capsys.readouterr().out
    assert code == 3 and "report: " in out and "status: insufficient_data" in out


def test_cli_exit_codes_and_window_since_previous_run(make_log, registry, config) -> None:
    store, _ = make_log(n=1000, seed=15, drift=("energy=*0.5",), name="cli.db")
    args = [
        "--store",
        f"sqlite:///{store.path}",
        "--home",
        str(registry.home),
        "--quiet",
        "--reports-dir",
        config.reports_dir,
        "--until",
        NOW.isoformat(),
    ]
    assert job.main(args) == 2
    # The next run starts where the previous one ended: nothing new -> insufficient data.
    assert job.main(args) == 3
    assert job.main([*args, "--exit-zero", "--window", "24h"]) == 0
    assert job.main([*args, "--exit-codes", "zero", "--window", "24h"]) == 0
    assert job.main([*args, "--exit-codes", "alerts", "--window", "24h"]) == 2  # the drift
    assert job.main([*args, "--exit-codes", "alerts"]) == 0  # insufficient data: not a failure
    assert job.main(["--store", "nosuch://x", "--quiet", "--exit-codes", "zero"]) == 4
    assert job.main(["--store", "nosuch://x", "--quiet"]) == 4
    with pytest.raises(SystemExit) as bad:  # bad flags are errors (4), never "alert" (2)
        job.main([*args, "--window", "soon"])
    assert bad.value.code == 4


@pytest.mark.parametrize(
    ("policy", "codes"),
    [
        ("statuses", {"ok": 0, "warning": 1, "alert": 2, "insufficient_data": 3}),
        ("alerts", {"ok": 0, "warning": 0, "alert": 2, "insufficient_data": 0}),
        ("zero", {"ok": 0, "warning": 0, "alert": 0, "insufficient_data": 0}),
    ],
)
def test_exit_code_policies(policy, codes) -> None:
    assert {status: job.exit_code(status, policy) for status in job.EXIT_CODES} == codes


def test_other_versions_reported_separately(make_log, registry, config) -> None:
    store, _ = make_log(n=500, seed=16, name="versions.db")
    store.write_many(
        [
            PredictionRecord(
                f"old-{i}",
                "reggaeton_clf:retired",
                {"tempo": 100.0},
                0.2,
                0,
                timestamp=NOW - timedelta(minutes=5),
            )
            for i in range(30)
        ]
    )
    summary = _run(config, store, registry)
    other = summary["other_versions"]["reggaeton_clf:retired"]
    assert other["rows"] == 30 and "no reference" in other["reasons"][0]
    assert summary["serving"]["rows"] == 500


def test_html_report_contains_every_feature(make_log, registry, config) -> None:
    store, _ = make_log(n=1500, seed=17, drift=("tempo=+20",), feedback=0.5)
    _run(config, store, registry)  # a previous run, for the history chart
    summary = _run(config, store, registry)
    html = Path(summary["report_html"]).read_text()
    for feature in FEATURES:
        assert f'id="feature-{feature.name}"' in html, feature.name
    assert html.count("<svg") >= len(FEATURES) + 3  # features, p-values, probability, history
    for needle in (
        "ALERT",
        "data drift in tempo",
        "Performance on labelled records",
        "Data quality",
        "confusion matrix",
        "Over the last runs",
    ):
        assert needle in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
