"""CPU cost of the prediction log per row, in process: one 1,000-row request at a time.

Usage: ``python -m bench.log_cost [--requests 200] [--rows 1000]``. For each way of logging a
request (one ``PredictionRecord`` per row, as before; one columnar ``PredictionBatch`` per
request, as the service does now) it parses and validates the same body, submits the
predictions to a :class:`service.writer.PredictionWriter` on a fresh SQLite file, waits until
everything is written, checks the row count, and prints the process CPU per row minus the
CPU of parsing and validating alone. Figures go to ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

from bench import payloads
from reggaeton.records.base import PredictionBatch, PredictionRecord
from reggaeton.records.factory import open_store
from service.validation import COLUMNS, row_features, validate_rows
from service.writer import PredictionWriter

REPO = Path(__file__).resolve().parents[1]


def _records(ids, matrix, proba, labels, now):
    return [
        PredictionRecord(rid, "m:1", feats, p, lab, 1.0, "http", now)
        for rid, feats, p, lab in zip(
            ids, row_features(matrix), proba.tolist(), labels.tolist(), strict=True
        )
    ]


def _batch(ids, matrix, proba, labels, now):
    return PredictionBatch(ids, "m:1", COLUMNS, matrix, proba, labels, 1.0, "http", now)


def measure(build, body: bytes, requests: int, rows: int) -> tuple[float, float, int]:
    """(request-thread us/row, total log CPU us/row, rows logged) for one way of logging."""
    folder = Path(tempfile.mkdtemp(prefix="log-cost-"))
    uri = f"sqlite:///{folder}/predictions.db"
    writer = PredictionWriter(lambda: open_store(uri), folder / "spill.jsonl").start()
    rng = np.random.default_rng(0)
    proba = rng.random(rows)
    labels = (proba >= 0.5).astype(np.int64)
    submit_s = 0.0
    cpu0 = time.process_time()
    for _ in range(requests):
        matrix = validate_rows(orjson.loads(body))
        t0 = time.perf_counter()
        prefix = secrets.token_hex(16)
        ids = [f"{prefix}-{i}" for i in range(rows)]
        writer.submit_ticketed(build(ids, matrix, proba, labels, datetime.now(UTC)))
        submit_s += time.perf_counter() - t0
    assert writer.flush(120), "the writer did not catch up"
    cpu = time.process_time() - cpu0
    writer.close()
    store = open_store(uri)
    logged = store.count()
    store.close()
    cpu1 = time.process_time()
    for _ in range(requests):
        validate_rows(orjson.loads(body))
    base = time.process_time() - cpu1
    n = requests * rows
    return submit_s / n * 1e6, (cpu - base) / n * 1e6, logged


def main(argv: list[str] | None = None) -> int:
    """Print the per-row cost of both ways of logging; 1 when a row is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args(argv)
    body = orjson.dumps(payloads.load_songs(REPO / "data", args.rows))
    missing = False
    for name, build in (
        ("PredictionRecord per row", _records),
        ("PredictionBatch per request", _batch),
    ):
        submit, total, logged = measure(build, body, args.requests, args.rows)
        want = args.requests * args.rows
        missing |= logged != want
        print(
            f"{name}: request thread {submit:.2f} us/row, log CPU in all {total:.2f} us/row, "
            f"{logged:,} of {want:,} rows logged",
            flush=True,
        )
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
