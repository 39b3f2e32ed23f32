"""Retention of the prediction log, applied by the service's writer thread.

Why the writer: it is the one thread that already writes the log, so pruning adds no lock
contention of its own, and an SQLite log is bounded wherever the service runs (no monitor
CronJob needed). Deletes are bounded (:data:`~reggaeton.records.retention.PRUNE_CHUNK_ROWS`
rows per transaction) and the writer handles its queue between two chunks, so a backlog of
expired rows never stalls the log. A MongoDB store prunes nothing here: its TTL indexes do it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from reggaeton.records.base import RecordStore
from reggaeton.records.retention import PRUNE_CHUNK_ROWS, PRUNE_INTERVAL_S, cutoff

log = logging.getLogger(__name__)


class Pruner:
    """Deletes expired predictions one bounded chunk at a time.

    Args:
        days: Retention in days; 0 disables pruning.
        chunk_rows: Predictions deleted per transaction.
        interval: Seconds between passes once nothing expired is left.
        clock: Monotonic clock (tests).
    """

    def __init__(
        self,
        days: float,
        chunk_rows: int = PRUNE_CHUNK_ROWS,
        interval: float = PRUNE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if days < 0 or chunk_rows < 1 or interval <= 0:
            raise ValueError("retention: days must be >= 0, chunk_rows >= 1, interval > 0")
        self.days, self.chunk_rows, self.interval = days, chunk_rows, interval
        self._clock = clock
        self._next = clock()  # a first pass right after start
        self.more = False  # the last chunk was full: expired rows are probably left
        self._pass_rows = self._pass_chunks = 0

    def due(self) -> bool:
        """Whether :meth:`step` should run now."""
        return self.days > 0 and (self.more or self._clock() >= self._next)

    def step(self, store: RecordStore) -> int:
        """Delete one chunk of expired predictions; never raises (a failure is logged and the
        pass is retried after ``interval``).

        Returns:
            How many predictions were deleted.
        """
        before = cutoff(self.days)
        if before is None:
            return 0
        try:
            n = store.prune(before, self.chunk_rows)
        except Exception as exc:  # noqa: BLE001 - pruning must never stop the log
            log.warning(
                "prediction log: pruning before %s failed (%s: %s); next try in %.0f s",
                before.isoformat(),
                type(exc).__name__,
                exc,
                self.interval,
            )
            self._end_pass()
            return 0
        self._pass_rows += n
        self._pass_chunks += 1
        self.more = n >= self.chunk_rows
        if not self.more:
            if self._pass_rows:
                log.info(
                    "prediction log: pruned %d predictions older than %s (%g days) in %d "
                    "transactions of at most %d rows",
                    self._pass_rows,
                    before.isoformat(),
                    self.days,
                    self._pass_chunks,
                    self.chunk_rows,
                )
            self._end_pass()
        return n

    def _end_pass(self) -> None:
        self.more = False
        self._next = self._clock() + self.interval
        self._pass_rows = self._pass_chunks = 0
