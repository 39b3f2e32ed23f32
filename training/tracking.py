"""MLflow logging (local SQLite store by default; artifacts next to it in ``mlartifacts/``).

MLflow is imported lazily so importing :mod:`training` stays fast; nothing here talks to a
network service unless ``MLFLOW_TRACKING_URI`` points at one.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TRACKING_URI = "sqlite:///var/mlflow.db"
EXPERIMENT = "reggaeton_clf"


def tracking_uri_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` or the local default (``sqlite:///var/mlflow.db``)."""
    env = os.environ if environ is None else environ
    return env.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of a ``sqlite:///dir/x.db`` store go to ``dir/mlartifacts/<experiment>``."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    return (db.parent.resolve() / "mlartifacts" / experiment).as_uri()


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"model.params.n_estimators": "300", ...}``."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:500]
    return out


def confusion_png(matrix: list[list[int]], title: str = "Confusion matrix (hold-out)") -> bytes:
    """A confusion matrix ``[[tn, fp], [fn, tp]]`` drawn as PNG bytes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(np.asarray(matrix), cmap="Blues")
    cells = np.asarray(matrix)
    for (i, j), value in np.ndenumerate(cells):
        dark = value > cells.max() / 2
        ax.text(j, i, str(value), ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks([0, 1], ["other", "reggaeton"])
    ax.set_yticks([0, 1], ["other", "reggaeton"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _png(plt, fig)


def pr_curve_png(
    y: np.ndarray, proba: np.ndarray, threshold: float, title: str = "Precision-recall (hold-out)"
) -> bytes:
    """The precision-recall curve of the reggaeton class as PNG bytes."""
    from sklearn.metrics import precision_recall_curve

    plt = _pyplot()
    precision, recall, thresholds = precision_recall_curve(y, proba)
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot(recall, precision)
    if len(thresholds):
        # predictions at `threshold` equal those at the smallest curve threshold >= it
        i = min(int(np.searchsorted(thresholds, threshold, side="left")), len(thresholds) - 1)
        ax.scatter([recall[i]], [precision[i]], color="red", label=f"threshold {threshold:.3f}")
        ax.legend(loc="lower left")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    return _png(plt, fig)


def reliability_png(
    y: np.ndarray, curves: Mapping[str, np.ndarray], title: str = "Reliability"
) -> bytes:
    """Reliability diagram: observed reggaeton rate against mean probability per bin (10
    equal-width bins, marker size by row count), one line per named set of probabilities
    (e.g. ``raw`` and ``calibrated``), with Brier and ECE in the legend."""
    from training.calibrate import probability_metrics, reliability_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, proba in curves.items():
        mean_p, rate, count = reliability_curve(y, proba)
        m = probability_metrics(y, proba)
        ax.plot(
            mean_p, rate, marker="o", label=f"{name} (Brier {m['brier']:.3f}, ECE {m['ece']:.3f})"
        )
        ax.scatter(mean_p, rate, s=8 + 40 * count / max(1, count.max()), alpha=0.4)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed reggaeton rate")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=7)
    return _png(plt, fig)


def log_run(
    uri: str,
    run_name: str,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float | None],
    tags: Mapping[str, str] | None = None,
    artifacts: Mapping[str, bytes] | None = None,
    experiment: str = EXPERIMENT,
) -> str:
    """Log one finished run and return its run id.

    Args:
        uri: Tracking URI.
        run_name: Name shown in the UI.
        params: Nested parameters (flattened with dots).
        metrics: Numbers; None values are skipped.
        tags: String tags (bento tag, data hash, git commit, ...).
        artifacts: File name -> bytes (e.g. PNG plots).
        experiment: MLflow experiment name.
    """
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    exp_id = (
        found.experiment_id
        if found
        else client.create_experiment(
            experiment, artifact_location=artifact_location(uri, experiment)
        )
    )
    run = client.create_run(exp_id, run_name=run_name, tags=dict(tags or {}))
    run_id = run.info.run_id
    stamp = run.info.start_time
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), stamp, 0) for k, v in metrics.items() if v is not None],
        params=[Param(k, v) for k, v in flatten(params).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )
    if artifacts:
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in artifacts.items():
                (Path(tmp) / name).write_bytes(content)
            client.log_artifacts(run_id, tmp)
    client.set_terminated(run_id)
    return run_id


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(plt: Any, fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
