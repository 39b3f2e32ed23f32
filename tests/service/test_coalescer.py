"""Concurrent requests are merged into one model call and still answered one by one."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from service_helpers import SONG

from service.coalesce import Coalescer
from service.runtime import NotReady, ScoreJob
from service.validation import validate_rows


class FakeRuntime:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def score_many(self, jobs):
        self.calls.append(len(jobs))
        if self.fail:
            raise self.fail
        return [[{"source": job.source, "rows": len(job.validated)}] for job in jobs]

    async def committed(self, job) -> None:  # the default (async) durability: no wait
        return None


def _job(rows: int, source: str = "http") -> ScoreJob:
    return ScoreJob(np.zeros((rows, 3)), source, time.perf_counter())


def test_requests_of_one_loop_iteration_share_one_model_call():
    fake = FakeRuntime()
    coalescer = Coalescer(lambda: fake)

    async def main():
        return await asyncio.gather(*(coalescer.score(_job(i + 1)) for i in range(10)))

    answers = asyncio.run(main())
    assert fake.calls == [10]
    assert [a[0]["rows"] for a in answers] == list(range(1, 11))


def test_an_error_reaches_every_merged_request():
    coalescer = Coalescer(lambda: FakeRuntime(fail=NotReady("no model")))

    async def main():
        return await asyncio.gather(
            *(coalescer.score(_job(1)) for _ in range(3)), return_exceptions=True
        )

    assert all(isinstance(a, NotReady) for a in asyncio.run(main()))


def test_merged_scoring_equals_separate_scoring(runtime):
    songs = [{**SONG, "danceability": d / 20} for d in range(20)]
    jobs = [
        ScoreJob(validate_rows([s], offset_index=False), "http", time.perf_counter())
        for s in songs[:5]
    ]
    jobs.append(ScoreJob(validate_rows(songs[5:]), "batch", time.perf_counter(), batch=True))
    merged = runtime.score_many(jobs)
    separate = [runtime.score(j.validated, j.source, j.started, j.batch) for j in jobs]
    assert [len(m) for m in merged] == [1, 1, 1, 1, 1, 15]
    for got, expected in zip(merged, separate, strict=True):
        assert [r["probability"] for r in got] == [r["probability"] for r in expected]
        assert [r["label"] for r in got] == [r["label"] for r in expected]
    ids = [r["request_id"] for m in merged for r in m]
    assert len(set(ids)) == len(ids)
    assert runtime.writer.flush(10)
