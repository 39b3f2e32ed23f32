"""Quick 1M-row sanity run of the SQLite prediction log (not a test; the official benchmark is
under bench/).

Usage: ``.venv/bin/python tests/predlog/sanity_1m.py [--rows 1000000] [--db var/sanity_1m.db]``

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

from reggaeton.predlog.base import PredictionRecord
from reggaeton.predlog.sqlite import SQLiteStore
from reggaeton.schema import FEATURES


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("var/sanity_1m.db"))
    parser.add_argument("--chunk", type=int, default=50_000)
    args = parser.parse_args()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    store = SQLiteStore(args.db)
    rng = np.random.default_rng(0)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    names = [f.name for f in FEATURES]
    start = time.perf_counter()
    batch = 10_000
    for lo in range(0, args.rows, batch):
        n = min(batch, args.rows - lo)
        values = rng.random((n, len(names))).tolist()
        probs = rng.random(n).tolist()
        records = [PredictionRecord(
            request_id=f"req-{lo + i:08d}", model_version="reggaeton_clf:sanity",
            features=dict(zip(names, values[i], strict=True)), probability=probs[i],
            prediction=int(probs[i] >= 0.5), latency_ms=1.0, source="http",
            timestamp=t0 + timedelta(milliseconds=lo + i)) for i in range(n)]
        store.write_many(records)
    write_s = time.perf_counter() - start
    print(f"write: {args.rows:,} rows in {write_s:.1f} s ({args.rows / write_s:,.0f} rows/s), "
          f"file {args.db.stat().st_size / 2**20:.0f} MiB, peak RSS {_peak_rss_mib():.0f} MiB")

    start = time.perf_counter()
    total = chunks = 0
    prob_sum = 0.0
    for frame in store.iter_window(chunk_size=args.chunk):
        total += len(frame)
        chunks += 1
        prob_sum += float(frame["probability"].sum())
    read_s = time.perf_counter() - start
    print(f"iter_window: {total:,} rows in {chunks} chunks of <= {args.chunk:,}, {read_s:.1f} s "
          f"({total / read_s:,.0f} rows/s), peak RSS {_peak_rss_mib():.0f} MiB "
          f"(mean probability {prob_sum / max(total, 1):.3f})")

    start = time.perf_counter()
    half = store.count(t0 + timedelta(milliseconds=args.rows // 2))
    print(f"count(second half) = {half:,} in {time.perf_counter() - start:.2f} s")
    store.close()


if __name__ == "__main__":
    main()
