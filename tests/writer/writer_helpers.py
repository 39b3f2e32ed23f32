"""Helpers for the writer tests: records, polling, a store that fails on demand."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from reggaeton.records import PredictionRecord
from reggaeton.records.base import PredictionBatch
from reggaeton.records.sqlite import SQLiteStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def make_records(n: int, start: int = 0, prefix: str = "r") -> list[PredictionRecord]:
    """n records with increasing timestamps, ids ``<prefix>00000``..."""
    return [
        PredictionRecord(
            f"{prefix}{i:05d}",
            "reggaeton_clf:t",
            {"tempo": float(i)},
            0.5,
            1,
            1.0,
            "http",
            T0 + timedelta(milliseconds=i),
        )
        for i in range(start, start + n)
    ]


def make_batch(n: int, prefix: str = "b", start: int = 0) -> PredictionBatch:
    """One request's n rows as a columnar batch, ids ``<prefix>-<start>``..., ``tempo`` = i."""
    tempo = np.arange(start, start + n, dtype=np.float64).reshape(n, 1)
    return PredictionBatch(
        [f"{prefix}-{i}" for i in range(start, start + n)],
        "reggaeton_clf:t",
        ("tempo",),
        tempo,
        np.full(n, 0.5),
        np.ones(n, dtype=np.int64),
        1.0,
        "http",
        T0 + timedelta(milliseconds=start),
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll until predicate() is true (fails the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


class FlakyStore:
    """Wraps a real store; while ``down`` is set, write_many stores half the batch then raises
    and ping raises (a store that fails mid-write)."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.down = threading.Event()
        self.calls = 0

    def write_many(self, records: Sequence[PredictionRecord]) -> int:
        self.calls += 1
        if self.down.is_set():
            self.inner.write_many(records[: len(records) // 2])
            raise ConnectionError("store down (simulated)")
        return self.inner.write_many(records)

    def write_batches(self, batches: Sequence[PredictionBatch]) -> int:
        self.calls += 1
        if self.down.is_set():
            self.inner.write_batches(batches[: len(batches) // 2])
            raise ConnectionError("store down (simulated)")
        return self.inner.write_batches(batches)

    def ping(self) -> None:
        if self.down.is_set():
            raise ConnectionError("store down (simulated)")
        self.inner.ping()

    def close(self) -> None:
        """The test closes the inner store itself."""

    def __getattr__(self, name: str):  # count, get, ... go to the real store
        return getattr(self.inner, name)
