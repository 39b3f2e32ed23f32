"""Append-only spill file of predictions waiting for the store, and the one replay loop.

Format: JSON lines, one log entry per line, appended with ``fsync``: a request's
:class:`~reggaeton.records.base.PredictionBatch` (``"kind": "batch"``, columns as arrays; an
absent feature is ``null``) or a :class:`~reggaeton.records.base.PredictionRecord` (the only
kind before batches, so older files replay unchanged). Lines are replayed in file order; a
line that does not parse (a write cut short by a crash) is skipped and counted. The file is
truncated only after every line has reached the store.

:func:`replay` is the one loop that sends a spill to a store: the writer thread runs it
(between chunks it writes its queue) and so does the operators' CLI (:func:`main`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from reggaeton.records.base import (
    LogEntry,
    PredictionBatch,
    RecordRejected,
    RecordStore,
    entry_from_dict,
    entry_rows,
)

log = logging.getLogger(__name__)

DATA_ERRORS = (RecordRejected, ValueError, TypeError)
"""Errors that say "this record is bad", as opposed to "the store is unavailable" (every
backend raises :class:`~reggaeton.records.base.RecordRejected` for a row it refuses)."""


def _finite(value: Any) -> bool:
    return type(value) is not float or math.isfinite(value)


def _loads(line: bytes) -> Any:
    """orjson, or the standard library for a line it refuses (``NaN``, written by json)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def rows_of(entries: Sequence[LogEntry]) -> int:
    """Predictions held by ``entries``."""
    return sum(map(entry_rows, entries))


def write_entries(store: RecordStore, entries: Sequence[LogEntry]) -> int:
    """Write runs of batches with ``write_batches`` and runs of records with ``write_many``,
    in order (the service only queues batches: one call).

    Returns:
        Rows newly inserted.
    """
    inserted = 0
    for is_batch, run in itertools.groupby(entries, key=lambda e: isinstance(e, PredictionBatch)):
        group = list(run)
        inserted += store.write_batches(group) if is_batch else store.write_many(group)
    return inserted


def write_or_reject(store: RecordStore, entries: Sequence[LogEntry]) -> tuple[int, list[LogEntry]]:
    """:func:`write_entries`, isolating the rows the store refuses (so one bad row cannot
    block the log forever): a refused call is retried entry by entry, and a refused batch row
    by row, so only the bad rows are set aside.

    Returns:
        (rows newly inserted, entries refused for their content).

    Raises:
        Exception: any error other than :data:`DATA_ERRORS` (the store is unavailable);
            rows before the failure may have been stored, which a retry skips.
    """
    try:
        return write_entries(store, entries), []
    except DATA_ERRORS as exc:
        if len(entries) == 1:
            entry = entries[0]
            if isinstance(entry, PredictionBatch):
                return write_or_reject(store, entry.records())
            log.error("prediction log: record %s refused: %s", entry.request_id, exc)
            return 0, [entry]
    inserted, rejected = 0, []
    for entry in entries:
        n, bad = write_or_reject(store, [entry])
        inserted += n
        rejected += bad
    return inserted, rejected


@dataclass
class ReplayResult:
    """Outcome of :func:`replay`.

    Attributes:
        offset: Bytes of the file already sent (a failed replay resumes there).
        records: Rows sent to the store (duplicates included).
        inserted: Rows the store did not have yet.
        corrupt: Unreadable lines skipped (lost).
        rejected: Rows the store refused, moved to :func:`rejected_path`.
        truncated: Whether the pass ended by emptying the file.
    """

    offset: int = 0
    records: int = 0
    inserted: int = 0
    corrupt: int = 0
    rejected: int = 0
    truncated: bool = False


def rejected_path(spill_path: Path) -> Path:
    """Dead-letter file for records the store refuses: ``<spill>.rejected.jsonl``."""
    return spill_path.with_name(spill_path.name + ".rejected.jsonl")


