"""MLflow logging into a temporary store, the experiment CLI, and feedback inclusion."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from reggaeton.records import PredictionRecord, open_store
from reggaeton.records.base import utcnow
from reggaeton.schema import MODEL_FEATURES
from training.data import load_labelled, rows_in, split_holdout
from training.train import run_training


def test_training_run_is_logged_to_mlflow(registry_copy, tiny_config, repo_root, mlflow_uri):
    from mlflow.tracking import MlflowClient

    result = run_training(tiny_config, registry_copy, mlflow_uri, root=repo_root)
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.data.tags["bento_tag"] == result.tag
    assert run.data.tags["data_sha256"] == result.version.metadata["data_sha256"]
    assert run.data.tags["git_commit"] == result.version.metadata["git_commit"]
    assert run.data.params["model.params.n_estimators"] == "1"
    assert run.data.params["imbalance.strategy"] == "smote"
    assert run.data.metrics["holdout_f1"] == pytest.approx(result.metrics["f1"])
    assert run.data.metrics["cv_pr_auc_mean"] == pytest.approx(result.cv_metrics["pr_auc_mean"])
    assert run.data.metrics["promoted"] == 0.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "pr_curve.png", "reliability.png"} <= artifacts
    for name in ("brier", "ece", "brier_raw", "ece_raw"):
        assert run.data.metrics[f"holdout_{name}"] == pytest.approx(result.metrics[name])
    assert run.data.tags["threshold_strategy"] == result.version.metadata["threshold_strategy"]
    png = client.download_artifacts(run.info.run_id, "pr_curve.png")
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_feedback_is_trained_on_and_gates_on_recent_production(
    registry_copy, config_with, repo_root, tmp_path
):
    data = pd.read_csv(repo_root / "data/data_todotipo.csv").dropna().head(40)
    reg = pd.read_csv(repo_root / "data/data_reggaeton.csv").head(20)
    rows = pd.concat([data.assign(label=0), reg.assign(label=1)]).sample(frac=1, random_state=0)
    store = open_store(f"sqlite:///{tmp_path / 'pred.db'}")
    start = utcnow() - timedelta(days=2)
    records = [
        PredictionRecord(
            request_id=f"r{i}",
            model_version="reggaeton_clf:x",
            features={f: float(row[f]) for f in MODEL_FEATURES},
            probability=0.5,
            prediction=0,
            timestamp=start + timedelta(minutes=i),
        )
        for i, (_, row) in enumerate(rows.iterrows())
    ]
    store.write_many(records)
    for i, label in enumerate(rows["label"]):
        store.add_feedback(f"r{i}", int(label))
    store.write_many(
        [
            PredictionRecord(
                "unlabelled", "reggaeton_clf:x", {f: 0.5 for f in MODEL_FEATURES}, 0.5, 0
            )
        ]
    )
    store.close()
    config = config_with("model.params.n_estimators=1", "cv.folds=2", "gate.min_feedback_rows=10")
    result = run_training(
        config,
        registry_copy,
        root=repo_root,
        include_feedback=True,
        store_uri=f"sqlite:///{tmp_path / 'pred.db'}",
    )
    # the oldest 42 rows are for training, minus those that are hold-out songs (no leak)
    labelled, _ = load_labelled(
        repo_root / "data/data_reggaeton.csv",
        repo_root / "data/data_todotipo.csv",
        list(MODEL_FEATURES),
    )
    _, holdout = split_holdout(labelled, config.split.test_size, config.seed)
    oldest = rows.head(42).assign(**{f: rows.head(42)[f].astype(float) for f in MODEL_FEATURES})
    leaked = int(rows_in(oldest, holdout, list(MODEL_FEATURES)).sum())
    assert leaked > 0  # the test data does hold hold-out songs
    assert result.rows["feedback_dropped_holdout"] == leaked
    assert (result.rows["feedback_train"], result.rows["feedback_eval"]) == (42 - leaked, 18)
    assert result.rows["train"] == 1772 + 42 - leaked
    details = result.decision.details
    assert details["candidate_production"]["f1"] is not None
    assert details["current_production"]["pr_auc"] is not None


def test_an_mlflow_outage_does_not_fail_a_gated_training(
    registry_copy, tiny_config, repo_root, tmp_path, caplog
):
    (tmp_path / "blocker").write_text("a file where the tracking folder should be")
    bad_uri = f"sqlite:///{tmp_path / 'blocker' / 'mlflow.db'}"
    result = run_training(tiny_config, registry_copy, bad_uri, root=repo_root, force=True)
    assert result.promoted and result.mlflow_run_id is None
    assert registry_copy.promotions.current() == result.tag
    assert "mlflow: logging to" in caplog.text and "promoted all the same" in caplog.text
