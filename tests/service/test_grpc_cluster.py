"""gRPC as a cluster sees it: calls of one long-lived client spread over the server's worker
processes (connection age + SO_REUSEPORT in every worker), and a server whose gRPC port could
not be bound is never ready."""

from __future__ import annotations

import shutil
import socket
import time

import grpc
import pytest
from service_helpers import SONG, free_port, serve, wait_until

from service.grpc import reggaeton_pb2 as pb
from service.grpc import reggaeton_pb2_grpc as pb_grpc
from service.grpc.server import SERVED_BY

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _home(trained_home, tmp_path):
    """A private copy of the session's model store: ``bentoml serve`` keeps its Prometheus
    multiprocess dir under BENTOML_HOME and clears it at start, which would wipe the metrics of
    the shared session server."""
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    return home


def _request() -> pb.PredictSongRequest:
    return pb.PredictSongRequest(data=pb.Song(**{k: v for k, v in SONG.items() if k != "id_new"}))


def test_calls_of_one_channel_reach_more_than_one_worker(trained_home, tmp_path):
    uri = f"sqlite:///{tmp_path / 'p.db'}"
    with (
        serve(
            _home(trained_home, tmp_path),
            uri,
            tmp_path,
            GRPC_MAX_CONNECTION_AGE_S="1",
            GRPC_MAX_CONNECTION_AGE_GRACE_S="1",
        ) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        stub = pb_grpc.ReggaetonServiceStub(channel)
        seen: dict[str, int] = {}
        calls = 0

        def call_and_count() -> bool:
            nonlocal calls
            _, rpc = stub.PredictSong.with_call(_request(), timeout=10)
            calls += 1
            served_by = dict(rpc.trailing_metadata())[SERVED_BY]
            seen[served_by] = seen.get(served_by, 0) + 1
            return len(seen) > 1

        # one call every 50 ms on ONE channel; every call must succeed across the reconnects
        try:
            wait_until(call_and_count, 40, "calls to reach a second worker", interval=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {calls} calls, all answered by {seen}") from None
        assert all(value.rsplit("/", 1)[1] in ("1", "2") for value in seen), seen
        print(f"{calls} calls over one channel reached {len(seen)} workers: {seen}")


def test_not_ready_while_another_socket_holds_the_grpc_port(trained_home, tmp_path):
    port = free_port()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()  # accepts TCP connections: a port probe alone would call this ready
    try:
        uri = f"sqlite:///{tmp_path / 'p.db'}"
        with serve(
            _home(trained_home, tmp_path), uri, tmp_path, wait_ready=False, GRPC_PORT=str(port)
        ) as server:

            def model_loaded() -> bool:
                try:
                    return (
                        server.request("POST", "/predict-song", {"data": SONG}, timeout=5)[0] == 200
                    )
                except OSError:
                    return False

            wait_until(model_loaded, 120, "HTTP predictions (the model is loaded)")
            statuses = []
            for _ in range(20):  # new connections: each worker answers some of them
                statuses.append(server.request("GET", "/readyz", timeout=5)[0])
                time.sleep(0.1)
            assert set(statuses) == {503}, statuses
            assert "gRPC server could not start" in server.logs()
    finally:
        squatter.close()