class SpillFile:
    """One append-only JSON-lines file.

    Args:
        path: File path; parent folders are created on the first append.
        fsync: Force every append to disk (default) so a spilled record survives a crash.
        max_bytes: Size cap: an append that would go past it writes only the records that
            fit (None: no cap). Bounds the disk a long outage can fill.
    """

    def __init__(self, path: str | Path, fsync: bool = True, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def size(self) -> int:
        """Current size in bytes (0 when the file does not exist or cannot be reached)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    @staticmethod
    def encode(records: Sequence[LogEntry]) -> bytes:
        """The JSON lines :meth:`append` writes for ``records`` (encode outside any lock).

        orjson (about 10x the standard library). A batch always goes through orjson: its NaN
        (an absent feature, or a probability the store will refuse) is written ``null`` and
        reads back as NaN. A record holding a non-finite float, which orjson would write as
        ``null``, goes through ``json.dumps`` (``NaN``) so that it reads back unchanged.
        """
        lines = []
        for r in records:
            doc = r.to_dict()
            finite = isinstance(r, PredictionBatch) or (
                type(r.probability) is float
                and math.isfinite(r.probability)
                and all(map(_finite, r.features.values()))
            )
            try:
                lines.append(
                    orjson.dumps(doc) if finite else json.dumps(doc, separators=(",", ":")).encode()
                )
            except TypeError:  # a value neither knows: keep its text rather than lose it
                lines.append(json.dumps(doc, separators=(",", ":"), default=str).encode())
        lines.append(b"")
        return b"\n".join(lines)

    def append(self, records: Sequence[LogEntry], encoded: bytes | None = None) -> int:
        """Append entries and flush them to disk (thread-safe: appends never interleave).

        Args:
            records: The entries (records or batches).
            encoded: ``encode(records)``, when the caller already has it.

        Returns:
            How many rows were written: all, or under ``max_bytes`` those of the longest
            prefix of entries that fits (the caller counts the rest as lost).

        Raises:
            OSError: when the disk is full or the file cannot be written.
        """
        if not records:
            return 0
        data = self.encode(records) if encoded is None else encoded
        n = len(records)
        with self._lock:
            if self.max_bytes is not None and self.size() + len(data) + 1 > self.max_bytes:
                data, n = _prefix(data, self.max_bytes - self.size() - 1)
                if not n:
                    return 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as fh:
                if fh.tell() > 0 and not self._ends_with_newline():
                    fh.write(b"\n")  # never glue onto a line a crash cut short
                fh.write(data)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
        return rows_of(records[:n])

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def read(self, offset: int, max_records: int) -> tuple[list[LogEntry], int, int]:
        """Read entries holding up to about ``max_records`` rows from byte ``offset`` (at
        least one entry, so a batch larger than that is read whole).

        Returns:
            (entries, offset after them, number of unreadable lines skipped).
        """
        records: list[LogEntry] = []
        rows = corrupt = 0
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return records, offset, 0
        with fh:
            fh.seek(offset)
            while rows < max_records:
                line = fh.readline()
                if not line:
                    break
                offset += len(line)
                if not line.strip():
                    continue
                try:
                    entry = entry_from_dict(_loads(line))
                    records.append(entry)
                    rows += entry_rows(entry)
                except (ValueError, TypeError, AttributeError, KeyError) as exc:
                    corrupt += 1
                    log.error("spill %s: unreadable line skipped (record lost): %s", self.path, exc)
        return records, offset, corrupt

    def truncate(self, expected_size: int | None = None) -> bool:
        """Empty the file (after a complete replay).

        Args:
            expected_size: Truncate only if the file still has exactly this size, i.e. nothing
                was appended since the replay read its end (checked under the append lock).

        Returns:
            False when the file grew meanwhile (nothing truncated).
        """
        with self._lock:
            if expected_size is not None and self.size() != expected_size:
                return False
            self._truncate()
            return True

    def _truncate(self) -> None:
        if self.path.exists():
            with open(self.path, "r+b") as fh:
                fh.truncate(0)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())


def _prefix(data: bytes, room: int) -> tuple[bytes, int]:
    """The first whole lines of ``data`` within ``room`` bytes, and how many."""
    kept, used = [], 0
    for line in data.split(b"\n")[:-1]:  # JSON lines hold no raw newline
        if used + len(line) + 1 > room:
            break
        kept.append(line)
        used += len(line) + 1
    return b"".join(line + b"\n" for line in kept), len(kept)


def replay(
    spill: SpillFile,
    write: Callable[[list[LogEntry]], int],
    result: ReplayResult,
    batch_rows: int = 1000,
    finish: Callable[[int], bool] | None = None,
    between: Callable[[], None] | None = None,
) -> ReplayResult:
    """Send a spill file's entries to the store in file order, from ``result.offset``.

    The one replay loop, for the writer thread and the CLI. Safe to repeat: stores skip
    request_ids already stored, so a replay interrupted by an error is simply run again from
    ``result.offset`` (updated after every chunk that reached the store).

    Args:
        spill: The file.
        write: Stores a chunk of entries, returns the rows newly inserted (raises when the
            store is unavailable; sets refused rows aside itself).
        result: Updated in place (also when ``write`` raises).
        batch_rows: Rows per chunk.
        finish: Called with the end offset once everything was sent; returns True once the
            file is emptied, False when it grew meanwhile (the loop then goes on). Default:
            truncate if the size is still that offset. ``lambda _: True`` keeps the file.
        between: Called after every chunk (the writer writes its queue there).

    Raises:
        Exception: whatever ``write`` raises; nothing is truncated then.
    """
    if finish is None:

        def finish(end: int) -> bool:
            return spill.truncate(expected_size=end)

    while True:
        entries, offset, corrupt = spill.read(result.offset, batch_rows)
        if not entries and not corrupt and offset >= spill.size():
            if finish(offset):
                result.offset, result.truncated = 0, True
                return result
            result.offset = offset
            continue
        if entries:
            result.inserted += write(entries)
            result.records += rows_of(entries)
        result.corrupt += corrupt
        result.offset = offset  # what precedes is in the store: never resent
        if between is not None:
            between()


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m service.writer replay --spill FILE --store URI [--keep]``."""
    from reggaeton.records.factory import open_store

    parser = argparse.ArgumentParser(
        prog="python -m service.writer", description="Prediction-log writer tools."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("replay", help="replay a spill file into a store, then empty it")
    rep.add_argument("--spill", type=Path, required=True, help="spill file (JSON lines)")
    rep.add_argument("--store", required=True, help="store URI, e.g. sqlite:///var/p.db")
    rep.add_argument("--batch-size", type=int, default=1000)
    rep.add_argument("--keep", action="store_true", help="do not empty the spill file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    spill = SpillFile(args.spill)
    if spill.size() == 0:
        print(f"{args.spill}: nothing to replay")
        return 0
    store = open_store(args.store)
    rejects = SpillFile(rejected_path(args.spill))
    result = ReplayResult()

    def write(entries: list[LogEntry]) -> int:
        inserted, rejected = write_or_reject(store, entries)
        if rejected:
            result.rejected += rejects.append(rejected)
        return inserted

    try:
        replay(
            spill, write, result, args.batch_size, finish=(lambda _end: True) if args.keep else None
        )
    finally:
        store.close()
    print(
        f"replayed {result.records} records from {args.spill} into {args.store}: "
        f"{result.inserted} new, {result.records - result.inserted} already stored, "
        f"{result.corrupt} unreadable lines skipped, {result.rejected} refused by the store "
        f"(kept in {rejected_path(args.spill)})" + ("" if args.keep else "; spill file emptied")
    )
    return 0
