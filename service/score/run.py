"""The scoring pipeline: shard -> chunks -> validate -> predict -> output part and rejects.

Memory stays bounded by the chunk size whatever the input size: each chunk is read, scored,
written and released before the next one. The model is the one the service would serve (the
promoted version, or ``MODEL_TAG``), loaded by :func:`service.inference.load_predictor`.
"""

from __future__ import annotations

import csv
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa

from reggaeton.timeutil import utcnow
from service.inference import Predictor
from service.score.check import check_chunk
from service.score.shards import iter_chunks

SOURCE = "batch-job"
"""``source`` of the predictions this job writes to the prediction store."""
PASSTHROUGH = ("id_new",)
"""Input identifier columns copied to the output when present."""


@dataclass
class Summary:
    """What one run did (printed as JSON by the CLI)."""

    rows: int = 0
    scored: int = 0
    rejected: int = 0
    logged: int = 0
    seconds: float = 0.0
    output: str = ""
    rejects: str = ""


def part_paths(output: Path, fmt: str, index: int, sharded: bool) -> tuple[Path, Path]:
    """Where a run writes: ``output`` and ``<stem>.rejects.csv`` beside it, or, when sharded,
    ``<output>/part-<index:05d>.<fmt>`` and ``<output>/rejects-<index:05d>.csv``."""
    if sharded:
        return output / f"part-{index:05d}.{fmt}", output / f"rejects-{index:05d}.csv"
    return output, output.with_name(output.stem + ".rejects.csv")


def score_file(
    predictor: Predictor,
    source: Path,
    out: Path,
    rejects: Path,
    *,
    index: int = 0,
    count: int = 1,
    chunk_rows: int = 131_072,
    store: Any = None,
    progress: TextIO | None = sys.stderr,
) -> Summary:
    """Score shard ``index`` of ``count`` of ``source`` into ``out`` (``.csv`` or Parquet).

    Files are written under temporary names and renamed at the end, so a part that exists is
    complete. ``store`` (a prediction store) also receives every prediction, source
    ``batch-job``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    rejects.parent.mkdir(parents=True, exist_ok=True)
    tmp_out, tmp_rej = out.with_name(out.name + ".tmp"), rejects.with_name(rejects.name + ".tmp")
    summary, bar = Summary(output=str(out), rejects=str(rejects)), Progress(progress)
    run_id = secrets.token_hex(8)
    writer = None
    started = time.perf_counter()
    with tmp_rej.open("w", newline="") as rej_file:
        rej = csv.writer(rej_file)
        rej.writerow(["row", "field", "reason"])
        for chunk in iter_chunks(source, index, count, chunk_rows):
            checked = check_chunk(chunk.table)
            rows = chunk.first_row + np.arange(chunk.table.num_rows, dtype=np.int64)
            for row, field, reason in checked.rejects:
                rej.writerow([int(rows[row]), field, reason])
            proba, labels = predictor.predict(checked.matrix)
            table = _result(predictor, chunk.table, rows, checked.valid, proba, labels)
            writer = writer or _Writer(tmp_out, table.schema)
            writer.write(table)
            if store is not None and len(labels):
                summary.logged += _log(
                    store, predictor, run_id, checked.matrix, rows[checked.valid], proba, labels
                )
            summary.rows += chunk.table.num_rows
            summary.scored += len(labels)
            summary.rejected += len(checked.rejects)
            bar.update(summary.rows)
    if writer is None:  # an empty shard: an empty part with the schema of the others
        first = next(iter_chunks(source, 0, 1, chunk_rows=1), None)
        table = first.table.slice(0, 0) if first is not None else pa.table({})
        empty = np.empty(0, np.int64)
        writer = _Writer(
            tmp_out, _result(predictor, table, empty, np.empty(0, bool), np.empty(0), empty).schema
        )
    writer.close()
    os.replace(tmp_out, out)
    os.replace(tmp_rej, rejects)
    summary.seconds = time.perf_counter() - started
    bar.done(summary.rows)
    return summary


def _result(
    predictor: Predictor,
    table: pa.Table,
    rows: np.ndarray,
    valid: np.ndarray,
    proba: np.ndarray,
    labels: np.ndarray,
) -> pa.Table:
    columns: dict[str, Any] = {"row": pa.array(rows[valid], pa.int64())}
    for name in PASSTHROUGH:
        if name in table.column_names:
            columns[name] = table.column(name).filter(pa.array(valid))
    n = len(labels)
    columns["prediction"] = pa.array(labels, pa.int64())
    columns["label"] = pa.DictionaryArray.from_arrays(
        pa.array(labels, pa.int32()), pa.array(list(predictor.labels))
    )
    columns["probability"] = pa.array(proba, pa.float64())
    columns["model_version"] = pa.repeat(pa.scalar(predictor.tag), n)
    columns["threshold"] = pa.repeat(pa.scalar(float(predictor.threshold)), n)
    return pa.table(columns)


def _log(
    store: Any,
    predictor: Predictor,
    run_id: str,
    matrix: np.ndarray,
    rows: np.ndarray,
    proba: np.ndarray,
    labels: np.ndarray,
) -> int:
    from reggaeton.records.base import PredictionRecord
    from service.validation import row_features

    now = utcnow()
    records = [
        PredictionRecord(f"{SOURCE}-{run_id}-{row}", predictor.tag, feats, p, lab, 0.0, SOURCE, now)
        for row, feats, p, lab in zip(
            rows.tolist(), row_features(matrix), proba.tolist(), labels.tolist(), strict=True
        )
    ]
    return store.write_many(records)


class _Writer:
    """Streams tables into one Parquet or CSV file (format from the final name's suffix)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.csv = path.name.removesuffix(".tmp").lower().endswith(".csv")
        if self.csv:
            import pyarrow.csv as pcsv

            schema = pa.schema(
                [f.with_type(pa.string()) if pa.types.is_dictionary(f.type) else f for f in schema]
            )
            self._w: Any = pcsv.CSVWriter(str(path), schema)
        else:
            import pyarrow.parquet as pq

            self._w = pq.ParquetWriter(str(path), schema)
        self.schema = schema

    def write(self, table: pa.Table) -> None:
        self._w.write_table(table.cast(self.schema) if self.csv else table)

    def close(self) -> None:
        self._w.close()


class Progress:
    """A one-line progress report with rows/s on ``stream`` (stderr), at most twice a second."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.start = self.last = time.perf_counter()
        self.tty = bool(stream is not None and stream.isatty())

    def update(self, rows: int, final: bool = False) -> None:
        """Redraw the line when enough time has passed (or ``final``)."""
        now = time.perf_counter()
        if self.stream is None or (not final and now - self.last < (0.5 if self.tty else 5.0)):
            return
        self.last = now
        rate = rows / max(now - self.start, 1e-9)
        end = "\r" if self.tty and not final else "\n"
        self.stream.write(f"scored {rows:,} rows  {rate:,.0f} rows/s{end}")
        self.stream.flush()

    def done(self, rows: int) -> None:
        """The final line."""
        self.update(rows, final=True)
