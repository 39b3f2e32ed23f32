"""Await the prediction writer's progress from the event loop, without holding a thread.

The writer thread reports how many records it has handled after every batch
(:meth:`service.writer.PredictionWriter.on_progress`); a coroutine waiting for its ticket gets
its future resolved through ``call_soon_threadsafe``. Both ``/feedback`` (a just-answered
prediction must be in the store before it can be found) and the durable mode (a response waits
for its records' group commit) wait this way, so a slow store or a flood of waiting requests
costs futures, not worker threads.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import Callable

from service.writer import PredictionWriter


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class CommitWatch:
    """Futures that resolve once the writer has handled a given ticket.

    Args:
        writer: The worker's prediction writer (registered with it before it starts, so no
            progress is missed).
    """

    def __init__(self, writer: PredictionWriter) -> None:
        self.writer = writer
        self._lock = threading.Lock()
        self._handled = 0
        self._order = itertools.count()
        self._waiting: list[tuple[int, int, Callable[[], None]]] = []
        writer.on_progress(self._progressed)

    def _progressed(self, handled: int) -> None:
        """Writer thread: resolve every future whose ticket is now handled."""
        ready = []
        with self._lock:
            self._handled = max(self._handled, handled)
            while self._waiting and self._waiting[0][0] <= self._handled:
                ready.append(heapq.heappop(self._waiting))
        for _, _, wake in ready:
            wake()

    def _enqueue(self, ticket: int, wake: Callable[[], None]) -> bool:
        """Register ``wake``; False (and nothing registered) when the ticket is handled."""
        with self._lock:
            if self._handled >= ticket:
                return False
            heapq.heappush(self._waiting, (ticket, next(self._order), wake))
            return True

    async def wait(self, ticket: int, timeout: float) -> bool:
        """Wait until every record up to ``ticket`` is handled; False after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def wake() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

        if not self._enqueue(ticket, wake):
            return True
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        return True

    def wait_blocking(self, ticket: int, timeout: float) -> bool:
        """:meth:`wait` for a thread (batch scoring off the loop, gRPC)."""
        done = threading.Event()
        return not self._enqueue(ticket, done.set) or done.wait(timeout)
