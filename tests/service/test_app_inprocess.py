"""The served API and its OpenAPI description are one table: checked in process (no server).

Every answer, success or error, is validated against the type the document declares for that
route and status, so a handler that drifts from its documentation fails here.
"""

from __future__ import annotations

import jsonschema
import pytest
from pydantic import TypeAdapter
from service_helpers import INPROCESS_BATCH_ROWS, INPROCESS_TOKEN, SONG
from starlette.testclient import TestClient

from service import schemas
from service.app import build_app
from service.errors import ErrorResponse
from service.openapi import build_docs_app
from service.routes import ENDPOINTS, OFFLOAD_ROWS

LIMIT = INPROCESS_BATCH_ROWS
assert LIMIT > OFFLOAD_ROWS  # the big batch below takes the worker-thread path


@pytest.fixture(scope="module")
def client(runtime):
    with TestClient(build_app(lambda: runtime), raise_server_exceptions=True) as test_client:
        yield test_client


def _documented(path: str, method: str):
    return next(e for e in ENDPOINTS if e.path == path and e.method == method)


def _closed(node):
    """A JSON schema in which every object with declared properties allows no other key."""
    if isinstance(node, dict):
        node = {k: _closed(v) for k, v in node.items()}
        if "properties" in node:
            node.setdefault("additionalProperties", False)
    elif isinstance(node, list):
        node = [_closed(v) for v in node]
    return node


def _conforms(body, kind) -> None:
    """``body`` is a ``kind`` as the document publishes it: no missing and no extra key."""
    TypeAdapter(kind).validate_python(body, strict=True)
    jsonschema.validate(body, _closed(TypeAdapter(kind).json_schema()))


def _check(response, path: str, method: str = "POST"):
    """The answer has the status and the body type the document declares for it."""
    endpoint = _documented(path, method)
    other = dict(endpoint.other_answers)
    if response.status_code == 200:
        _conforms(response.json(), endpoint.answer)
    elif response.status_code in other:
        _conforms(response.json(), other[response.status_code])
    else:
        assert response.status_code in endpoint.errors, (path, response.status_code)
        _conforms(response.json(), ErrorResponse)
    return response.json()


def test_the_document_lists_exactly_the_documented_routes():
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(title="t", version="0", routes=build_docs_app(LIMIT).routes)
    documented = {(p, m.upper()) for p, item in doc["paths"].items() for m in item}
    assert documented == {(e.path, e.method) for e in ENDPOINTS if e.answer is not None}
    body = doc["components"]["schemas"]["PredictSongsRequest"]["properties"]["data"]
    assert body["maxItems"] == LIMIT  # the limit the server enforces, not a copy


def test_answers_match_their_documented_types(client):
    one = _check(client.post("/predict-song", json={"data": SONG}), "/predict-song")
    many = _check(client.post("/predict-songs", json={"data": [SONG] * 3}), "/predict-songs")
    assert [r["probability"] for r in many["results"]] == [one["probability"]] * 3
    big = _check(client.post("/predict-songs", json={"data": [SONG] * LIMIT}), "/predict-songs")
    assert big["count"] == LIMIT  # the worker-thread path
    _check(client.get("/model"), "/model", "GET")
    _check(
        client.post("/admin/reload", headers={"Authorization": f"Bearer {INPROCESS_TOKEN}"}),
        "/admin/reload",
    )


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/predict-song", {"data": {**SONG, "tempo": 301}}, 422, "data.tempo"),
        ("/predict-song", {"data": [SONG]}, 422, "data"),
        ("/predict-songs", {"data": []}, 422, "data"),
        ("/predict-songs", {"data": [SONG] * (LIMIT + 1)}, 422, "data"),
        ("/predict-songs", {"data": [SONG] * 20 + [{**SONG, "mode": 2}]}, 422, "data[20].mode"),
        ("/predict-songs", {"data": [SONG] * 290 + [{**SONG, "key": "C"}]}, 422, "data[290].key"),
        ("/predict-songs", b"[", 400, "body"),
        ("/feedback", {"request_id": "x", "label": 1}, 401, "Authorization"),
    ],
)
def test_errors_match_the_documented_shape(client, path, body, status, field):
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = client.post(path, **sent)
    assert response.status_code == status, response.text
    assert _check(response, path)["field"] == field


def test_the_batch_limit_in_the_document_is_the_one_enforced(client):
    model = schemas.predict_songs_request(LIMIT)
    TypeAdapter(model).validate_python({"data": [SONG] * LIMIT})
    with pytest.raises(ValueError):
        TypeAdapter(model).validate_python({"data": [SONG] * (LIMIT + 1)})
    assert client.post("/predict-songs", json={"data": [SONG] * (LIMIT + 1)}).status_code == 422


def test_a_refused_reload_is_the_documented_409(client, runtime):
    config = runtime.config
    runtime.config = config.model_copy(update={"model_tag": "reggaeton_clf:doesnotexist"})
    try:
        auth = {"Authorization": f"Bearer {INPROCESS_TOKEN}"}
        response = client.post("/admin/reload", headers=auth)
    finally:
        runtime.config = config
    assert response.status_code == 409, response.text
    assert _check(response, "/admin/reload")["error"]
    assert client.post("/predict-song", json={"data": SONG}).status_code == 200  # still serving
