"""In-process cost of each inference step, in microseconds per call (what each step bought).

Usage: ``python -m bench.profile_inference [--rows 1000]``. Uses the promoted model of
``BENTOML_HOME`` (``var/bentoml`` by default) and the naive baseline's pickles when present.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import sklearn

from bench import payloads
from reggaeton.registry import Registry, home_from_env
from reggaeton.schema import MODEL_FEATURES, validate_record

REPO = Path(__file__).resolve().parents[1]


def per_call_us(fn: Callable[[], object], budget_s: float = 0.4, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean time of ``fn()`` in microseconds."""
    fn()
    calls = 1
    while True:  # find a loop count that takes about budget_s / repeats
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        took = time.perf_counter() - start
        if took >= budget_s / repeats or calls >= 1 << 20:
            break
        calls *= 2
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def steps(pipeline, songs: list[dict], rows: int) -> list[tuple[str, int, Callable[[], object]]]:
    """(name, rows per call, callable) for every step worth timing."""
    song = songs[0]
    body = orjson.dumps({"data": song})
    one = payloads.model_matrix([song])
    many = payloads.model_matrix(songs[:rows])
    one_df = pd.DataFrame([song])[list(MODEL_FEATURES)]
    lean = {"assume_finite": True, "skip_parameter_validation": True}

    def lean_one():
        with sklearn.config_context(**lean):
            return pipeline.predict_proba(one)

    def lean_many():
        with sklearn.config_context(**lean):
            return pipeline.predict_proba(many)

    out = [
        ("orjson.loads(body)", 1, lambda: orjson.loads(body)),
        ("validate_record(song) (shared schema)", 1, lambda: validate_record(song)),
        ("dict -> one-row DataFrame", 1, lambda: pd.DataFrame([song])[list(MODEL_FEATURES)]),
        ("dict -> numpy row", 1, lambda: np.array([[song[f] for f in MODEL_FEATURES]], float)),
        ("pipeline.predict_proba(1-row DataFrame)", 1, lambda: pipeline.predict_proba(one_df)),
        ("pipeline.predict_proba(1-row numpy)", 1, lambda: pipeline.predict_proba(one)),
        ("  + config_context(assume_finite, skip_validation)", 1, lean_one),
        (f"pipeline.predict_proba({rows}-row numpy)", rows, lambda: pipeline.predict_proba(many)),
        (f"  + config_context, {rows} rows", rows, lean_many),
    ]
    out += _fast_path_steps(pipeline, songs, one, many, rows)
    out += _baseline_steps(pipeline, song)
    return out


def _fast_path_steps(pipeline, songs, one, many, rows):
    """The service's own code (service/validation.py, service/inference.py, fasttrees)."""
    try:
        from service.inference import build_predictor
        from service.validation import validate_rows
    except ImportError as exc:
        print(f"[profile] service fast path not importable ({exc}): skipping it")
        return []
    registry = Registry(home_from_env())
    version = registry.serving_version()
    fast = build_predictor(version, registry.load_servable(version))
    one_valid = validate_rows(songs[:1], offset_index=False)
    many_valid = validate_rows(songs[:rows])
    out = [
        ("service validate_rows(1 song)", 1, lambda: validate_rows(songs[:1], offset_index=False)),
        (f"service validate_rows({rows} songs)", rows, lambda: validate_rows(songs[:rows])),
        (f"service Predictor.predict {fast.path_name} (1 row)", 1, lambda: fast.predict(one_valid)),
        (
            f"service Predictor.predict {fast.path_name} ({rows} rows)",
            rows,
            lambda: fast.predict(many_valid),
        ),
        ("  of which FastModel.raw_proba (1 row)", 1, lambda: fast.model.raw_proba(one)),
    ]
    return out + _logging_steps(fast, one_valid, 1) + _logging_steps(fast, many_valid, rows)


def _logging_steps(predictor, valid, rows):
    """What the prediction log costs per request: records, JSON results, a SQLite write."""
    import itertools
    import tempfile
    from datetime import UTC, datetime

    from reggaeton.records.base import PredictionRecord
    from reggaeton.records.factory import open_store
    from service.inference import result_rows
    from service.validation import row_features

    proba, labels = predictor.predict(valid)
    ids = [f"req-{i}" for i in range(rows)]
    now = datetime.now(UTC)
    counter = itertools.count()

    def records(prefix: str = "req"):
        return [
            PredictionRecord(f"{prefix}-{i}", predictor.tag, feats, p, lab, 1.0, "batch", now)
            for i, feats, p, lab in zip(
                range(rows), row_features(valid), proba.tolist(), labels.tolist(), strict=True
            )
        ]

    folder = tempfile.mkdtemp(prefix="profile-predlog-")
    store = open_store(f"sqlite:///{folder}/predictions.db")
    results = result_rows(predictor, proba, labels, ids)
    return [
        (
            f"service result_rows ({rows} rows)",
            rows,
            lambda: result_rows(predictor, proba, labels, ids),
        ),
        (f"orjson.dumps(results) ({rows} rows)", rows, lambda: orjson.dumps({"results": results})),
        (f"log: row_features + PredictionRecord ({rows} rows)", rows, records),
        (
            f"log: SQLite write_many, new ids ({rows} rows, incl. records)",
            rows,
            lambda: store.write_many(records(f"w{next(counter)}")),
        ),
    ]


def _baseline_steps(pipeline, song):
    from bench.baseline import artifacts as base

    folders = sorted((REPO / "var" / "bench").glob("baseline-*"))
    arts = base.BaselineArtifacts(folders[-1]) if folders else None
    if arts is None or not arts.exists():
        print("[profile] no baseline pickles yet (run `make bench` once): skipping its steps")
        return []
    model = base.load_model(arts)
    return [
        (
            "naive baseline: DataFrame + 2 unpickles + scale + GBM",
            1,
            lambda: base.naive_predict(arts, model, pd.DataFrame([song])),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the microseconds per call (and per row for batches) of every step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows in the batch steps")
    args = parser.parse_args(argv)
    # The pipeline is fitted on arrays: a DataFrame input warns on every call; keep the table.
    warnings.filterwarnings("ignore", message="X has feature names")
    registry = Registry(home_from_env())
    version = registry.serving_version()
    pipeline = registry.load_pipeline(version)
    songs = payloads.load_songs(REPO / "data", args.rows)
    print(
        f"model {version.tag} ({' + '.join(type(s).__name__ for _, s in pipeline.steps)}), "
        f"scikit-learn {sklearn.__version__}\n"
    )
    print("| step | us per call | us per row |\n|---|---:|---:|")
    for name, rows, fn in steps(pipeline, songs, args.rows):
        us = per_call_us(fn)
        print(f"| {name} | {us:,.1f} | {us / rows:,.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
