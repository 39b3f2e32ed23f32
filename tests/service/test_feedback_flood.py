"""A flood of slow /feedback calls must not starve the scoring of large batches.

A feedback call for an unknown request id waits ``FEEDBACK_WAIT_S`` (a prediction answered by
the other worker may still be in that worker's queue). Batches of 256+ rows are scored in a
worker thread. Both used to share the worker's one thread pool, so a flood of unknown-id
feedback held every thread and a 1,000-row batch waited seconds for one.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from service_helpers import SONG, TOKEN, Server, serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLOOD = 120
"""Concurrent unknown-id feedback calls (the issue's reproduction)."""
ROWS = 1_000
ROUNDS = 6


def _batch_seconds(server: Server, rounds: int) -> list[float]:
    body = {"data": [dict(SONG, popularity=i % 100) for i in range(ROWS)]}
    took = []
    for _ in range(rounds):
        start = time.perf_counter()
        status, answer = server.request("POST", "/predict-songs", body, timeout=60)
        took.append(time.perf_counter() - start)
        assert status == 200, answer
    return took


def _flood(server: Server, stop: threading.Event, statuses: Counter, lock: threading.Lock) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    n = 0
    while not stop.is_set():
        n += 1
        body = f'{{"request_id": "no-such-id-{threading.get_ident()}-{n}", "label": 1}}'
        req = urllib.request.Request(
            server.url + "/feedback",
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        except OSError:
            status = -1
        with lock:
            statuses[status] += 1


def test_a_feedback_flood_does_not_starve_large_batches(trained_home, tmp_path):
    """Worst 1,000-row batch under the flood < max(1.0 s, 5 x the unflooded worst).

    Why this bound: unflooded, a 1,000-row batch takes ~0.1 s here; starved, it took 5 s (the
    flood's threads each wait FEEDBACK_WAIT_S plus a flush). 5x the baseline measured in the same
    test, with a 1 s floor, leaves room for the flood's own CPU use on a shared 2-core machine,
    yet is far below a starved batch (FEEDBACK_WAIT_S = 2 s plus queueing behind the flood). Not
    a micro-timing assertion: it tells "waits for a thread held by a sleeping feedback call"
    from "scored at once".
    """
    uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    with serve(trained_home, uri, tmp_path, API_TOKEN=TOKEN, FEEDBACK_WAIT_S="2") as server:
        _batch_seconds(server, 2)  # warm-up
        baseline = max(_batch_seconds(server, ROUNDS))

        stop, lock, statuses = threading.Event(), threading.Lock(), Counter()
        flood = [
            threading.Thread(target=_flood, args=(server, stop, statuses, lock), daemon=True)
            for _ in range(FLOOD)
        ]
        for thread in flood:
            thread.start()
        try:
            time.sleep(3.0)  # every flood call is now waiting on the server
            flooded = _batch_seconds(server, ROUNDS)
        finally:
            stop.set()
            for thread in flood:
                thread.join(90)
        worst = max(flooded)
        bound = max(1.0, 5 * baseline)
        print(
            f"\n1,000-row batch: worst {baseline:.3f} s unflooded, {worst:.3f} s under "
            f"{FLOOD} concurrent unknown-id feedback calls (bound {bound:.2f} s); "
            f"feedback answers: {dict(statuses)}"
        )
        assert sum(statuses.values()) >= FLOOD, "the flood did not run"
        assert set(statuses) <= {404, 429, 503}, statuses  # refused in the JSON shape, not hung
        assert statuses[404] > 0, "feedback must still be answered under the flood"
        assert worst < bound, f"scoring starved by feedback: {flooded}"

        # A known id is still found while nothing floods.
        status, answer = server.request("POST", "/predict-song", {"data": SONG})
        assert status == 200, answer
        status, answer = server.request(
            "POST",
            "/feedback",
            {"request_id": answer["request_id"], "label": 1},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert status == 200, answer
