"""Every error in the documented JSON shape, every client error a 4xx (never a 503 or a reset).

Its own server, with the default 4 MiB ``MAX_BODY_BYTES``: an over-limit body is then bigger
than the loopback socket buffers, which is what lost the 413 to a connection reset before
``service.bodyguard`` (the client was still sending when the server closed).
"""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request

import grpc
import pytest
from service_helpers import SONG, TOKEN, serve, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LIMIT = 4 * 1024 * 1024
SHAPE = {"error", "detail", "field", "rule"}


@pytest.fixture(scope="module")
def big_server(trained_home, tmp_path_factory):
    work = tmp_path_factory.mktemp("error-shapes")
    with serve(
        trained_home,
        f"sqlite:///{work / 'predictions.db'}",
        work,
        API_TOKEN=TOKEN,
        MAX_BODY_BYTES=str(LIMIT),
    ) as running:  # the default, said explicitly
        yield running


def _requests_total(server, endpoint: str, status: str) -> float:
    text = server.request("GET", "/metrics")[1]
    pattern = (
        rf'^reggaeton_requests_total{{(?=[^}}]*endpoint="{re.escape(endpoint)}")'
        rf'(?=[^}}]*status="{status}")[^}}]*}} (\S+)$'
    )
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def test_an_over_limit_body_gets_its_413_every_time(big_server):
    body = b"x" * (LIMIT + 1)
    outcomes = []
    for _ in range(10):
        req = urllib.request.Request(
            big_server.url + "/predict-song",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                outcomes.append((resp.status, resp.read()))
        except urllib.error.HTTPError as err:
            outcomes.append((err.code, err.read()))
        except OSError as err:  # ECONNRESET / EPIPE: the answer was lost
            outcomes.append(("lost", repr(err)))
    lost = [o for o in outcomes if o[0] != 413]
    assert not lost, f"{len(lost)} of {len(outcomes)} answers lost: {lost}"
    assert all(b'"field":"body"' in o[1] for o in outcomes), outcomes


def test_a_lone_surrogate_request_id_is_a_422_naming_the_field(big_server):
    raw = b'{"request_id": "\\ud800", "label": 1}'
    status, body = big_server.request(
        "POST", "/feedback", raw=raw, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 422, body
    assert set(body) == SHAPE and body["field"] == "request_id", body


@pytest.mark.parametrize(
    ("method", "path", "status", "field"),
    [
        ("POST", "/no-such-route", 404, "path"),
        ("GET", "/no/such/route", 404, "path"),
        ("GET", "/predict-song", 405, "method"),
        ("POST", "/livez", 405, "method"),
    ],
)
def test_routing_errors_are_json(big_server, method, path, status, field):
    got, body = big_server.request(method, path, body={} if method == "POST" else None)
    assert got == status, body
    assert isinstance(body, dict) and set(body) == SHAPE, body
    assert body["field"] == field and body["error"] in ("not_found", "method_not_allowed")


def test_a_client_hanging_up_mid_body_counts_as_499_without_a_traceback(big_server):
    port = int(big_server.url.rsplit(":", 1)[1])
    before = _requests_total(big_server, "/predict-song", "499")
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /predict-song HTTP/1.1\r\nHost: t\r\nContent-Type: "
                b"application/json\r\nContent-Length: 200000\r\n\r\n" + b"[" * 100_000
            )
    wait_until(
        lambda: _requests_total(big_server, "/predict-song", "499") >= before + 3,
        30,
        "three requests counted as 499",
    )
    assert _requests_total(big_server, "/predict-song", "503") == 0
    status, body = big_server.request("POST", "/predict-song", {"data": SONG})
    assert status == 200, body
    assert "ClientDisconnect" not in big_server.logs()
    assert "Traceback" not in big_server.logs()


@pytest.mark.parametrize("method", ["PredictSong", "PredictSongs"])
def test_an_undecodable_grpc_message_is_invalid_argument(big_server, method):
    with grpc.insecure_channel(f"127.0.0.1:{big_server.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        call = channel.unary_unary(f"/reggaeton.v1.ReggaetonService/{method}")
        with pytest.raises(grpc.RpcError) as info:
            call(b"\x0a\xff", timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert info.value.details().startswith("message: is not a valid reggaeton.v1.")
    assert "Traceback" not in big_server.logs()
