"""``/feedback`` with its own bounded concurrency, apart from the threads that score.

A feedback call for an id the store does not hold yet keeps looking for ``FEEDBACK_WAIT_S``
(the prediction may sit in another worker's queue). It used to do so in a thread of the pool
that also scores batches of 256+ rows, so 120 such calls held every thread and a 1,000-row batch
waited seconds. Here the waits are asynchronous (the writer's progress through
:class:`service.commits.CommitWatch`, ``anyio.sleep`` between retries), the store calls run in
at most :data:`FEEDBACK_THREADS` threads of their own limiter, and past :data:`MAX_PENDING`
calls in flight per worker the next one is refused with a 429 in the JSON error shape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from service.commits import CommitWatch
from service.errors import ApiError

FEEDBACK_THREADS = 4
"""Threads one worker's feedback store calls may use at once (the default pool has 40)."""
MAX_PENDING = 256
"""Feedback calls in flight per worker before the next is answered 429 (each costs a future)."""
RETRY_FIRST_S, RETRY_MAX_S = 0.05, 0.4
"""Pause between lookups of a missing id: doubles from the first to the max."""


class FeedbackDesk:
    """Attaches ground truth to logged predictions for the ``/feedback`` route.

    Args:
        commits: The worker writer's progress (a just-answered prediction is written first).
        open_store: Opens the store used for feedback (lazily, in a feedback thread).
        wait_s: Seconds to keep looking for a missing id (``FEEDBACK_WAIT_S``).
        threads: Store calls at once (:data:`FEEDBACK_THREADS`).
        max_pending: Calls in flight before a 429 (:data:`MAX_PENDING`).
    """

    def __init__(
        self,
        commits: CommitWatch,
        open_store: Callable[[], Any],
        wait_s: float,
        threads: int = FEEDBACK_THREADS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.commits, self.open_store, self.wait_s = commits, open_store, wait_s
        self.threads, self.max_pending = threads, max_pending
        self.pending = 0
        self.store: Any = None
        self._open_lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None  # made in the event loop

    async def add(self, request_id: str, label: int) -> bool:
        """Record the label; False when no prediction has that id after ``wait_s``.

        Raises:
            ApiError: 429 when :data:`MAX_PENDING` calls are already in flight.
        """
        if self.pending >= self.max_pending:
            raise ApiError(
                429,
                "too_many_requests",
                f"{self.pending} feedback calls in flight on this worker, retry later",
                "request",
                f"at most {self.max_pending} concurrent feedback calls",
            )
        self.pending += 1  # event-loop thread only: no lock needed
        try:
            await self.commits.wait(self.commits.writer.ticket(), self.wait_s)
            deadline = time.monotonic() + self.wait_s
            pause = RETRY_FIRST_S
            while True:
                if await self._call(self._add, request_id, label):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                await anyio.sleep(min(pause, left))
                pause = min(pause * 2, RETRY_MAX_S)
        finally:
            self.pending -= 1

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _add(self, request_id: str, label: int) -> bool:
        if self.store is None:
            with self._open_lock:
                if self.store is None:
                    self.store = self.open_store()
        return bool(self.store.add_feedback(request_id, label))

    def close(self) -> None:
        """Close the feedback store connection(s)."""
        if self.store is not None:
            self.store.close()
