"""Merge concurrent scoring requests into one model call (the adaptive-batching equivalent)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from service.runtime import Runtime, ScoreJob


class Coalescer:
    """Merges the scoring of requests that reach the same event-loop iteration.

    The adaptive-batching equivalent: a request appends its validated rows and waits; the first
    one schedules a flush with ``call_soon``, which runs after every other handler that became
    ready in the same iteration, so concurrent requests share one model call without any added
    wait (no ``max_latency`` timer, nothing to tune, no 503). Each request is still answered and
    logged on its own; validation errors never reach the merge.
    """

    def __init__(self, get_runtime: Callable[[], Runtime]) -> None:
        self.get_runtime = get_runtime
        self._pending: list[tuple[ScoreJob, asyncio.Future]] = []

    async def score(self, job: ScoreJob) -> list[dict[str, Any]]:
        """Score one request, possibly together with others."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((job, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        answer = await future
        await self.get_runtime().committed(job)  # durable mode only: its group commit
        return answer

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        try:
            answers = self.get_runtime().score_many([job for job, _ in pending])
        except Exception as exc:  # noqa: BLE001 - every merged request gets the error
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(pending, answers, strict=True):
            if not future.done():
                future.set_result(answer)
