"""SQLite prediction log: the embedded default backend (stdlib ``sqlite3``, WAL mode).

Layout (one file):

* ``predictions``: one row per prediction (single-row requests, records, and every row written
  before compact batches existed). ``ts_us`` is the UTC timestamp in integer
  microseconds since the epoch (indexed), features are one ``REAL`` column each, named
  ``f_<feature>`` (columns for features outside the schema are added on first sight), and
  the latest feedback sits on the row (``feedback_label``, ``feedback_at_us``).
* ``prediction_batches`` and ``batch_feedback``: a batch request's predictions as one row of
  arrays, and the latest feedback on them (:mod:`reggaeton.records.sqlite_batches`). Reads
  merge both tables by time, so readers see predictions whatever the storage.
* ``feedback``: every feedback event (history), oldest first by ``id``.
* ``monitoring_runs``: JSON documents with their ``finished_at``.
* ``predictions_readable``: a view of ``predictions`` with ISO-8601 timestamps, for people using
  the sqlite3 CLI (compact batches are not in it: read them through the store).

Connections heal: one whose file was unwritable when it opened (SQLite then silently falls back
to read-only), or was replaced or hit an I/O error, is dropped and reopened
(:mod:`reggaeton.records.sqlite_conn`).

Concurrency: one connection per thread (WAL lets readers run beside the single writer, and
``busy_timeout`` makes writers wait for each other); :meth:`SQLiteStore.iter_window` streams on
its own connection, so a reader can consume chunks while the same thread writes.
``synchronous=NORMAL``: a committed transaction survives a process crash; the last ones may be
lost on power failure.

Write path (the service's prediction log, hundreds of thousands of rows a second): a batch
request's :class:`~reggaeton.records.base.PredictionBatch` is one compact row; any other batch
is bound column by column (:func:`~reggaeton.records.sqlite_rows.batch_params`) and records
become plain tuples, both in multi-row ``INSERT`` statements; everything the writer hands over
goes in one transaction. Rows use multi-row statements, not
``executemany``: it releases the GIL around every row's step, and under load the writer thread
then waits a switch interval for the GIL after each row (measured: 3.75 against 2.93 us/row
in-process, ``bench/README.md``).

Errors leave as :class:`~reggaeton.records.base.RecordRejected` (a row's content) or
:class:`~reggaeton.records.base.StoreUnavailable` (everything else), never as ``sqlite3``'s.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from reggaeton.records import columns as cols
from reggaeton.records import sqlite_batches as compact
from reggaeton.records.base import (
    BASE_COLUMNS,
    PredictionBatch,
    PredictionRecord,
    RecordStore,
    utcnow,
)
from reggaeton.records.sqlite_conn import ThreadConnections, heals, transaction, translate
from reggaeton.records.sqlite_rows import batch_params, bounds, build_rows

_BASE_SQL = (
    "request_id",
    "ts_us",
    "model_version",
    "source",
    "probability",
    "prediction",
    "latency_ms",
    "feedback_label",
    "feedback_at_us",
)


def _ddl() -> str:
    return _rows_ddl() + compact.DDL


def _rows_ddl() -> str:
    features = "".join(f',\n    "{cols.PREFIX}{name}" REAL' for name in cols.schema_features())
    return f"""
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT PRIMARY KEY,
    ts_us INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    source TEXT NOT NULL,
    probability REAL NOT NULL,
    prediction INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    feedback_label INTEGER,
    feedback_at_us INTEGER{features}
);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts_us);
CREATE INDEX IF NOT EXISTS predictions_feedback_at ON predictions (feedback_at_us)
    WHERE feedback_at_us IS NOT NULL;
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    label INTEGER NOT NULL,
    at_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id, id);
CREATE TABLE IF NOT EXISTS monitoring_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    finished_us INTEGER NOT NULL,
    finished_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitoring_runs_finished ON monitoring_runs (finished_us);
