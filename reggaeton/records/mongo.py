"""MongoDB prediction log (pymongo), for production.

Documents in the predictions collection::

    {request_id, timestamp (UTC date), model_version, source, probability, prediction,
     latency_ms, features: {name: value}, feedback_label?, feedback_at?}

Indexes: ``request_id`` unique; ``(timestamp, _id)`` (time windows, streamed oldest first
without an in-memory sort); with a retention, TTL indexes on ``timestamp`` and the feedback
events' ``at`` (:mod:`reggaeton.records.mongo_ttl`). BSON dates keep milliseconds, so
timestamps come back truncated to the millisecond. The feedback history and monitoring runs
live in their own collections.

A request's :class:`~reggaeton.records.base.PredictionBatch` becomes its documents straight from
the columns, and everything the writer hands over goes in one ``insert_many``. Errors leave as
:class:`~reggaeton.records.base.RecordRejected` (a document's content) or
:class:`~reggaeton.records.base.StoreUnavailable` (everything else), never as pymongo's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd
import pymongo
from pymongo.errors import (
    BulkWriteError,
    DocumentTooLarge,
    InvalidDocument,
    PyMongoError,
    WriteError,
)

from reggaeton.records import columns as cols
from reggaeton.records.base import (
    BASE_COLUMNS,
    PredictionBatch,
    PredictionRecord,
    RecordRejected,
    RecordStore,
    StoreUnavailable,
    utcnow,
)
from reggaeton.records.mongo_ttl import ensure_ttl

DEFAULT_DATABASE = "reggaeton"
DEFAULT_COLLECTIONS = {
    "collection": "predictions",
    "feedback_collection": "feedback",
    "runs_collection": "monitoring_runs",
    "artifacts_collection": "monitoring_artifacts",
}
"""URI query options naming the collections, with their defaults."""

CLIENT_DEFAULTS = {
    "serverSelectionTimeoutMS": 2000,
    "connectTimeoutMS": 2000,
    "socketTimeoutMS": 10000,
}
"""Short timeouts so an outage fails fast (the writer spills); URI options override them."""

_DUPLICATE_KEY = 11000
_DATA_ERRORS = (BulkWriteError, WriteError, DocumentTooLarge, InvalidDocument)
"""pymongo errors about a document's content (once duplicate keys are filtered out)."""

F = TypeVar("F", bound=Callable[..., Any])


