"""Quick 1M-row sanity run of the SQLite prediction log (not a test; the official benchmark is
under bench/).

Usage: ``.venv/bin/python tests/records/sanity_1m.py [--rows N] [--db PATH] [--read-only]``

Writes N synthetic predictions (batches of 10,000), then streams them back with
``iter_window`` and prints wall time, rows/s and the peak RSS of this process.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from reggaeton.records.base import PredictionRecord
from reggaeton.records.sqlite import SQLiteStore
from reggaeton.schema import FEATURES

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write(store: SQLiteStore, rows: int) -> None:
    rng = np.random.default_rng(0)
    names = [f.name for f in FEATURES]
    start, cpu = time.perf_counter(), time.process_time()
    batch = 10_000
    for lo in range(0, rows, batch):
        n = min(batch, rows - lo)
        values = rng.random((n, len(names))).tolist()
        probs = rng.random(n).tolist()
        records = [
            PredictionRecord(
                request_id=f"req-{lo + i:08d}",
                model_version="reggaeton_clf:sanity",
                features=dict(zip(names, values[i], strict=True)),
                probability=probs[i],
                prediction=int(probs[i] >= 0.5),
                latency_ms=1.0,
                source="http",
                timestamp=T0 + timedelta(milliseconds=lo + i),
            )
            for i in range(n)
        ]
        store.write_many(records)
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"write: {rows:,} rows in {wall:.1f} s wall, {used:.1f} s CPU "
        f"({rows / wall:,.0f} rows/s wall), file {store.path.stat().st_size / 2**20:.0f} MiB, "
        f"peak RSS {_peak_rss_mib():.0f} MiB"
    )


def _read(store: SQLiteStore, chunk: int) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    total = chunks = 0
    prob_sum = 0.0
    for frame in store.iter_window(chunk_size=chunk):
        total += len(frame)
        chunks += 1
        prob_sum += float(frame["probability"].sum())
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"iter_window: {total:,} rows in {chunks} chunks of <= {chunk:,}, {wall:.1f} s wall, "
        f"{used:.1f} s CPU ({total / wall:,.0f} rows/s wall), peak RSS "
        f"{_peak_rss_mib():.0f} MiB (mean probability {prob_sum / max(total, 1):.3f})"
    )
    start = time.perf_counter()
    half = store.count(T0 + timedelta(milliseconds=total // 2))
    print(f"count(second half) = {half:,} in {time.perf_counter() - start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("var/sanity_1m.db"))
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--read-only", action="store_true", help="reuse an existing database")
    args = parser.parse_args()
    if not args.read_only:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    store = SQLiteStore(args.db)
    if not args.read_only:
        _write(store, args.rows)
    _read(store, args.chunk)
    store.close()


if __name__ == "__main__":
    main()
