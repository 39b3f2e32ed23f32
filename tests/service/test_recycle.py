"""Keep-alive connection recycling (service.recycle), on a fake ASGI app and clock."""

from __future__ import annotations

import asyncio

from service.recycle import ConnectionRecycler


async def _app(scope, receive, send):
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"keep-alive")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _call(mw: ConnectionRecycler, client=("127.0.0.1", 5000), version="1.1", kind="http"):
    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": kind, "http_version": version, "client": client}
    asyncio.run(mw(scope, None, send))
    return dict(sent[0]["headers"]) if kind == "http" else sent


def test_the_nth_request_of_a_connection_says_close_and_the_count_restarts():
    mw = ConnectionRecycler(_app, lambda: (3, 0))
    answers = [_call(mw)[b"connection"] for _ in range(7)]
    assert answers == [b"keep-alive", b"keep-alive", b"close"] * 2 + [b"keep-alive"]
    assert mw.recycled == 2


def test_connections_are_counted_separately():
    mw = ConnectionRecycler(_app, lambda: (2, 0))
    assert _call(mw, ("127.0.0.1", 1))[b"connection"] == b"keep-alive"
    assert _call(mw, ("127.0.0.1", 2))[b"connection"] == b"keep-alive"
    assert _call(mw, ("127.0.0.1", 1))[b"connection"] == b"close"
    assert _call(mw, ("127.0.0.1", 2))[b"connection"] == b"close"


def test_an_old_connection_is_closed_by_its_next_response():
    clock = Clock()
    mw = ConnectionRecycler(_app, lambda: (0, 1.0), clock=clock)
    assert _call(mw)[b"connection"] == b"keep-alive"
    clock.now += 0.5
    assert _call(mw)[b"connection"] == b"keep-alive"
    clock.now += 0.6
    headers = _call(mw)
    assert headers[b"connection"] == b"close"
    assert list(headers).count(b"connection") == 1  # replaced, not duplicated


def test_disabled_limits_unknown_clients_and_other_protocols_pass_through():
    for limits in (None, (0, 0)):
        mw = ConnectionRecycler(_app, lambda limits=limits: limits)
        assert all(_call(mw)[b"connection"] == b"keep-alive" for _ in range(5))
    mw = ConnectionRecycler(_app, lambda: (1, 0))
    assert _call(mw, client=None)[b"connection"] == b"keep-alive"
    assert _call(mw, version="1.0")[b"connection"] == b"keep-alive"
    assert _call(mw, version="2")[b"connection"] == b"keep-alive"
    assert mw.recycled == 0


def test_tracked_connections_are_bounded():
    mw = ConnectionRecycler(_app, lambda: (2, 0), max_tracked=3)
    for port in range(10):
        _call(mw, ("127.0.0.1", port))
    assert len(mw._seen) == 3
    # the oldest were forgotten: port 0 starts counting again, port 9 is on its 2nd request
    assert _call(mw, ("127.0.0.1", 0))[b"connection"] == b"keep-alive"
    assert _call(mw, ("127.0.0.1", 9))[b"connection"] == b"close"
