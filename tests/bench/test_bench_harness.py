"""Fast checks of the benchmark harness: the naive baseline answers correctly, hey output
parses, the targets are judged right. No timing assertions (speed belongs to `make bench`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from bench import payloads, report
from bench.baseline import artifacts
from bench.baseline.app import create_app
from bench.loadgen import parse_hey
from reggaeton.schema import MODEL_FEATURES

REPO = Path(__file__).resolve().parents[2]

HEY_OUTPUT = """
Summary:
  Total:\t2.0000 secs
  Slowest:\t0.0500 secs
  Fastest:\t0.0010 secs
  Average:\t0.0080 secs
  Requests/sec:\t1010.0000

Latency distribution:
  10% in 0.0040 secs
  50% in 0.0075 secs
  99% in 0.0420 secs

Status code distribution:
  [200]\t2000 responses
  [503]\t15 responses

Error distribution:
  [5]\tPost "http://127.0.0.1:1/predict-song": EOF
"""


@pytest.fixture(scope="module")
def baseline_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("baseline")
    artifacts.build(REPO / "data", folder, estimator=GradientBoostingClassifier(n_estimators=5))
    return folder


def test_baseline_app_answers_like_the_naive_pipeline(baseline_folder):
    songs = payloads.load_songs(REPO / "data", 3)
    client = create_app(baseline_folder).test_client()
    frame = pd.DataFrame(payloads.model_matrix(songs), columns=list(MODEL_FEATURES))
    expected = artifacts.expected_probabilities(baseline_folder, frame)

    single = client.post("/predict-song", json={"data": songs[0]})
    batch = client.post("/predict-songs", json={"data": songs})

    assert single.status_code == 200 and batch.status_code == 200
    assert single.get_json()["prediction"] == [float(expected[0] >= 0.5)]
    assert np.allclose(payloads.api_probabilities(single.get_json()), expected[:1])
    assert np.allclose(payloads.api_probabilities(batch.get_json()), expected)
    assert client.get("/health").status_code == 200


def test_baseline_unpickles_the_scalers_on_every_call(baseline_folder, monkeypatch):
    arts = artifacts.BaselineArtifacts(baseline_folder)
    model = artifacts.load_model(arts)
    opened: list[str] = []
    real_open = open
    monkeypatch.setattr(
        "builtins.open", lambda p, *a, **k: opened.append(Path(p).name) or real_open(p, *a, **k)
    )
    frame = pd.DataFrame(
        payloads.model_matrix(payloads.load_songs(REPO / "data", 1)), columns=list(MODEL_FEATURES)
    )
    artifacts.naive_predict(arts, model, frame)
    artifacts.naive_predict(arts, model, frame)
    assert opened.count("scaler_loudness.pkl") == 2 and opened.count("scaler_tempo.pkl") == 2


def test_v2_body_round_trip():
    songs = payloads.load_songs(REPO / "data", 2)
    body = payloads.v2_body(songs)
    tensor = body["inputs"][0]
    assert tensor["shape"] == [2, len(MODEL_FEATURES)] and tensor["datatype"] == "FP64"
    answer = {"outputs": [{"name": "predict_proba", "shape": [2, 2], "data": [0.9, 0.1, 0.3, 0.7]}]}
    assert payloads.v2_probabilities(answer) == pytest.approx([0.1, 0.7])


def test_parse_hey_counts_non_2xx_and_transport_errors_as_errors():
    cell = parse_hey(HEY_OUTPUT, rows_per_request=100)
    assert cell.ok == 2000 and cell.errors == 20
    assert cell.requests_per_s == pytest.approx(1000.0)
    assert cell.rows_per_s == pytest.approx(100_000.0)
    assert cell.p50_ms == pytest.approx(7.5) and cell.p99_ms == pytest.approx(42.0)


def _cell(rps: float, p50: float = 1.0, p99: float = 10.0, rows: int = 1, errors: int = 0):
    return {
        "requests_per_s": rps,
        "rows_per_s": rps * rows,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": errors,
        "ok": 1,
    }


def test_targets_and_table():
    results = {
        report.SERVICE: {
            "single_c1": _cell(500, p50=2.0),
            "single_c32": _cell(1200, p99=40),
            "batch1000": _cell(160, rows=1000),
        },
        report.BASELINE: {"single_c32": _cell(100)},
        report.MLSERVER_BATCHING: {"single_c32": _cell(1300)},
    }
    verdicts = {v["target"]: v["met"] for v in report.targets(results)}
    assert verdicts["single-row c=32 >= 5x baseline (aim 10x)"]
    assert not verdicts["single-row c=32 > MLServer with batching"]
    assert verdicts["p50 at c=1 < 3 ms"] and verdicts["p99 at c=32 < 100 ms"]
    assert verdicts["1,000-row batches >= 150,000 rows/s"]
    text = report.table(results, report.default_cells())
    assert "| service | 1 row c=32 | 1,200 | 1,200 |" in text and "| 12.00 | 0.92 |" in text


def test_mlserver_templates_serve_predict_proba_with_and_without_batching():
    folder = REPO / "bench" / "mlserver"
    on = json.loads((folder / "batching" / "model-settings.json").read_text())
    off = json.loads((folder / "no-batching" / "model-settings.json").read_text())
    for settings in (on, off):
        assert settings["implementation"] == "mlserver_sklearn.SKLearnModel"
        assert settings["parameters"]["extra"]["predict_fn"] == "predict_proba"
    assert on["max_batch_size"] > 1 and on["max_batch_time"] > 0
    assert off["max_batch_size"] <= 1
    assert json.loads((folder / "settings.json").read_text())["host"] == "127.0.0.1"


def test_parse_hey_falls_back_to_the_slowest_answer_for_p99_on_few_requests():
    text = HEY_OUTPUT.replace("  99% in 0.0420 secs\n", "")
    assert parse_hey(text, rows_per_request=1).p99_ms == pytest.approx(50.0)


def test_an_incomplete_prediction_log_is_a_missed_target():
    results = {report.SERVICE: {"single_c1": _cell(500)}}
    verdicts = report.targets(results, {"logged_rows": 90, "answered_rows": 100})
    assert verdicts[-1]["target"] == "every answered prediction is in the prediction log"
    assert not verdicts[-1]["met"]
    assert report.targets(results, {"logged_rows": 100, "answered_rows": 100})[-1]["met"]
