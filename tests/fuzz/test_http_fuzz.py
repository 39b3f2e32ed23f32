"""Hypothesis over the HTTP endpoints: the server agrees with the shared schema, field by field."""

from __future__ import annotations

import pytest
import requests
from fuzz_strategies import broken_songs, json_values, songs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.slow, pytest.mark.integration]
HTTP = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _post(shared, path: str, payload) -> requests.Response:
    # allow_nan: NaN/Infinity are sent as the bare tokens a sloppy client would send
    import json

    data = json.dumps(payload, allow_nan=True)
    return requests.post(
        f"{shared.url}{path}", data=data, timeout=30, headers={"Content-Type": "application/json"}
    )


@HTTP
@given(song=songs())
def test_valid_songs_are_scored(shared, song):
    resp = _post(shared, "/predict-song", {"data": song})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert 0.0 <= body["probability"] <= 1.0
    assert body["prediction"] in ([0.0], [1.0])
    assert body["label"] == ("reggaeton" if body["prediction"] == [1.0] else "other")


@HTTP
@given(case=broken_songs())
def test_one_bad_field_gets_a_422_naming_it(shared, case):
    song, name = case
    resp = _post(shared, "/predict-song", {"data": song})
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == f"data.{name}"


@HTTP
@given(good=st.lists(songs(), min_size=1, max_size=5), case=broken_songs(), where=st.integers(0, 5))
def test_a_bad_row_in_a_batch_is_named_by_index(shared, good, case, where):
    song, name = case
    where = min(where, len(good))
    batch = good[:where] + [song] + good[where:]
    resp = _post(shared, "/predict-songs", {"data": batch})
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == f"data[{where}].{name}"


@HTTP
@given(payload=json_values)
def test_arbitrary_json_bodies_never_cause_a_server_error(shared, payload):
    for path in ("/predict-song", "/predict-songs"):
        resp = _post(shared, path, payload)
        assert resp.status_code < 500, resp.text
        if resp.status_code != 200:
            assert resp.json()["field"], resp.text


@HTTP
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_get_a_4xx_naming_the_problem(shared, raw):
    resp = requests.post(
        f"{shared.url}/predict-song",
        data=raw,
        timeout=30,
        headers={"Content-Type": "application/json"},
    )
    assert 400 <= resp.status_code < 500, resp.text  # random bytes are never a valid song
    assert resp.json()["field"]
