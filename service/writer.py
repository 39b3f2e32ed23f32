"""Background prediction-log writer: a prediction never waits for, or fails because of, the store.

``submit_ticketed`` appends one request's :class:`~reggaeton.records.base.PredictionBatch` (its
predictions as arrays: one object per request, not per row) or some records to a bounded
in-memory queue (a lock and a deque append). One background thread drains it in batches
(``batch_size`` rows or every ``flush_interval`` seconds) into the store with the idempotent
``write_batches`` (one transaction, columns bound as they are); when the queue is backlogged it
takes up to ``max_batch`` rows at once (default 10 x ``batch_size``), so the per-transaction cost is
spread over more records exactly when the store falls behind. When a write fails, the batch
goes to an append-only spill file (JSON lines, fsync'd); while the spill holds records, newer
batches are appended behind them, so order is kept. The thread probes the store with ``ping``
(exponential backoff) and, once it answers, replays the spill in file order with
:func:`service.spill.replay` (the same loop as the operators' CLI) and truncates it only after a
complete replay (re-sent rows are skipped by the store, so there are no duplicates). Counts
(``max_queue``, tickets, stats) are in rows.

Delivery guarantee (the deliberate choice): a record is acknowledged once it is in memory.
Whatever the store does, it ends up in the store, in the spill file (durable, replayed later),
or counted in ``dropped`` and logged (spill disk full, unwritable or at its size cap
``spill_max_bytes``, a crashed spill line).
When the queue is full (a store slower than the traffic) or the writer is closing, the
submitting thread appends the records to the spill file itself instead of dropping them.
A clean ``close()`` flushes the queue and tries a last replay. A hard kill (SIGKILL, OOM,
power loss) loses the bounded window still in memory: the queued records (at most
``max_queue``) plus the batch being written. There is no per-record commit: one per prediction
would cost more than the prediction itself. The durable mode (``PREDICTION_LOG_DURABILITY=sync``)
is a group commit instead: the service runs the writer with a flush interval of a few ms and
answers a request once ``handled(ticket)`` holds for the ticket ``submit_ticketed`` gave its
records (:mod:`service.commits`), so every acknowledged record is committed, or in the fsync'd
spill. Callers that need a record to be in the store before going on (``/feedback`` on a
just-answered request) call ``flush()`` or wait for ``ticket()``.

Operators replay a spill file by hand with
``python -m service.writer replay --spill var/spill/predictions.jsonl --store sqlite:///var/x.db``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from reggaeton.records.base import (
    LogEntry,
    PredictionBatch,
    PredictionRecord,
    RecordStore,
    entry_rows,
)
from service.retention import Pruner
from service.spill import (
    ReplayResult,
    SpillFile,
    main,
    rejected_path,
    replay,
    rows_of,
    write_or_reject,
)

log = logging.getLogger(__name__)

DEFAULT_SPILL_PATH = Path("var/spill/predictions.jsonl")

__all__ = ["DEFAULT_SPILL_PATH", "PredictionWriter", "main"]


class PredictionWriter:
    """Batched, non-blocking writer from the service to a :class:`RecordStore`.

    Args:
        store_factory: Opens the store; called lazily in the writer thread (the store may be
            down at start) and again after a failed open.
        spill_path: Spill file (JSON lines), e.g. ``var/spill/predictions.jsonl``. Records the
            store refuses for their content go to ``<spill_path>.rejected.jsonl``.
        max_queue: Rows held in memory at most; more go to the spill file from the caller.
        batch_size: Rows per store write in steady state (a full batch wakes the thread).
        max_batch: Rows per store write at most when the queue is backlogged (default
            ``10 * batch_size``).
        flush_interval: Seconds a partial batch may wait before it is written.
        backoff: (first, max) seconds between store probes after a failure (doubling).
        fsync_spill: fsync every spill append (default) so spilled records survive a crash.
        retention: Deletes expired predictions between batches (:mod:`service.retention`);
            None keeps everything.
        spill_max_bytes: Cap of the spill file (and of the rejects file); records that would
            take it past the cap are dropped and counted in ``spill_full``. None: no cap.
        drain_s: At ``close()``, keep retrying the replay of a non-empty spill for up to this
            many seconds while the store is down (0: one last try). In a pod the spill lives
            on an emptyDir that a deletion removes, so this is the last chance of its records.
    """

    def __init__(
        self,
        store_factory: Callable[[], RecordStore],
        spill_path: Path,
        max_queue: int = 100_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        backoff: tuple[float, float] = (0.5, 30.0),
        fsync_spill: bool = True,
        max_batch: int | None = None,
        retention: Pruner | None = None,
        spill_max_bytes: int | None = None,
        drain_s: float = 0.0,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or flush_interval <= 0 or drain_s < 0:
            raise ValueError(
                "max_queue and batch_size must be >= 1, flush_interval > 0, drain_s >= 0"
            )
        self.drain_s = drain_s
        self.max_batch = max(batch_size, max_batch if max_batch is not None else 10 * batch_size)
        self.store_factory = store_factory
        self.spill = SpillFile(spill_path, fsync=fsync_spill, max_bytes=spill_max_bytes)
        self.rejects = SpillFile(
            rejected_path(Path(spill_path)), fsync=fsync_spill, max_bytes=spill_max_bytes
        )
        self.pruner = retention
        self.max_queue, self.batch_size, self.flush_interval = max_queue, batch_size, flush_interval
        self.backoff = backoff
        self._queue: collections.deque[LogEntry] = collections.deque()
        self._queued = 0  # rows in the queue
        lock = threading.Lock()
        self._wake = threading.Condition(lock)  # the writer thread waits on it
        self._progress = threading.Condition(lock)  # flush() waits on it
        self._thread: threading.Thread | None = None
        self._closing = False
        self._flushers = 0
        self._store: RecordStore | None = None
        self._delay = backoff[0]
        self._next_probe = 0.0
        self._pending = self.spill.size() > 0  # a spill left by an earlier run is replayed
        # The last store operation failed (an outage, not an overflow); a spill left by an
        # earlier run counts as one, so it is replayed before anything newer is written.
        self._store_failed = self._pending
        self._replay_offset = 0  # bytes of the spill file already replayed
        self._submitted = self._processed = 0
        self._listeners: list[Callable[[int], None]] = []
        self._counts = dict.fromkeys(
            (
                "written",
                "inserted",
                "write_failures",
                "probe_failures",
                "spilled",
                "overflowed",
                "replayed",
                "rejected",
                "dropped",
                "spill_full",
                "pruned",
            ),
            0,
        )
        self._last_drop_log = self._last_overflow_log = 0.0

    # -- producer side (request threads) -----------------------------------------------------
    def start(self) -> PredictionWriter:
        """Start the background thread (idempotent)."""
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="prediction-writer", daemon=True
                )
                self._thread.start()
        return self

    def submit(self, record: PredictionRecord) -> bool:
        """Queue one record without blocking (see :meth:`submit_many` when the queue is full).

        Returns:
            False when the record could not be recorded at all (counted in ``dropped``).
        """
        return self.submit_many([record]) == 1

    def submit_many(self, records: Iterable[LogEntry]) -> int:
        """Queue records without blocking on the store.

        Records the queue cannot take (it is full because the store is slower than the
        traffic, or the writer is closing) are appended to the spill file from the caller's
        thread and replayed like any spill: the request that outran the store pays a file
        append, no record is lost. Only when the spill file cannot be written either are
        they dropped (counted in ``dropped``, logged).

        Returns:
            How many records were accepted (queued or spilled).
        """
        return self.submit_ticketed(records)[0]

    def submit_ticketed(self, records: PredictionBatch | Iterable[LogEntry]) -> tuple[int, int]:
        """:meth:`submit_many`, also returning a ticket for :meth:`handled`.

        Args:
            records: One request's batch (the service's path: one queue entry for all its
                rows), or records and batches.

        Returns:
            (rows accepted, ticket): once ``handled(ticket)``, every row queued here is in the
            store or in the fsync'd spill (or counted in ``dropped``); rows the full queue
            sent to the spill are there already on return.
        """
        entries = [records] if isinstance(records, PredictionBatch) else list(records)
        sizes = [entry_rows(e) for e in entries]
        with self._wake:
            room = 0 if self._closing else max(0, self.max_queue - self._queued)
            taken = rows = 0
            for size in sizes:  # whole entries, in order, while they fit
                if rows + size > room:
                    break
                rows += size
                taken += 1
            self._queue.extend(entries[:taken])
            self._queued += rows
            self._submitted += rows
            ticket = self._submitted
            if self._queued >= self.batch_size:
                self._wake.notify()
            reason = "writer closed" if self._closing else "queue full"
        if taken == len(entries):
            return rows, ticket
        return rows + self._overflow(entries[taken:], reason), ticket

    def ticket(self) -> int:
        """Ticket of everything submitted so far; wakes the writer to write it now."""
        with self._wake:
            self._wake.notify()
            return self._submitted

    def handled(self, ticket: int) -> bool:
        """True once every record up to ``ticket`` left the queue (stored, spilled, dropped)."""
        with self._wake:
            return self._processed >= ticket

    def on_progress(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(handled records so far)`` from the writer thread after each batch
        (:class:`service.commits.CommitWatch` wakes coroutines with it). It must not block."""
        self._listeners.append(listener)

    def _overflow(self, records: list[LogEntry], reason: str) -> int:
        """Spill entries the queue could not take (caller's thread); returns how many rows."""
        try:
            encoded = self.spill.encode(records)  # outside the lock
            # Under the writer lock: "the spill holds records" and the append are one step
            # for the replay, which empties the file under the same lock.
            with self._wake:
                n = self.spill.append(records, encoded)
                self._counts["spilled"] += n
                self._counts["overflowed"] += n
                self._pending = self._pending or n > 0
                self._wake.notify()
        except OSError as exc:
            self._count(dropped=rows_of(records))
            self._log_drop(
                rows_of(records), f"{reason} and spill file unwritable: {exc}", force=True
            )
            return 0
        if n < rows_of(records):
            self._spill_full(rows_of(records) - n, reason)
            return n
        now = time.monotonic()
        if now - self._last_overflow_log >= 5.0:  # every record counted; log throttled
            self._last_overflow_log = now
            log.warning(
                "prediction log: %s, %d records spilled to %s by the request thread "
                "(replayed when the writer catches up); %d so far (logged at most "
                "every 5 s)",
                reason,
                n,
                self.spill.path,
                self._counts["overflowed"],
            )
        return n

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every record submitted so far is in the store (or refused/dropped).

        Returns:
            True when they all are; False on timeout (e.g. the store is down and they sit in
            the spill file until it answers again) or when the writer is not running.
        """
        deadline = time.monotonic() + timeout
        with self._progress:
            target = self._submitted
            self._flushers += 1
            self._wake.notify()
            try:
                return bool(
                    self._progress.wait_for(
                        lambda: (
                            (self._processed >= target and not self._pending)
                            or self._thread is None
                            or not self._thread.is_alive()
                        ),
                        timeout=max(0.0, deadline - time.monotonic()),
                    )
                    and self._processed >= target
                    and not self._pending
                )
            finally:
                self._flushers -= 1

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, write (or spill) the queue, replay the spill (retrying for up to
        ``drain_s`` while the store is down), close the store. ``timeout`` bounds the wait for
        all of it: give it more than ``drain_s``."""
        self.start()
        with self._wake:
            self._closing = True
            self._wake.notify()
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error(
                "prediction writer: close() timed out after %.1f s with %d records "
                "still queued (lost if the process exits now)",
                timeout,
                self._queued,
            )
        stats = self.stats()
        level = logging.ERROR if stats["dropped"] or stats["spill_pending"] else logging.INFO
        log.log(level, "prediction writer closed: %s", stats)

    def stats(self) -> dict[str, Any]:
        """Counters since start.

        Keys: ``queue_depth``; ``written`` (records the store accepted, replays included);
        ``inserted`` (of those, new to the store); ``write_failures`` (failed batch writes);
        ``probe_failures``; ``spilled`` (records appended to the spill file); ``overflowed``
        (of those, records the full queue sent there from the request thread); ``replayed``
        (records sent from the spill file); ``rejected`` (records the store refused for their
        content, kept in the ``.rejected.jsonl`` file); ``dropped`` (records lost: spill
        unwritable or full while the store is down or the queue full, unreadable spill line);
        ``spill_full`` (of those, records the spill's size cap refused); ``pruned``
        (predictions deleted by the retention);
        ``spill_pending``;
        ``spill_bytes``.
        """
        with self._wake:
            out: dict[str, Any] = {"queue_depth": self._queued, **self._counts}
            out["spill_pending"] = self._pending
        out["spill_bytes"] = self.spill.size()
        return out

    def _count(self, **deltas: int) -> None:
        with self._wake:
            for key, n in deltas.items():
                self._counts[key] += n

    def _log_drop(self, n: int, reason: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_drop_log >= 5.0:  # every loss counted; log throttled
            self._last_drop_log = now
            log.error(
                "prediction log: %d records dropped (%s); %d dropped in total so far "
                "(further drops are logged at most every 5 s)",
                n,
                reason,
                self._counts["dropped"],
            )

    # -- writer thread -----------------------------------------------------------------------
    def _take(self, wait: bool = True) -> tuple[list[LogEntry], bool]:
        """Entries holding up to ``max_batch`` rows (at least one entry), and whether the
        writer is closing with nothing left."""
        with self._wake:
            if (
                wait
                and self._queued < self.batch_size
                and not self._closing
                and not (self._flushers and self._queue)
            ):
                self._wake.wait(self.flush_interval)
            queue, batch, rows = self._queue, [], 0
            while queue and (not batch or rows + entry_rows(queue[0]) <= self.max_batch):
                entry = queue.popleft()  # a backlog goes in bigger batches
                batch.append(entry)
                rows += entry_rows(entry)
            self._queued -= rows
            return batch, self._closing and not self._queue

    def _done(self, n: int) -> None:
        with self._progress:
            self._processed += n
            processed = self._processed
            self._progress.notify_all()
        for listener in self._listeners:
            listener(processed)

    def _run(self) -> None:
        finished = False
        while not finished:
            batch: list[LogEntry] = []
            try:
                if self._pending and (finished or time.monotonic() >= self._next_probe):
                    self._replay()
                pruning = self.pruner is not None and not self._store_failed
                batch, finished = self._take(wait=not (pruning and self.pruner.more))
                if batch:
                    self._handle(batch)
                if pruning and not finished and self.pruner.due():
                    self._count(pruned=self.pruner.step(self._get_store()))  # one chunk
                if finished and self._pending:
                    self._drain()  # last chance before shutdown
            except Exception:  # noqa: BLE001 - the writer thread must survive anything
                log.exception("prediction writer: unexpected error (continuing)")
                if batch:
                    self._spill_or_drop(batch)
                self._next_probe = time.monotonic() + self._delay
                time.sleep(self.flush_interval)
            finally:
                self._done(rows_of(batch))
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001 - shutdown must not raise
                log.exception("prediction writer: closing the store failed")
        with self._progress:
            self._progress.notify_all()

    def _get_store(self) -> RecordStore:
        if self._store is None:
            self._store = self.store_factory()
        return self._store

    def _failed(self, what: str, exc: BaseException) -> None:
        self._store_failed = True
        self._count(**{"probe_failures" if what == "probe" else "write_failures": 1})
        self._next_probe = time.monotonic() + self._delay
        log.warning(
            "prediction log: %s failed (%s: %s); spilling, next try in %.1f s",
            what,
            type(exc).__name__,
            exc,
            self._delay,
        )
        self._delay = min(self._delay * 2, self.backoff[1])

    def _write(self, records: list[LogEntry], replay: bool) -> int:
        """Write to the store (raises when it is unavailable); refused rows go aside.

        Returns:
            Rows newly inserted.
        """
        inserted, rejected = write_or_reject(self._get_store(), records)
        refused = rows_of(rejected)
        if rejected:
            try:
                if (n := self.rejects.append(rejected)) < refused:
                    self._spill_full(refused - n, "refused by the store")
            except OSError as exc:
                self._count(dropped=refused)
                self._log_drop(refused, f"rejects file unwritable: {exc}", force=True)
            log.error(
                "prediction log: %d records refused by the store, kept in %s",
                refused,
                self.rejects.path,
            )
        accepted = rows_of(records) - refused
        self._count(
            written=accepted,
            inserted=inserted,
            rejected=refused,
            replayed=accepted if replay else 0,
        )
        return inserted

    def _handle(self, batch: list[LogEntry]) -> None:
        # After a store failure, while the spill holds records, newer ones go behind them
        # (order); if the spill cannot be written, a direct write out of order still beats
        # losing them. When the spill only holds a full queue's overflow, the store is up:
        # write directly (no second trip through the file) and replay the spill in between.
        if (not self._pending or not self._store_failed) and self._try_write(batch):
            return
        if self._to_spill(batch) or (self._pending and self._try_write(batch)):
            return
        self._count(dropped=rows_of(batch))
        self._log_drop(rows_of(batch), "store unavailable and spill file unwritable", force=True)

    def _try_write(self, batch: list[LogEntry]) -> bool:
        try:
            self._write(batch, replay=False)
        except Exception as exc:  # noqa: BLE001 - any store error means "spill"
            self._failed("write", exc)
            return False
        self._delay = self.backoff[0]
        self._store_failed = False
        return True

    def _to_spill(self, batch: list[LogEntry]) -> bool:
        """Spill a batch; True when every row is in the file or counted as capped."""
        try:
            n = self.spill.append(batch)
        except OSError as exc:
            log.error("prediction log: spill file %s unwritable: %s", self.spill.path, exc)
            return False
        with self._wake:
            self._counts["spilled"] += n
            self._pending = self._pending or n > 0
        if n < rows_of(batch):
            self._spill_full(rows_of(batch) - n, "store unavailable")
        return True

    def _spill_full(self, n: int, reason: str) -> None:
        """Count records the spill's size cap refused (lost, ``dropped`` and ``spill_full``)."""
        self._count(dropped=n, spill_full=n)
        self._log_drop(
            n,
            f"{reason} and spill file at its cap of {self.spill.max_bytes} bytes, "
            "PREDICTION_SPILL_MAX_BYTES",
        )

    def _spill_or_drop(self, batch: list[LogEntry]) -> None:
        if not self._to_spill(batch):
            self._count(dropped=rows_of(batch))
            self._log_drop(rows_of(batch), "spill file unwritable", force=True)

    def _drain(self) -> None:
        """Replay the spill at shutdown; while the store is down, retry every first-backoff
        interval until ``drain_s`` has passed (a short outage during a rollout then loses
        nothing)."""
        deadline = time.monotonic() + self.drain_s
        self._replay()
        while self._pending and time.monotonic() < deadline:
            time.sleep(min(self.backoff[0], max(0.0, deadline - time.monotonic())))
            self._replay()
        if self._pending:
            log.error(
                "prediction log: store still unavailable after %.1f s at shutdown; %d "
                "spilled bytes left in %s (lost if this volume goes with the pod)",
                self.drain_s,
                self.spill.size(),
                self.spill.path,
            )

    def _replay(self) -> None:
        """Send the spill to the store in order (:func:`service.spill.replay`); new batches
        queue up behind it in the file, and the queue is written between two chunks so it
        cannot overflow during a long replay."""
        try:
            self._get_store().ping()
        except Exception as exc:  # noqa: BLE001
            self._failed("probe", exc)
            return
        result = ReplayResult(offset=self._replay_offset)

        def finish(end: int) -> bool:
            with self._progress:  # a request thread may have appended meanwhile
                if not self.spill.truncate(expected_size=end):
                    return False
                self._pending = False
                self._progress.notify_all()
                return True

        def between() -> None:
            self._replay_offset = result.offset
            if result.corrupt:  # logged by SpillFile.read; counted once, as lost
                self._count(dropped=result.corrupt)
                result.corrupt = 0
            batch, _ = self._take(wait=False)
            if batch:
                self._handle(batch)
                self._done(rows_of(batch))

        try:
            replay(
                self.spill,
                lambda entries: self._write(entries, replay=True),
                result,
                self.batch_size,
                finish=finish,
                between=between,
            )
        except Exception as exc:  # noqa: BLE001
            self._replay_offset = result.offset
            self._failed("replay", exc)
            return
        self._replay_offset = 0
        self._delay = self.backoff[0]
        self._store_failed = False
        log.info("prediction log: spill replayed, store is back")


if __name__ == "__main__":
    raise SystemExit(main())
