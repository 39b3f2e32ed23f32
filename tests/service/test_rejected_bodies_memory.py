"""Memory stays bounded under bodies the app never reads: 413s, unknown routes (404).

Before ``service.bodyguard`` one worker grew from 290 MB to 4 GB in 60 s of 4 MiB+1 bodies at
c=4 (BentoML's uncancelled per-request timeout timer kept the previous request on the
connection, and its unread body, alive for ``traffic.timeout`` seconds).
"""

from __future__ import annotations

import functools

import pytest
from body_load import Tally, keep_alive_client, run_load, worker_processes
from service_helpers import serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LIMIT = 1024 * 1024
"""MAX_BODY_BYTES of this server (1 MiB: more requests per second than 4 MiB, same leak)."""
SECONDS = 60
BOUND_MB = 150
"""The most any worker's RSS may grow over its value before the load."""


def test_worker_memory_stays_bounded_under_rejected_and_unknown_route_bodies(
    trained_home, tmp_path
):
    uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    with serve(trained_home, uri, tmp_path, MAX_BODY_BYTES=str(LIMIT)) as server:
        port = int(server.url.rsplit(":", 1)[1])
        workers = worker_processes(server.proc.pid)
        assert len(workers) == 2, workers
        start = {p.pid: p.memory_info().rss for p in workers}
        over = b"x" * (LIMIT + 1)

        def past_bound(pid: int, rss: int) -> bool:
            return rss - start[pid] > 2 * BOUND_MB << 20

        too_large = Tally()
        big = functools.partial(
            keep_alive_client, port, "POST", "/predict-song", over, tally=too_large
        )
        peak_413 = run_load([big] * 4, SECONDS, workers, past_bound)

        unknown = Tally()
        big_404 = functools.partial(
            keep_alive_client, port, "POST", "/no-such-route", over, tally=unknown
        )
        small_404 = functools.partial(
            keep_alive_client, port, "POST", "/no-such-route", b"{}", tally=unknown
        )
        peak_404 = run_load([big_404, big_404, small_404, small_404], SECONDS, workers, past_bound)

        growth = {pid: max(peak_413[pid], peak_404[pid]) - rss for pid, rss in start.items()}
        report = {
            pid: f"{start[pid] >> 20} MB -> 413 phase {peak_413[pid] >> 20} MB, "
            f"404 phase {peak_404[pid] >> 20} MB"
            for pid in start
        }
        print("worker RSS:", report)  # the numbers, with pytest -s
        assert all(g <= BOUND_MB << 20 for g in growth.values()), report
        assert set(too_large.statuses) == {413} and too_large.statuses[413] > 100, too_large
        assert set(unknown.statuses) == {404} and unknown.statuses[404] > 100, unknown
        assert not too_large.samples and not unknown.samples  # every answer is the JSON shape
        assert server.proc.poll() is None
