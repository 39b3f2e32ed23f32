"""The naive baseline: a Flask app doing the original per-request work.

Per request: JSON -> pandas DataFrame, unpickle the two scalers from disk, scale loudness and
tempo, ``predict_proba`` with the pickled estimator (loaded once per worker, as the original did).
No validation and no prediction logging: both only make the baseline look faster.

Run under gunicorn: ``gunicorn -w 2 'bench.baseline.app:create_app()'`` with
``BASELINE_ARTIFACTS`` pointing at the folder written by :mod:`bench.baseline.artifacts`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from flask import Flask, jsonify, request

from bench.baseline.artifacts import BaselineArtifacts, load_model, naive_predict


def _predict(artifacts: BaselineArtifacts, model, rows: list[dict]) -> list[float]:
    frame = pd.DataFrame(rows, index=range(len(rows)))
    return [float(p) for p in naive_predict(artifacts, model, frame)]


def create_app(folder: str | Path | None = None) -> Flask:
    """Build the Flask app over the pickles in ``folder`` (default: ``$BASELINE_ARTIFACTS``)."""
    artifacts = BaselineArtifacts(Path(folder or os.environ["BASELINE_ARTIFACTS"]))
    model = load_model(artifacts)
    app = Flask("baseline")

    @app.get("/health")
    def health():
        return jsonify({"status": "ok"})

    @app.post("/predict-song")
    def predict_song():
        song = request.get_json()["data"]
        probability = _predict(artifacts, model, [song])[0]
        return jsonify({"prediction": [float(probability >= 0.5)], "probability": probability})

    @app.post("/predict-songs")
    def predict_songs():
        songs = request.get_json()["data"]
        probabilities = _predict(artifacts, model, songs)
        return jsonify([{"prediction": [float(p >= 0.5)], "probability": p} for p in probabilities])

    return app
