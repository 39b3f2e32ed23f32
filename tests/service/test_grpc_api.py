"""gRPC over a real channel: PredictSong, PredictSongs, health, INVALID_ARGUMENT."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from service_helpers import SONG, wait_until

from reggaeton.records.factory import open_store
from reggaeton.schema import FEATURES
from service.grpc import reggaeton_pb2 as pb
from service.grpc import reggaeton_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as chan:
        grpc.channel_ready_future(chan).result(timeout=30)
        yield chan


def _song(**changes):
    values = {k: v for k, v in SONG.items() if k != "id_new"}
    values.update(changes)
    return pb.Song(**{k: v for k, v in values.items() if v is not None})


def test_proto_song_fields_are_the_schema_features():
    assert [f.name for f in pb.Song.DESCRIPTOR.fields] == [f.name for f in FEATURES]


def test_predict_song_matches_http(server, channel):
    stub = pb_grpc.ReggaetonServiceStub(channel)
    answer = stub.PredictSong(pb.PredictSongRequest(data=_song()), timeout=10)
    http = server.request("POST", "/predict-song", {"data": SONG})[1]
    assert answer.probability == http["probability"]
    assert list(answer.prediction) == http["prediction"]
    assert answer.label == http["label"] and answer.model_version == http["model_version"]
    assert answer.request_id and answer.request_id != http["request_id"]
    store = open_store(server.store_uri)
    try:
        row = wait_until(lambda: store.get(answer.request_id), 30, "the gRPC prediction log")
    finally:
        store.close()
    assert row["source"] == "grpc" and row["model_version"] == answer.model_version


def test_predict_songs_in_order(channel):
    stub = pb_grpc.ReggaetonServiceStub(channel)
    songs = [_song(danceability=d / 4) for d in range(5)]
    answer = stub.PredictSongs(pb.PredictSongsRequest(data=songs), timeout=10)
    assert len(answer.results) == 5 and answer.model_version
    singles = [stub.PredictSong(pb.PredictSongRequest(data=s)).probability for s in songs]
    assert [r.probability for r in answer.results] == singles
    assert len({r.request_id for r in answer.results}) == 5


@pytest.mark.parametrize(
    "request_factory,method,details",
    [
        (lambda: pb.PredictSongRequest(data=_song(tempo=301)), "PredictSong", "data.tempo"),
        (lambda: pb.PredictSongRequest(data=_song(energy=None)), "PredictSong", "data.energy"),
        (lambda: pb.PredictSongRequest(data=_song(key=1.5)), "PredictSong", "data.key"),
        (
            lambda: pb.PredictSongRequest(data=_song(loudness=float("nan"))),
            "PredictSong",
            "data.loudness",
        ),
        (lambda: pb.PredictSongRequest(), "PredictSong", "data"),
        (lambda: pb.PredictSongsRequest(), "PredictSongs", "at least 1"),
        (lambda: pb.PredictSongsRequest(data=[_song()] * 51), "PredictSongs", "at most 50"),
        (
            lambda: pb.PredictSongsRequest(data=[_song(), _song(duration=0)]),
            "PredictSongs",
            "data[1].duration",
        ),
    ],
    ids=["range", "missing", "whole-number", "nan", "no-data", "empty", "oversized", "bad-row"],
)
def test_bad_input_is_invalid_argument_naming_the_field(channel, request_factory, method, details):
    stub = pb_grpc.ReggaetonServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, method)(request_factory(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details in info.value.details()


def test_health_service(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "reggaeton.v1.ReggaetonService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
