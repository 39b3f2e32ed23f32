"""Local retraining: call the training pipeline's programmatic entry point in this process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitoring.config import MonitoringConfig


def training_runner(config: MonitoringConfig) -> Callable[[], dict[str, Any]]:
    """A callable that trains, saves and gates one version, and returns what happened.

    Uses ``retrain.training_config`` / ``retrain.training_overrides`` (training's YAML and
    ``key=value`` overrides), the same model store and prediction log as the monitor, and
    adds labelled production rows when ``retrain.include_feedback`` is on.
    """

    def train() -> dict[str, Any]:
        from reggaeton.registry import Registry, home_from_env
        from training.config import load_config
        from training.tracking import tracking_uri_from_env
        from training.train import run_training

        train_config = load_config(
            config.retrain.training_config, list(config.retrain.training_overrides)
        )
        registry = Registry(config.bentoml_home or home_from_env())
        # Logged to MLflow like every training: the configured URI, else the local default.
        result = run_training(
            train_config,
            registry,
            config.mlflow_tracking_uri or tracking_uri_from_env(),
            include_feedback=config.retrain.include_feedback,
            store_uri=config.store_uri,
        )
        return {
            "tag": result.tag,
            "promoted": result.promoted,
            "reason": result.decision.reason,
            "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, int | float)},
        }

    return train
