"""``make experiment`` end to end on a small copy of the data, with a tiny search budget."""

from __future__ import annotations

import re

import pytest

from training import experiment
from training.config import load_config
from training.leaderboard import EXPERIMENT

TINY = [
    "search.max_trials=2",
    "search.outer_folds=2",
    "search.inner_folds=2",
    "search.budget_seconds=30",
    "search.n_jobs=1",
    "protocol.repeats=2",
    "protocol.folds=2",
    "protocol.inner_folds=2",
    "model.params.n_estimators=5",
]


@pytest.fixture
def run_experiment(tiny_data, tmp_path, monkeypatch, repo_root):
    monkeypatch.chdir(repo_root)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "home"))
    sets = [a for item in [*tiny_data, *TINY] for a in ("--set", item)]

    def run(*extra: str) -> int:
        return experiment.main(
            [
                *sets,
                "--out",
                str(tmp_path / "out"),
                "--default-config",
                str(tmp_path / "default.yaml"),
                *extra,
            ]
        )

    return run, tmp_path, uri


def test_experiment_prints_a_leaderboard_with_intervals_and_logs_it(run_experiment, capsys):
    from mlflow.tracking import MlflowClient

    run, tmp_path, uri = run_experiment
    assert run() == 0
    out = capsys.readouterr().out
    assert "hold-out excluded" in out and "| F1 | PR-AUC | Brier | ECE |" in out
    assert re.search(r"\| original \| gbm/smote .*\| \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \|", out)
    assert "| winner |" in out and "search (nested)" in out and "| difference |" in out
    assert (tmp_path / "out/leaderboard.md").read_text().strip() in out
    winner = load_config(tmp_path / "out/winner.yaml")  # a loadable, servable training config
    assert winner.model.estimator in ("gbm", "hgb", "rf", "logreg")
    # the winner replaces the default exactly when the decision says it beats the original
    beats = "Decision: winner beats the original" in out
    assert (tmp_path / "default.yaml").exists() == beats
    assert ("make train ARGS=" in out) and "Registry" not in out
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert {"original", "winner", "leaderboard"} <= set(runs)
    original = runs["original"]
    assert {"cv_f1_mean", "cv_f1_low", "cv_f1_high", "cv_ece_mean", "cv_brier_raw_mean"} <= set(
        original.data.metrics
    )
    assert original.data.metrics["cv_f1_low"] <= original.data.metrics["cv_f1_mean"]
    artifacts = {a.path for a in client.list_artifacts(original.info.run_id)}
    assert "reliability.png" in artifacts
    assert "leaderboard.md" in {
        a.path for a in client.list_artifacts(runs["leaderboard"].info.run_id)
    }


def test_promote_trains_the_winner_through_the_gate_only_if_it_beats_the_original(
    run_experiment, capsys
):
    run, tmp_path, _ = run_experiment
    assert run("--promote") == 0
    out = capsys.readouterr().out
    if "Decision: winner beats the original" in out:
        assert "gate: PROMOTED" in out  # an empty store: the first version is promoted
        assert (tmp_path / "home").exists()
    else:
        assert "promote: skipped, the winner does not beat the original" in out
        assert not (tmp_path / "home").exists()


def test_a_bad_setting_exits_2(run_experiment, capsys):
    run, _, _ = run_experiment
    assert run("--set", "search.budget_seconds=0") == 2
    assert "search.budget_seconds" in capsys.readouterr().err
