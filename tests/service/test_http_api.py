"""Every HTTP endpoint over real HTTP against a real ``bentoml serve`` (two workers)."""

from __future__ import annotations

import http.client
import json

import pytest
from service_helpers import SONG, TOKEN, wait_until

from reggaeton.fastpath import EVALUATORS
from reggaeton.records.factory import open_store
from reggaeton.registry import Registry

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_the_original_curl_body_is_answered(server, trained_home):
    status, body = server.request("POST", "/predict-song", {"data": SONG})
    assert status == 200, body
    assert set(body) == {"prediction", "label", "probability", "model_version", "request_id"}
    assert body["prediction"] in ([1.0], [0.0])
    assert body["label"] == ("reggaeton" if body["prediction"] == [1.0] else "other")
    assert 0.0 <= body["probability"] <= 1.0
    assert body["model_version"] == Registry(trained_home).promotions.current()


def test_batch_results_are_in_order_with_their_own_ids(server):
    songs = [{**SONG, "danceability": d / 10, "energy": 1 - d / 10} for d in range(10)]
    status, body = server.request("POST", "/predict-songs", {"data": songs})
    assert status == 200, body
    assert body["count"] == 10 and len(body["results"]) == 10
    assert len({r["request_id"] for r in body["results"]}) == 10
    for song, result in zip(songs, body["results"], strict=True):
        single = server.request("POST", "/predict-song", {"data": song})[1]
        assert result["probability"] == single["probability"]
        assert result["prediction"] == single["prediction"]


def _without(name):
    return {k: v for k, v in SONG.items() if k != name}


def _raw(song_json: str) -> bytes:
    return ('{"data": ' + song_json + "}").encode()


BIG = json.dumps({"data": [SONG] * 400}).encode()  # > 64 KiB
BAD_INPUTS = [
    # (id, endpoint, body, status, field, words in the rule)
    ("missing", "/predict-song", {"data": _without("tempo")}, 422, "data.tempo", "required"),
    ("null", "/predict-song", {"data": {**SONG, "energy": None}}, 422, "data.energy", "required"),
    ("string", "/predict-song", {"data": {**SONG, "tempo": "fast"}}, 422, "data.tempo", "number"),
    ("bool", "/predict-song", {"data": {**SONG, "mode": True}}, 422, "data.mode", "number"),
    (
        "nan",
        "/predict-song",
        _raw(json.dumps(SONG).replace("131.058", "NaN")),
        422,
        "data.tempo",
        "finite",
    ),
    (
        "infinity",
        "/predict-song",
        _raw(json.dumps(SONG).replace("-4.434", "-Infinity")),
        422,
        "data.loudness",
        "finite",
    ),
    (
        "above-max",
        "/predict-song",
        {"data": {**SONG, "danceability": 1.5}},
        422,
        "data.danceability",
        "<= 1",
    ),
    (
        "below-min",
        "/predict-song",
        {"data": {**SONG, "popularity": -1}},
        422,
        "data.popularity",
        ">= 0",
    ),
    (
        "zero-duration",
        "/predict-song",
        {"data": {**SONG, "duration": 0}},
        422,
        "data.duration",
        "greater than 0",
    ),
    ("fractional-int", "/predict-song", {"data": {**SONG, "key": 2.5}}, 422, "data.key", "whole"),
    ("data-not-object", "/predict-song", {"data": [SONG]}, 422, "data", "object"),
    ("no-data", "/predict-song", {"song": SONG}, 422, "data", "required"),
    ("body-not-object", "/predict-song", [SONG], 422, "data", "required"),
    ("invalid-json", "/predict-song", b'{"data": {"tempo": 1', 400, "body", "JSON"),
    ("empty-body", "/predict-song", b"", 400, "body", "JSON"),
    ("too-large", "/predict-song", BIG, 413, "body", "bytes"),
    ("empty-batch", "/predict-songs", {"data": []}, 422, "data", "at least 1"),
    ("oversized-batch", "/predict-songs", {"data": [SONG] * 51}, 422, "data", "at most 50"),
    (
        "bad-row",
        "/predict-songs",
        {"data": [SONG, {**SONG, "valence": 2}]},
        422,
        "data[1].valence",
        "<= 1",
    ),
    ("row-not-object", "/predict-songs", {"data": [SONG, 3]}, 422, "data[1]", "object"),
    ("batch-not-list", "/predict-songs", {"data": SONG}, 422, "data", "list"),
    ("batch-too-large", "/predict-songs", BIG, 413, "body", "bytes"),
    ("feedback-label", "/feedback", {"request_id": "x", "label": 2}, 422, "label", "0"),
    ("feedback-label-type", "/feedback", {"request_id": "x", "label": "1"}, 422, "label", "0"),
    ("feedback-label-bool", "/feedback", {"request_id": "x", "label": True}, 422, "label", "0"),
    ("feedback-no-id", "/feedback", {"label": 1}, 422, "request_id", "string"),
    ("feedback-json", "/feedback", b"{", 400, "body", "JSON"),
]