CREATE TABLE IF NOT EXISTS monitoring_artifacts (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    started_us INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX IF NOT EXISTS monitoring_artifacts_name ON monitoring_artifacts (name, started_us);
CREATE VIEW IF NOT EXISTS predictions_readable AS
    SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ts_us / 1000000.0, 'unixepoch') AS timestamp, *
    FROM predictions;
"""


class SQLiteStore(RecordStore):
    """Prediction log in one SQLite file.

    Args:
        path: Database file; relative paths are resolved against the current directory.
            Parent folders are created.
        busy_timeout_ms: How long a writer waits for another writer's lock before failing.
    """

    def __init__(self, path: str | Path, busy_timeout_ms: int = 5000) -> None:
        if str(path) in ("", ":memory:"):
            raise ValueError(
                "sqlite path: an in-memory database is not supported "
                "(each thread has its own connection); give a file path"
            )
        self.path = Path(path).absolute()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._connections = ThreadConnections(self._connect)
        self._insert_cache: dict[tuple[tuple[str, ...], int], str] = {}
        try:
            conn = self._conn()
            conn.executescript(_ddl())
            # Parameters one statement may bind (32766 since SQLite 3.32, 999 before).
            self._max_vars = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._features = self._load_feature_columns(conn)
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Up to 32 MiB of page cache (default 2 MiB): inserts land at random places of the
        # request_id index, which a small cache keeps re-reading once the log is large.
        conn.execute("PRAGMA cache_size = -32768")
        return conn

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        """Close every connection this store opened (call at shutdown)."""
        self._connections.close_all()

    # -- features ----------------------------------------------------------------------------
    @staticmethod
    def _load_feature_columns(conn: sqlite3.Connection) -> list[str]:
        names = [row[1] for row in conn.execute("PRAGMA table_info(predictions)")]
        return cols.order_features(
            n.removeprefix(cols.PREFIX) for n in names if n.startswith(cols.PREFIX)
        )

    def _ensure_features(self, conn: sqlite3.Connection, names: set[str]) -> list[str]:
        missing = names.difference(self._features)
        if missing:
            self._features = self._load_feature_columns(conn)
            for name in sorted(missing.difference(self._features)):
                cols.check_feature_name(name)
                try:
                    conn.execute(f'ALTER TABLE predictions ADD COLUMN "{cols.PREFIX}{name}" REAL')
                except sqlite3.OperationalError as exc:  # added meanwhile by another process
                    if "duplicate column" not in str(exc):
                        raise
            self._features = self._load_feature_columns(conn)
        return self._features

    # -- writes ------------------------------------------------------------------------------
    @heals
    def write_many(self, records: Sequence[PredictionRecord]) -> int:
        """Insert records in one transaction; request_ids already stored are skipped.

        Raises:
            RecordRejected: a record breaks a constraint (e.g. NaN probability); the whole
                batch is rolled back.
        """
        if not records:
            return 0
        conn = self._conn()
        built = build_rows(records, self._features)
        if built is None:  # a feature without a column yet: add it, then build the rows
            seen: set[str] = set()
            for record in records:
                cols.check_record(record)  # refuse a bad batch before altering the table
                seen.update(record.features)
            built = build_rows(records, self._ensure_features(conn, seen))
            if built is None:
                raise RuntimeError("prediction log: feature columns changed during a write")
        features, rows = built
        # Only a request_id conflict is ignored (INSERT OR IGNORE would also silently skip
        # NOT NULL violations, e.g. a NaN probability): other bad rows raise IntegrityError.
        # Many rows per INSERT statement rather than executemany: sqlite3 releases the GIL
        # around every statement step, and a thread that gives the GIL up once per row waits
        # a whole switch interval (5 ms) to get it back whenever a request thread is busy.
        per = max(1, self._max_vars // (7 + len(features)))
        before = conn.total_changes
        with transaction(conn):
            for start in range(0, len(rows), per):
                chunk = rows[start : start + per]
                conn.execute(
                    self._insert_sql(features, len(chunk)),
                    list(itertools.chain.from_iterable(chunk)),
                )
        return conn.total_changes - before

    @heals
    def write_batches(self, batches: Sequence[PredictionBatch]) -> int:
        """Insert the predictions of several requests in one transaction; request_ids
        already stored are skipped.

        A request whose ids are ``<prefix>-0`` ... ``<prefix>-<n-1>`` becomes one row of
        ``prediction_batches`` (:mod:`reggaeton.records.sqlite_batches`; a prefix already
        stored skips the whole batch); any other is bound column by column into rows.

        Raises:
            RecordRejected: a batch is malformed or a row breaks a constraint; nothing of the
                call is stored.
        """
        batches = [b for b in batches if len(b)]
        if not batches:
            return 0
        conn = self._conn()
        names: set[str] = set()
        for batch in batches:
            cols.check_batch(batch)
            names.update(batch.features)
        if not names.issubset(self._features):
            self._ensure_features(conn, names)
        inserted = 0
        with transaction(conn):
            for batch in batches:
                prefix = compact.prefix_of(batch)
                if prefix is not None and not self._has_row(conn, batch.request_ids[0]):
                    inserted += compact.insert(conn, batch, prefix)
                    continue
                features = list(batch.features)
                width = 7 + len(features)
                per = max(1, self._max_vars // width)
                before = conn.total_changes
                for params in batch_params(batch, per):
                    conn.execute(self._insert_sql(features, len(params) // width), params)
                inserted += conn.total_changes - before
        return inserted

    @staticmethod
    def _has_row(conn: sqlite3.Connection, request_id: str) -> bool:
        """Whether ``predictions`` holds that id (a batch written as rows by an earlier
        version and now replayed stays rows: no prediction is stored twice)."""
        return (
            conn.execute("SELECT 1 FROM predictions WHERE request_id = ?", (request_id,)).fetchone()
            is not None
        )

    def _insert_sql(self, features: list[str], n_rows: int) -> str:
        key = (tuple(features), n_rows)
        sql = self._insert_cache.get(key)
        if sql is None:
            if len(self._insert_cache) > 32:
                self._insert_cache.clear()
            row = "(" + ", ".join("?" * (7 + len(features))) + ")"
            sql = (
                "INSERT INTO predictions (request_id, ts_us, model_version, source, "
                "probability, prediction, latency_ms"
                + "".join(f', "{cols.PREFIX}{n}"' for n in features)
                + ") VALUES "
                + ", ".join([row] * n_rows)
                + " ON CONFLICT (request_id) DO NOTHING"
            )
            self._insert_cache[key] = sql
        return sql

    @heals
    def add_feedback(self, request_id: str, label: int, at: datetime | None = None) -> bool:
        """Set the latest feedback on the prediction and append it to the history."""
        label = cols.check_label(label)
        at_us = cols.to_us(at or utcnow())
        conn = self._conn()
        with transaction(conn):
            cur = conn.execute(
                "UPDATE predictions SET feedback_label = ?, feedback_at_us = ? "
                "WHERE request_id = ?",
                (label, at_us, request_id),
            )
            if cur.rowcount == 0 and not self._batch_feedback(conn, request_id, label, at_us):
                return False
            conn.execute(
                "INSERT INTO feedback (request_id, label, at_us) VALUES (?, ?, ?)",
                (request_id, label, at_us),
            )
        return True

    @staticmethod
    def _batch_feedback(conn: sqlite3.Connection, request_id: str, label: int, at_us: int) -> bool:
        """Set the latest feedback of a prediction kept in a compact batch; False if none
        has that id."""
        found = compact.locate(conn, request_id)
        if found is None:
            return False
        row, index = found
        conn.execute(
            "INSERT INTO batch_feedback (request_id, batch_id, idx, label, at_us) VALUES "
            "(?, ?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET label = excluded.label, "
            "at_us = excluded.at_us",
            (request_id, row[0], index, label, at_us),
        )
        return True

    @heals
    def save_monitoring_run(self, run: Mapping[str, Any]) -> None:
        """Store one monitoring summary; ``finished_at`` defaults to now."""
        doc, finished = cols.normalise_run(run)
        conn = self._conn()
        with transaction(conn):
            conn.execute(
                "INSERT INTO monitoring_runs (finished_us, finished_at, doc) VALUES (?, ?, ?)",
                (cols.to_us(finished), finished.isoformat(), doc),
            )

    @heals
    def save_run_artifact(self, run_id: str, name: str, started_at: datetime, data: bytes) -> None:
        """Keep one file of a monitoring run (replaces an earlier one of the same name)."""
        conn = self._conn()
        with transaction(conn):
            conn.execute(
                "INSERT OR REPLACE INTO monitoring_artifacts (run_id, name, started_us, "
                "data) VALUES (?, ?, ?, ?)",
                (run_id, name, cols.to_us(started_at), sqlite3.Binary(bytes(data))),
            )

    def run_artifacts(
        self, name: str, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[str, datetime, bytes]]:
        """``(run_id, started_at, data)`` of artifact ``name`` of runs in the range, oldest
        first."""
        try:
            cur = self._conn().execute(
                "SELECT run_id, started_us, data FROM monitoring_artifacts WHERE name = ? AND "
                "started_us >= ? AND started_us < ? ORDER BY started_us, run_id",
                (name, *bounds(since, until)),
            )
            for run_id, started_us, data in cur:
                yield run_id, cols.from_us(started_us), bytes(data)
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    # -- reads -------------------------------------------------------------------------------
    @heals
    def get(self, request_id: str) -> dict[str, Any] | None:
        """One prediction as a flat dict: base columns plus the features it carries."""
        conn = self._conn()
        features = self._load_feature_columns(conn)
        cur = conn.execute(self._select(features) + " WHERE request_id = ?", (request_id,))
        row = cur.fetchone()
        if row is None:
            found = compact.locate(conn, request_id)
            return None if found is None else compact.as_dict(conn, *found)
        out = dict(zip(BASE_COLUMNS, row[: len(BASE_COLUMNS)], strict=True))
        out["timestamp"] = cols.from_us(out["timestamp"])
        out["feedback_at"] = cols.from_us(out["feedback_at"])
        for name, value in zip(features, row[len(BASE_COLUMNS) :], strict=True):
            if value is not None:
                out[name] = value
        return out

    @heals
    def feedback_history(self, request_id: str) -> list[dict[str, Any]]:
        """Every feedback event for a request, oldest first."""
        cur = self._conn().execute(
            "SELECT label, at_us FROM feedback WHERE request_id = ? ORDER BY id", (request_id,)
        )
        return [{"label": label, "at": cols.from_us(at)} for label, at in cur]

    @heals
    def count(self, since: datetime | None = None, until: datetime | None = None) -> int:
        """Number of predictions with ``since <= timestamp < until``."""
        window = bounds(since, until)
        cur = self._conn().execute(
            "SELECT (SELECT COUNT(*) FROM predictions WHERE ts_us >= ?1 AND ts_us < ?2) + "
            "(SELECT COALESCE(SUM(n), 0) FROM prediction_batches WHERE ts_us >= ?1 AND "
            "ts_us < ?2)",
            window,
        )
        return int(cur.fetchone()[0])

    def iter_window(
        self, since: datetime | None = None, until: datetime | None = None, chunk_size: int = 50_000
    ) -> Iterator[pd.DataFrame]:
        """Stream a window oldest first, in DataFrames of at most ``chunk_size`` rows.

        Reads on a dedicated connection inside one read transaction (a consistent snapshot).
        """
        window = bounds(since, until)
        return self._stream(
            "ts_us >= ? AND ts_us < ?",
            window,
            chunk_size,
            lambda conn, features: compact.window(conn, *window, features),
        )

    def iter_late_feedback(
        self,
        feedback_since: datetime,
        feedback_until: datetime,
        predicted_since: datetime,
        predicted_until: datetime,
        chunk_size: int = 50_000,
    ) -> Iterator[pd.DataFrame]:
        """Predictions of ``[predicted_since, predicted_until)`` whose feedback arrived in
        ``[feedback_since, feedback_until)``, oldest prediction first (a partial index on
        ``feedback_at_us`` keeps this cheap and costs the write path nothing)."""
        fb = bounds(feedback_since, feedback_until)
        pred = bounds(predicted_since, predicted_until)
        return self._stream(
            "feedback_at_us IS NOT NULL AND feedback_at_us >= ? AND "
            "feedback_at_us < ? AND ts_us >= ? AND ts_us < ?",
            (*fb, *pred),
            chunk_size,
            lambda conn, features: compact.late_feedback(conn, fb, pred, features),
        )

    def _stream(
        self, where: str, params: Sequence[Any], chunk_size: int, batches: Any
    ) -> Iterator[pd.DataFrame]:
        if chunk_size < 1:
            raise ValueError("chunk_size: must be >= 1")
        return self._chunks(where, params, chunk_size, batches)

    def _chunks(
        self, where: str, params: Sequence[Any], chunk_size: int, batches: Any
    ) -> Iterator[pd.DataFrame]:
        """Rows of ``predictions`` matching ``where`` merged by time with the compact batches
        ``batches(conn, features)`` yields, on one connection in one read transaction."""
        try:
            conn = self._connect()  # its own connection, one read transaction: a snapshot
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        try:
            features = self._load_feature_columns(conn)
            conn.execute("BEGIN")
            cur = conn.execute(
                self._select(features) + f" WHERE {where} ORDER BY ts_us, rowid", tuple(params)
            )
            cur.arraysize = chunk_size
            rows = (
                cols.frame_from_rows(chunk, features)
                for chunk in iter(lambda: cur.fetchmany(chunk_size), [])
            )
            yield from compact.merge_by_time(rows, batches(conn, features), chunk_size)
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        finally:
            conn.close()

    @heals
    def monitoring_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Most recent monitoring runs, newest first."""
        cur = self._conn().execute(
            "SELECT doc FROM monitoring_runs ORDER BY finished_us DESC, id DESC LIMIT ?",
            (int(limit),),
        )
        return [json.loads(doc) for (doc,) in cur]

    @heals
    def prune(self, before: datetime, max_rows: int) -> int:
        """Delete the ``max_rows`` oldest predictions made before ``before`` and their feedback
        events, in one transaction (the ``ts_us`` and ``feedback_request`` indexes find them).

        Freed pages are reused by later inserts: the file stops growing once it holds the
        retention period's volume, it does not shrink (``VACUUM`` by hand for that).
        """
        if max_rows < 1:
            raise ValueError("max_rows: must be >= 1")
        oldest = "SELECT {} FROM predictions WHERE ts_us < ?1 ORDER BY ts_us, rowid LIMIT ?2"
        params = (cols.to_us(before), int(max_rows))
        conn = self._conn()
        with transaction(conn):
            conn.execute(
                "DELETE FROM feedback WHERE request_id IN (" + oldest.format("request_id") + ")",
                params,
            )
            cur = conn.execute(
                "DELETE FROM predictions WHERE rowid IN (" + oldest.format("rowid") + ")", params
            )
            deleted = cur.rowcount
            if deleted < max_rows:
                deleted += compact.prune(conn, params[0], max_rows - deleted)
            return deleted

    @heals
    def ping(self) -> None:
        """Raise :class:`~reggaeton.records.base.StoreUnavailable` if the database cannot be
        read."""
        self._conn().execute("SELECT 1 FROM predictions LIMIT 1").fetchall()

    @staticmethod
    def _select(features: Sequence[str]) -> str:
        return (
            "SELECT "
            + ", ".join(_BASE_SQL)
            + "".join(f', "{cols.PREFIX}{n}"' for n in features)
            + " FROM predictions"
        )

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"
