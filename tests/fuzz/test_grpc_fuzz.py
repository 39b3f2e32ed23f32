"""gRPC with malformed messages: raw bytes and hostile values never crash the server."""

from __future__ import annotations

import math

import grpc
import pytest
from e2e import support
from fuzz_strategies import broken_songs, songs
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.grpc import reggaeton_pb2, reggaeton_pb2_grpc

pytestmark = [pytest.mark.slow, pytest.mark.integration]
GRPC = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
METHODS = (
    "/reggaeton.v1.ReggaetonService/PredictSong",
    "/reggaeton.v1.ReggaetonService/PredictSongs",
)
ACCEPTABLE = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
"""Bytes that do not parse as the request message are a client error too (INVALID_ARGUMENT
naming the message), never grpcio's INTERNAL."""


@pytest.fixture(scope="module")
def channel(shared):
    with grpc.insecure_channel(shared.service.grpc_target) as chan:
        grpc.channel_ready_future(chan).result(timeout=30)
        yield chan


def _song_message(song: dict) -> reggaeton_pb2.Song:
    fields = {
        k: float(v)
        for k, v in song.items()
        if k in reggaeton_pb2.Song.DESCRIPTOR.fields_by_name
        and isinstance(v, int | float)
        and not isinstance(v, bool)
    }
    return reggaeton_pb2.Song(**fields)


@GRPC
@given(raw=st.binary(max_size=200), method=st.sampled_from(METHODS))
def test_raw_bytes_get_a_client_error_status_not_a_crash(channel, raw, method):
    call = channel.unary_unary(method)  # no serializers: the bytes go out as they are
    try:
        call(raw, timeout=30)
    except grpc.RpcError as err:
        assert err.code() in ACCEPTABLE, (err.code(), err.details())
        assert err.details().startswith(("data", "message: is not a valid")), err.details()


@pytest.mark.parametrize("method", METHODS)
def test_a_truncated_message_is_invalid_argument(channel, method):
    with pytest.raises(grpc.RpcError) as info:  # field 1, length-delimited, length cut short
        channel.unary_unary(method)(b"\x0a\xff", timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert info.value.details().startswith("message: is not a valid"), info.value.details()


@GRPC
@given(case=broken_songs(numeric_only=True))
def test_a_bad_value_is_invalid_argument_naming_the_field(channel, case):
    song, name = case
    stub = reggaeton_pb2_grpc.ReggaetonServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.PredictSong(reggaeton_pb2.PredictSongRequest(data=_song_message(song)), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"data.{name}" in info.value.details()


@GRPC
@given(batch=st.lists(songs(), min_size=1, max_size=4))
def test_valid_batches_are_scored_in_order(channel, batch):
    stub = reggaeton_pb2_grpc.ReggaetonServiceStub(channel)
    reply = stub.PredictSongs(
        reggaeton_pb2.PredictSongsRequest(data=[_song_message(s) for s in batch]), timeout=30
    )
    assert len(reply.results) == len(batch)
    assert all(0.0 <= r.probability <= 1.0 and not math.isnan(r.probability) for r in reply.results)


def test_server_still_serving_after_the_fuzzing(channel, shared):
    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    stub = reggaeton_pb2_grpc.ReggaetonServiceStub(channel)
    reply = stub.PredictSong(
        reggaeton_pb2.PredictSongRequest(data=_song_message(support.SONG)), timeout=10
    )
    assert reply.label in ("reggaeton", "other")
    assert shared.service.alive()