@pytest.mark.parametrize(
    "endpoint,body,status,field,rule", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_a_4xx_naming_the_field_and_rule(server, endpoint, body, status, field, rule):
    raw = body if isinstance(body, bytes) else None
    got, answer = server.request(
        "POST", endpoint, None if raw is not None else body, raw=raw, headers=AUTH
    )
    assert got == status, answer
    assert isinstance(answer, dict), answer
    assert answer["field"] == field, answer
    assert rule.lower() in answer["rule"].lower(), answer
    assert answer["error"] and answer["detail"]


def test_unknown_extra_fields_are_ignored(server):
    status, body = server.request(
        "POST", "/predict-song", {"data": {**SONG, "id_new": "abc", "genre": [1]}, "x": 1}
    )
    assert status == 200, body
    assert server.request("POST", "/predict-song", {"data": _without("time_signature")})[0] == 200


def test_feedback_needs_the_token_and_the_last_one_wins(server):
    rid = server.request("POST", "/predict-song", {"data": SONG})[1]["request_id"]
    feedback = {"request_id": rid, "label": 0}
    assert server.request("POST", "/feedback", feedback)[0] == 401
    wrong = {"Authorization": "Bearer nope"}
    status, body = server.request("POST", "/feedback", feedback, headers=wrong)
    assert status == 401 and TOKEN not in json.dumps(body)
    # Sent right after the answer, possibly to the other worker: it must still be found.
    assert server.request("POST", "/feedback", feedback, headers=AUTH) == (
        200,
        {"request_id": rid, "label": 0, "recorded": True},
    )
    assert server.request("POST", "/feedback", {**feedback, "label": 1}, headers=AUTH)[0] == 200
    store = open_store(server.store_uri)
    try:
        assert store.get(rid)["feedback_label"] == 1
        assert [e["label"] for e in store.feedback_history(rid)] == [0, 1]
    finally:
        store.close()
    assert TOKEN not in server.logs()


def test_feedback_for_an_unknown_request_is_404(server):
    status, body = server.request(
        "POST", "/feedback", {"request_id": "never-seen", "label": 1}, headers=AUTH
    )
    assert status == 404 and body["field"] == "request_id"


def test_every_prediction_is_logged_with_its_version_and_source(server):
    store = open_store(server.store_uri)
    try:
        single = server.request("POST", "/predict-song", {"data": SONG})[1]
        batch = server.request("POST", "/predict-songs", {"data": [SONG] * 3})[1]
        ids = [single["request_id"]] + [r["request_id"] for r in batch["results"]]
        rows = wait_until(
            lambda: [store.get(i) for i in ids] if all(store.get(i) for i in ids) else None,
            30,
            "the predictions to reach the store",
        )
    finally:
        store.close()
    assert [r["source"] for r in rows] == ["http", "batch", "batch", "batch"]
    for row in rows:
        assert row["model_version"] == single["model_version"]
        assert row["probability"] == pytest.approx(single["probability"], abs=1e-12)
        assert row["tempo"] == SONG["tempo"] and row["time_signature"] == 4
        assert row["latency_ms"] >= 0 and row["timestamp"] is not None


def test_model_endpoint(server, trained_home):
    status, body = server.request("GET", "/model")
    assert status == 200
    version = Registry(trained_home).serving_version()
    assert body["model_version"] == version.tag
    assert body["threshold"] == version.threshold
    assert body["features"] == version.metadata["features"]
    assert body["metrics"] == version.metadata["metrics"]
    assert body["created_at"] == version.metadata["created_at"]
    assert body["estimator"] == version.metadata.get("estimator")
    assert body["inference_path"] in EVALUATORS  # a fast path serves the session's model


def test_health_endpoints(server):
    assert server.request("GET", "/livez")[0] == 200
    assert server.request("GET", "/readyz")[0] == 200


def test_metrics_have_our_series(server):
    """BentoML's own metrics are off for speed (service.service); ours are served instead."""
    server.request("POST", "/predict-song", {"data": SONG})
    server.request("POST", "/predict-song", {"data": {}})
    status, text = server.request("GET", "/metrics")
    assert status == 200
    assert 'reggaeton_requests_total{endpoint="/predict-song",status="200"}' in text
    assert 'reggaeton_requests_total{endpoint="/predict-song",status="422"}' in text
    for name in (
        "reggaeton_request_latency_seconds_bucket",
        "reggaeton_predictions_total{",
        "reggaeton_prediction_probability_bucket",
        "reggaeton_prediction_log_queue_depth",
        "reggaeton_prediction_log_write_failures_total",
        "reggaeton_prediction_log_spilled_total",
        "reggaeton_prediction_log_dropped_total",
        "reggaeton_model_info{",
    ):
        assert name in text, name


def test_openapi_documents_the_routes_with_examples(server):
    status, spec = server.request("GET", "/docs.json")
    assert status == 200
    for path, method in (
        ("/predict-song", "post"),
        ("/predict-songs", "post"),
        ("/feedback", "post"),
        ("/model", "get"),
        ("/admin/reload", "post"),
    ):
        assert method in spec["paths"][path], path
    body = spec["paths"]["/predict-song"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("PredictSongRequest")
    song = spec["components"]["schemas"]["Song"]
    assert song["properties"]["danceability"]["maximum"] == 1
    assert "example" in spec["components"]["schemas"]["PredictSongRequest"]


def test_admin_reload_needs_the_token(server):
    assert server.request("POST", "/admin/reload")[0] == 401
    status, body = server.request("POST", "/admin/reload", headers=AUTH)
    assert status == 200 and body["changed"] is False and body["error"] is None


def test_concurrent_requests_are_answered_correctly_each(server):
    """Concurrent requests may share one model call (service.coalesce.Coalescer): every answer
    must still be its own song's, with its own id."""
    from concurrent.futures import ThreadPoolExecutor

    songs = [{**SONG, "danceability": i / 48, "energy": 1 - i / 48} for i in range(48)]
    expected = [
        server.request("POST", "/predict-song", {"data": s})[1]["probability"] for s in songs
    ]
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda s: server.request("POST", "/predict-song", {"data": s}), songs)
        )
    assert [status for status, _ in answers] == [200] * 48
    assert [body["probability"] for _, body in answers] == expected
    assert len({body["request_id"] for _, body in answers}) == 48
    text = server.request("GET", "/metrics")[1]
    assert "reggaeton_requests_per_model_call_bucket" in text


def test_keep_alive_connections_are_recycled_after_their_request_limit(server):
    """HTTP_MAX_REQUESTS_PER_CONNECTION=5 here: the 5th response on one connection says
    ``Connection: close`` and the server closes it; the client's next request reconnects."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"data": SONG})
    seen = []
    try:
        for _ in range(5):
            conn.request("POST", "/predict-song", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            resp.read()
            seen.append(resp.getheader("connection"))
            sock_alive = conn.sock is not None
        assert seen[:4] == [None] * 4
        assert seen[4] == "close" and not sock_alive  # http.client closed it as told
        conn.request("POST", "/predict-song", body, {"Content-Type": "application/json"})
        assert conn.getresponse().status == 200  # a new connection
    finally:
        conn.close()