def _translated(method: F) -> F:
    """Decorate a store method: pymongo errors leave as the shared error types."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except _DATA_ERRORS as exc:
            raise RecordRejected(f"mongodb: {exc}") from exc
        except PyMongoError as exc:
            raise StoreUnavailable(f"mongodb: {exc}") from exc

    return wrapper  # type: ignore[return-value]


class MongoStore(RecordStore):
    """Prediction log in MongoDB.

    Args:
        client: A ``pymongo.MongoClient`` (or a compatible one, e.g. mongomock's in tests),
            created with ``tz_aware=True``.
        database: Database name.
        collection: Predictions collection.
        feedback_collection: Feedback-history collection.
        runs_collection: Monitoring-runs collection.
        artifacts_collection: Monitoring-artifacts collection.
        retention_days: Expire predictions and feedback events this many days after their
            time (TTL indexes, set by the first write); 0 removes the TTL indexes, None (a
            reader such as the monitor) leaves them as they are.
    """

    def __init__(
        self,
        client: Any,
        database: str = DEFAULT_DATABASE,
        collection: str = "predictions",
        feedback_collection: str = "feedback",
        runs_collection: str = "monitoring_runs",
        artifacts_collection: str = "monitoring_artifacts",
        retention_days: float | None = None,
    ) -> None:
        self.client = client
        self.ttl_seconds = None if retention_days is None else round(retention_days * 86400)
        db = client[database]
        self.artifacts = db[artifacts_collection]
        self.predictions = db[collection]
        self.feedback = db[feedback_collection]
        self.runs = db[runs_collection]
        self._indexed = False

    @classmethod
    def from_uri(
        cls, uri: str, retention_days: float | None = None, client: Any = None
    ) -> MongoStore:
        """Open ``mongodb://[user:pass@]host[:port][,host...]/[db][?options]``.

        The path names the database (default ``reggaeton``); the query options ``collection``,
        ``feedback_collection``, ``runs_collection`` and ``artifacts_collection`` name the
        collections (defaults ``predictions``, ``feedback``, ``monitoring_runs``,
        ``monitoring_artifacts``) and are removed before the URI
        reaches pymongo. ``mongodb+srv://`` works too. ``client``, when given, is used
        instead of a new ``pymongo.MongoClient`` for that URI (e.g. an in-memory one in tests).
        """
        parts = urlsplit(uri)
        query = parse_qsl(parts.query, keep_blank_values=True)
        names = dict(DEFAULT_COLLECTIONS)
        rest = []
        for key, value in query:
            if key in names:
                if not value:
                    raise ValueError(f"PREDICTION_STORE_URI: {key} must not be empty")
                names[key] = value
            else:
                rest.append((key, value))
        database = parts.path.strip("/") or DEFAULT_DATABASE
        if "/" in database:
            raise ValueError(f"PREDICTION_STORE_URI: bad database name {database!r}")
        if client is None:
            given = {key.lower() for key, _ in rest}
            options = {k: v for k, v in CLIENT_DEFAULTS.items() if k.lower() not in given}
            clean = urlunsplit((parts.scheme, parts.netloc, "/" + database, urlencode(rest), ""))
            client = pymongo.MongoClient(clean, tz_aware=True, connect=False, **options)
        return cls(
            client,
            database,
            names["collection"],
            names["feedback_collection"],
            names["runs_collection"],
            names["artifacts_collection"],
            retention_days,
        )

    def _ensure_indexes(self) -> None:
        if not self._indexed:
            self.predictions.create_index("request_id", unique=True)
            self.predictions.create_index([("timestamp", 1), ("_id", 1)])
            self.predictions.create_index(
                "feedback_at", partialFilterExpression={"feedback_at": {"$exists": True}}
            )
            self.feedback.create_index([("request_id", 1), ("_id", 1)])
            self.runs.create_index([("finished_at", -1), ("_id", -1)])
            self.artifacts.create_index([("run_id", 1), ("name", 1)], unique=True)
            self.artifacts.create_index([("name", 1), ("started_at", 1)])
            ensure_ttl(self.predictions, "timestamp", self.ttl_seconds, "timestamp_ttl")
            ensure_ttl(self.feedback, "at", self.ttl_seconds, "at_ttl")
            self._indexed = True

    # -- writes ------------------------------------------------------------------------------
    @_translated
    def write_many(self, records: Sequence[PredictionRecord]) -> int:
        """insert_many(ordered=False); duplicate request_ids (E11000) are skipped."""
        if not records:
            return 0
        return self._insert([_to_doc(r) for r in records])

    @_translated
    def write_batches(self, batches: Sequence[PredictionBatch]) -> int:
        """Every row of every batch in one insert_many(ordered=False), documents built from
        the columns; duplicate request_ids (E11000) are skipped."""
        docs: list[dict[str, Any]] = []
        for batch in batches:
            docs += _batch_docs(cols.check_batch(batch))
        return self._insert(docs) if docs else 0

    def _insert(self, docs: list[dict[str, Any]]) -> int:
        self._ensure_indexes()
        try:
            return len(self.predictions.insert_many(docs, ordered=False).inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors) or exc.details.get(
                "writeConcernErrors"
            ):
                raise
            return int(exc.details.get("nInserted", len(docs) - len(errors)))

    @_translated
    def add_feedback(self, request_id: str, label: int, at: datetime | None = None) -> bool:
        """Set the latest feedback on the prediction and append it to the history."""
        label = cols.check_label(label)
        when = cols.as_utc(at or utcnow())
        self._ensure_indexes()
        result = self.predictions.update_one(
            {"request_id": request_id}, {"$set": {"feedback_label": label, "feedback_at": when}}
        )
        if result.matched_count == 0:
            return False
        self.feedback.insert_one({"request_id": request_id, "label": label, "at": when})
        return True

    @_translated
    def save_monitoring_run(self, run: Mapping[str, Any]) -> None:
        """Store one monitoring summary (as its JSON form); ``finished_at`` defaults to now."""
        doc, finished = cols.normalise_run(run)
        self._ensure_indexes()
        self.runs.insert_one({"finished_at": finished, "doc": doc})

    @_translated
    def save_run_artifact(self, run_id: str, name: str, started_at: datetime, data: bytes) -> None:
        """Keep one file of a monitoring run (replaces an earlier one of the same name)."""
        self._ensure_indexes()
        self.artifacts.replace_one(
            {"run_id": run_id, "name": name},
            {
                "run_id": run_id,
                "name": name,
                "started_at": cols.as_utc(started_at),
                "data": bytes(data),
            },
            upsert=True,
        )

    def run_artifacts(
        self, name: str, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[str, datetime, bytes]]:
        """``(run_id, started_at, data)`` of artifact ``name`` of runs in the range, oldest
        first."""
        query: dict[str, Any] = {"name": name}
        bounds = _window(since, until).get("timestamp")
        if bounds:
            query["started_at"] = bounds
        try:
            for doc in self.artifacts.find(query).sort([("started_at", 1), ("run_id", 1)]):
                yield doc["run_id"], cols.as_utc(doc["started_at"]), bytes(doc["data"])
        except PyMongoError as exc:
            raise StoreUnavailable(f"mongodb: {exc}") from exc

    # -- reads -------------------------------------------------------------------------------
    @_translated
    def get(self, request_id: str) -> dict[str, Any] | None:
        """One prediction as a flat dict: base columns plus the features it carries."""
        doc = self.predictions.find_one({"request_id": request_id}, {"_id": 0})
        if doc is None:
            return None
        out = {key: doc.get(key) for key in BASE_COLUMNS}
        for key in ("timestamp", "feedback_at"):
            if out[key] is not None:
                out[key] = cols.as_utc(out[key])
        out.update((k, v) for k, v in (doc.get("features") or {}).items() if v is not None)
        return out

    @_translated
    def feedback_history(self, request_id: str) -> list[dict[str, Any]]:
        """Every feedback event for a request, oldest first."""
        cursor = self.feedback.find({"request_id": request_id}).sort("_id", 1)
        return [{"label": d["label"], "at": cols.as_utc(d["at"])} for d in cursor]

    @_translated
    def count(self, since: datetime | None = None, until: datetime | None = None) -> int:
        """Number of predictions with ``since <= timestamp < until``."""
        return int(self.predictions.count_documents(_window(since, until)))

    def iter_window(
        self, since: datetime | None = None, until: datetime | None = None, chunk_size: int = 50_000
    ) -> Iterator[pd.DataFrame]:
        """Stream a window oldest first, in DataFrames of at most ``chunk_size`` rows."""
        return self._stream(_window(since, until), chunk_size)

    def iter_late_feedback(
        self,
        feedback_since: datetime,
        feedback_until: datetime,
        predicted_since: datetime,
        predicted_until: datetime,
        chunk_size: int = 50_000,
    ) -> Iterator[pd.DataFrame]:
        """Predictions of ``[predicted_since, predicted_until)`` whose feedback arrived in
        ``[feedback_since, feedback_until)``, oldest prediction first."""
        query = _window(predicted_since, predicted_until) | {
            "feedback_at": {"$gte": cols.as_utc(feedback_since), "$lt": cols.as_utc(feedback_until)}
        }
        return self._stream(query, chunk_size)

    def _stream(self, query: dict[str, Any], chunk_size: int) -> Iterator[pd.DataFrame]:
        if chunk_size < 1:
            raise ValueError("chunk_size: must be >= 1")
        return self._chunks(query, chunk_size)  # (indexes are the writers' job)

    def _chunks(self, query: dict[str, Any], chunk_size: int) -> Iterator[pd.DataFrame]:
        cursor = (
            self.predictions.find(query, {"_id": 0})
            .sort([("timestamp", 1), ("_id", 1)])
            .batch_size(min(chunk_size, 10_000))
        )
        try:
            batch: list[dict[str, Any]] = []
            for doc in cursor:
                batch.append(doc)
                if len(batch) >= chunk_size:
                    yield cols.frame_from_docs(batch)
                    batch = []
            if batch:
                yield cols.frame_from_docs(batch)
        except PyMongoError as exc:
            raise StoreUnavailable(f"mongodb: {exc}") from exc
        finally:
            cursor.close()

    @_translated
    def monitoring_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Most recent monitoring runs, newest first."""
        cursor = self.runs.find({}).sort([("finished_at", -1), ("_id", -1)]).limit(int(limit))
        return [json.loads(d["doc"]) for d in cursor]

    @_translated
    def ping(self) -> None:
        """Raise :class:`~reggaeton.records.base.StoreUnavailable` if the server does not
        answer."""
        self.client.admin.command("ping")

    def close(self) -> None:
        """Close the client."""
        self.client.close()

    def __repr__(self) -> str:
        return f"MongoStore({self.predictions.full_name!r})"


def _to_doc(record: PredictionRecord) -> dict[str, Any]:
    cols.check_record(record)
    return {
        "request_id": record.request_id,
        "timestamp": cols.as_utc(record.timestamp),
        "model_version": record.model_version,
        "source": record.source,
        "probability": float(record.probability),
        "prediction": int(record.prediction),
        "latency_ms": float(record.latency_ms),
        "features": {
            cols.check_feature_name(k): (None if v is None else float(v))
            for k, v in record.features.items()
        },
    }


def _batch_docs(batch: PredictionBatch) -> list[dict[str, Any]]:
    """One document per row of a checked batch, as :func:`_to_doc` would build it (absent
    features left out)."""
    ts = cols.as_utc(batch.timestamp)
    names, version, source = batch.features, batch.model_version, batch.source
    latency = float(batch.latency_ms)
    return [
        {
            "request_id": rid,
            "timestamp": ts,
            "model_version": version,
            "source": source,
            "probability": p,
            "prediction": lab,
            "latency_ms": latency,
            "features": {k: v for k, v in zip(names, row, strict=True) if v == v},
        }
        for rid, row, p, lab in zip(
            batch.request_ids,
            batch.matrix.tolist(),
            batch.probability.tolist(),
            batch.prediction.tolist(),
            strict=True,
        )
    ]


def _window(since: datetime | None, until: datetime | None) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if since is not None:
        bounds["$gte"] = cols.as_utc(since)
    if until is not None:
        bounds["$lt"] = cols.as_utc(until)
    return {"timestamp": bounds} if bounds else {}
