"""The experiment's leaderboard: rows with 95% intervals as a markdown table and MLflow runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training import tracking
from training.protocol import ProtocolResult, corrected_interval

EXPERIMENT = "reggaeton_clf-experiments"
COLUMNS = ("f1", "pr_auc", "brier", "ece", "brier_raw", "ece_raw")
HEADERS = {
    "f1": "F1",
    "pr_auc": "PR-AUC",
    "brier": "Brier",
    "ece": "ECE",
    "brier_raw": "Brier raw",
    "ece_raw": "ECE raw",
}


@dataclass
class Row:
    """One leaderboard row: a named configuration and its protocol result."""

    name: str
    summary: str
    raw_config: dict[str, Any]
    result: ProtocolResult
    search_value: float | None = None
    run_id: str | None = None


def markdown(rows: list[Row], title: str) -> str:
    """Rows sorted by mean PR-AUC as a markdown table, ``mean [low, high]`` per metric.

    ``Brier raw``/``ECE raw`` are the pipeline's scores before calibration; every other column
    is of the calibrated (served) probabilities at the threshold chosen inside each fit.
    """
    head = ["rank", "candidate", "config", *(HEADERS[c] for c in COLUMNS), "search"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ranked = sorted(rows, key=lambda r: r.result.interval("pr_auc").mean, reverse=True)
    for i, row in enumerate(ranked, 1):
        cells = [str(row.result.interval(c)) for c in COLUMNS]
        search = f"{row.search_value:.3f}" if row.search_value is not None else "-"
        lines.append(
            f"| {i} | {row.name} | {row.summary} | " + " | ".join(cells) + f" | {search} |"
        )
    return "\n".join(lines)


def nested_markdown(
    winner: list[dict[str, float]], original: list[dict[str, float]], picks: list[str], folds: int
) -> str:
    """The nested-CV table: the search procedure vs the original on the same outer folds, and
    the paired difference (search minus original) with its interval."""
    fraction = 1.0 / (folds - 1)
    lines = ["| | " + " | ".join(HEADERS[c] for c in COLUMNS[:4]) + " |", "|---|" + "---|" * 4]
    for name, scores in (("search (nested)", winner), ("original", original)):
        cells = [str(corrected_interval([s[c] for s in scores], fraction)) for c in COLUMNS[:4]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    diffs = [
        str(
            corrected_interval(
                [w[c] - o[c] for w, o in zip(winner, original, strict=True)],
                fraction,
                (-1.0, 1.0),
            )
        )
        for c in COLUMNS[:4]
    ]
    lines.append("| difference | " + " | ".join(diffs) + " |")
    lines += ["", "Picks per outer fold: " + "; ".join(picks)]
    return "\n".join(lines)


def describe_config(raw: dict[str, Any]) -> str:
    """Short text of a raw config, e.g. ``hgb/class_weight max_iter=200 learning_rate=0.05``."""
    model = raw.get("model", {})
    params = model.get("params") or {}
    text = " ".join(f"{k}={_short(v)}" for k, v in params.items() if k not in _HIDDEN)
    estimator = model.get("estimator", "gbm")
    return f"{estimator}/{raw.get('imbalance', {}).get('strategy', 'smote')} {text}".strip()


_HIDDEN = ("random_state", "n_jobs")


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def log_rows(uri: str, rows: list[Row], config_params: dict[str, dict[str, Any]]) -> None:
    """One MLflow run per row (metrics with intervals, reliability plot of the pooled outer
    test scores), in experiment :data:`EXPERIMENT`; sets each row's ``run_id``."""
    for row in rows:
        extra = row.result.extra
        artifacts = {}
        if "y" in extra:
            artifacts["reliability.png"] = tracking.reliability_png(
                extra["y"],
                {"raw": extra["raw"], "calibrated": extra["proba"]},
                f"Reliability ({row.name}, outer folds pooled)",
            )
        metrics = row.result.flat("cv_")
        if row.search_value is not None:
            metrics["search_pr_auc"] = row.search_value
        row.run_id = tracking.log_run(
            uri,
            row.name,
            params=config_params[row.name],
            metrics=metrics,
            tags={"candidate": row.name, "protocol": row.result.description},
            artifacts=artifacts,
            experiment=EXPERIMENT,
        )


def log_summary(uri: str, text: str, metrics: dict[str, float], tags: dict[str, str]) -> str:
    """The experiment's summary run: the leaderboard markdown as an artifact."""
    return tracking.log_run(
        uri,
        "leaderboard",
        params={},
        metrics=metrics,
        tags=tags,
        artifacts={"leaderboard.md": text.encode()},
        experiment=EXPERIMENT,
    )
