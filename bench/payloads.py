"""Request bodies for each side, built from the seed songs, plus answer decoders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reggaeton.schema import FEATURES, IDENTIFIER_COLUMNS, MODEL_FEATURES

SONGS_CSV = "data_todotipo.csv"


def load_songs(data_dir: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` seed songs (cycled if needed) as API records, like real clients send."""
    frame = pd.read_csv(data_dir / SONGS_CSV, index_col=0)
    keep = [f.name for f in FEATURES if f.name in frame.columns] + [
        c for c in IDENTIFIER_COLUMNS if c in frame.columns
    ]
    frame = frame[keep].dropna()
    records = []
    ints = {f.name for f in FEATURES if f.dtype == "int"} | set(IDENTIFIER_COLUMNS)
    for i in range(count):
        row = frame.iloc[i % len(frame)]
        records.append({k: int(row[k]) if k in ints else float(row[k]) for k in keep})
    return records


def model_matrix(songs: list[dict[str, Any]]) -> np.ndarray:
    """The songs as the 2-D float array the pipeline takes (MODEL_FEATURES order)."""
    return np.array([[float(s[f]) for f in MODEL_FEATURES] for s in songs], dtype=np.float64)


def api_body(songs: list[dict[str, Any]], single: bool) -> dict[str, Any]:
    """Body for our service and the baseline: ``{"data": song}`` or ``{"data": [songs]}``."""
    return {"data": songs[0] if single else songs}


def v2_body(songs: list[dict[str, Any]]) -> dict[str, Any]:
    """Open Inference Protocol (V2) body: one FP64 tensor of shape [n, 11]."""
    matrix = model_matrix(songs)
    return {
        "inputs": [
            {
                "name": "songs",
                "shape": list(matrix.shape),
                "datatype": "FP64",
                "data": matrix.ravel().tolist(),
            }
        ]
    }


def api_probabilities(answer: Any) -> list[float]:
    """Probabilities from our service's or the baseline's answer (single or batch)."""
    if isinstance(answer, dict) and "probability" in answer:
        return [float(answer["probability"])]
    if isinstance(answer, dict):
        lists = [v for v in answer.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if not lists:
            raise ValueError(f"no result list in answer keys {sorted(answer)}")
        answer = lists[0]
    return [float(item["probability"]) for item in answer]


def v2_probabilities(answer: dict[str, Any]) -> list[float]:
    """Positive-class probabilities from a V2 ``predict_proba`` answer."""
    output = answer["outputs"][0]
    data = np.asarray(output["data"], dtype=float).reshape(output["shape"])
    return data[:, 1].tolist()


def write_body(path: Path, body: dict[str, Any]) -> Path:
    """Write a JSON body to ``path`` and return it."""
    path.write_text(json.dumps(body))
    return path
