"""Append-only spill file of prediction records waiting for the store, and its replay.

Format: JSON lines, one :meth:`PredictionRecord.to_dict` per line, appended with ``fsync``.
Lines are replayed in file order; a line that does not parse (a write cut short by a crash) is
skipped and counted. The file is truncated only after every line has reached the store.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pymongo.errors import BulkWriteError, DocumentTooLarge, InvalidDocument, WriteError

from reggaeton.predlog.base import PredictionRecord, PredictionStore

log = logging.getLogger(__name__)

DATA_ERRORS = (ValueError, TypeError, sqlite3.IntegrityError, sqlite3.InterfaceError,
               BulkWriteError, WriteError, DocumentTooLarge, InvalidDocument)
"""Errors that say "this record is bad", as opposed to "the store is unavailable"."""


def _finite(value: Any) -> bool:
    return type(value) is not float or math.isfinite(value)


def _loads(line: bytes) -> Any:
    """orjson, or the standard library for a line it refuses (``NaN``, written by json)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def write_or_reject(store: PredictionStore, records: Sequence[PredictionRecord]
                    ) -> tuple[int, list[PredictionRecord]]:
    """``write_many``, isolating records the store refuses (so one bad record cannot block
    the log forever).

    Returns:
        (records newly inserted, records refused for their content).

    Raises:
        Exception: any error other than :data:`DATA_ERRORS` (the store is unavailable);
            records before the failure may have been stored, which a retry skips.
    """
    try:
        return store.write_many(records), []
    except DATA_ERRORS as exc:
        if len(records) == 1:
            log.error("prediction log: record %s refused: %s", records[0].request_id, exc)
            return 0, list(records)
    inserted, rejected = 0, []
    for record in records:
        n, bad = write_or_reject(store, [record])
        inserted += n
        rejected += bad
    return inserted, rejected


@dataclass
class ReplayResult:
    """Outcome of :func:`replay`.

    Attributes:
        records: Records sent to the store (duplicates included).
        inserted: Records the store did not have yet.
        corrupt: Unreadable lines skipped (lost).
        rejected: Records the store refused, moved to :func:`rejected_path`.
    """

    records: int = 0
    inserted: int = 0
    corrupt: int = 0
    rejected: int = 0


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
    def encode(records: Sequence[PredictionRecord]) -> bytes:
        """The JSON lines :meth:`append` writes for ``records`` (encode outside any lock).

        orjson (about 10x the standard library); a record holding a non-finite float, which
        orjson would write as ``null``, goes through ``json.dumps`` (``NaN``) so that it
        reads back unchanged.
        """
        lines = []
        for r in records:
            doc = r.to_dict()
            finite = (type(r.probability) is float and math.isfinite(r.probability)
                      and all(map(_finite, r.features.values())))
            try:
                lines.append(orjson.dumps(doc) if finite else
                             json.dumps(doc, separators=(",", ":")).encode())
            except TypeError:  # a value neither knows: keep its text rather than lose it
                lines.append(json.dumps(doc, separators=(",", ":"), default=str).encode())
        lines.append(b"")
        return b"\n".join(lines)

    def append(self, records: Sequence[PredictionRecord], encoded: bytes | None = None) -> int:
        """Append records and flush them to disk (thread-safe: appends never interleave).

        Args:
            records: The records.
            encoded: ``encode(records)``, when the caller already has it.

        Returns:
            How many records were written: all, or under ``max_bytes`` the longest prefix
            that fits (the caller counts the rest as lost).

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
        return n

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def read(self, offset: int, max_records: int) -> tuple[list[PredictionRecord], int, int]:
        """Read up to ``max_records`` records starting at byte ``offset``.

        Returns:
            (records, offset after them, number of unreadable lines skipped).
        """
        records: list[PredictionRecord] = []
        corrupt = 0
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return records, offset, 0
        with fh:
            fh.seek(offset)
            while len(records) < max_records:
                line = fh.readline()
                if not line:
                    break
                offset += len(line)
                if not line.strip():
                    continue
                try:
                    records.append(PredictionRecord.from_dict(_loads(line)))
                except (ValueError, TypeError, AttributeError) as exc:
                    corrupt += 1
                    log.error("spill %s: unreadable line skipped (record lost): %s",
                              self.path, exc)
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


def replay(spill: SpillFile, store: PredictionStore, batch_size: int = 1000,
           truncate: bool = True) -> ReplayResult:
    """Send every spilled record to ``store`` in file order, then empty the file.

    Safe to repeat: ``write_many`` skips request_ids already stored, so a replay interrupted
    by an error can simply be run again. The file is left untouched on error.

    Raises:
        Exception: whatever the store raises; nothing is truncated then.
    """
    result = ReplayResult()
    offset = 0
    while True:
        records, offset, corrupt = spill.read(offset, batch_size)
        result.corrupt += corrupt
        if not records:
            if offset >= spill.size():
                break
            continue
        inserted, rejected = write_or_reject(store, records)
        if rejected:
            SpillFile(rejected_path(spill.path)).append(rejected)
        result.inserted += inserted
        result.records += len(records)
        result.rejected += len(rejected)
    if truncate:
        spill.truncate()
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m service.writer replay --spill FILE --store URI [--keep]``."""
    from reggaeton.predlog.factory import open_store

    parser = argparse.ArgumentParser(prog="python -m service.writer",
                                     description="Prediction-log writer tools.")
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
    try:
        result = replay(spill, store, args.batch_size, truncate=not args.keep)
    finally:
        store.close()
    print(f"replayed {result.records} records from {args.spill} into {args.store}: "
          f"{result.inserted} new, {result.records - result.inserted} already stored, "
          f"{result.corrupt} unreadable lines skipped, {result.rejected} refused by the store "
          f"(kept in {rejected_path(args.spill)})"
          + ("" if args.keep else "; spill file emptied"))
    return 0
