"""The prediction-log interface shared by the service (writes), feedback and monitoring (reads).

Backends: :mod:`reggaeton.records.sqlite` (default, embedded) and
:mod:`reggaeton.records.mongo` (production). Both pass the same contract test suite.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from reggaeton.timeutil import utcnow

BASE_COLUMNS = (
    "request_id",
    "timestamp",
    "model_version",
    "source",
    "probability",
    "prediction",
    "latency_ms",
    "feedback_label",
    "feedback_at",
)
"""Columns of every exported frame; one column per input feature follows them."""


class StoreError(Exception):
    """Base of the errors every backend raises, so callers need no driver's error classes."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or written now (connection, lock, disk); retry later.

    The driver's own error is the ``__cause__``.
    """


class RecordRejected(StoreError, ValueError):
    """The store refuses a record for its content (a constraint, a value it cannot hold):
    retrying the same record fails again, so it must be set aside."""


@dataclass
class PredictionRecord:
    """One logged prediction.

    Attributes:
        request_id: Unique id returned to the client (feedback refers to it).
        model_version: Full tag of the version that produced it.
        features: Raw validated input features (name -> value).
        probability: Predicted probability of reggaeton.
        prediction: Predicted label (1 reggaeton, 0 other).
        latency_ms: Server-side latency of the request that produced it.
        source: ``http``, ``grpc`` or ``batch``.
        timestamp: When it was predicted (UTC).
    """

    request_id: str
    model_version: str
    features: dict[str, float]
    probability: float
    prediction: int
    latency_ms: float = 0.0
    source: str = "http"
    timestamp: datetime = field(default_factory=utcnow)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (timestamp as ISO-8601 string; ``features`` copied, shallow)."""
        return {
            "request_id": self.request_id,
            "model_version": self.model_version,
            "features": dict(self.features),
            "probability": self.probability,
            "prediction": self.prediction,
            "latency_ms": self.latency_ms,
            "source": self.source,
            "timestamp": self.timestamp.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionRecord:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        ts = values.get("timestamp")
        if isinstance(ts, str):
            values["timestamp"] = datetime.fromisoformat(ts)
        return cls(**values)


@dataclass
class PredictionBatch:
    """The predictions of one request, column by column: the prediction log's write unit.

    Why columns: a 1,000-row request becomes one object holding arrays instead of 1,000
    :class:`PredictionRecord` objects and 1,000 feature dicts; backends bind the columns
    directly (see ``bench/README.md`` for the per-row cost before and after). Every row is
    still one prediction in the store: reads, feedback and retention see rows as before.

    Attributes:
        request_ids: One unique id per row (feedback refers to it).
        model_version: Full tag of the version that produced every row.
        features: Names of the columns of ``matrix``.
        matrix: ``(rows, len(features))`` float64 feature values; NaN means "not sent".
        probability: ``(rows,)`` predicted probabilities of reggaeton.
        prediction: ``(rows,)`` predicted labels (1 reggaeton, 0 other).
        latency_ms: Server-side latency of the request.
        source: ``http``, ``grpc`` or ``batch``.
        timestamp: When it was predicted (UTC).
    """

    request_ids: Sequence[str]
    model_version: str
    features: tuple[str, ...]
    matrix: np.ndarray
    probability: np.ndarray
    prediction: np.ndarray
    latency_ms: float = 0.0
    source: str = "http"
    timestamp: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        # Labels may come as a bool mask (``proba >= threshold``): store 0/1 integers.
        self.probability = np.asarray(self.probability, dtype=np.float64)
        self.prediction = np.asarray(self.prediction, dtype=np.int64)
        self.features = tuple(self.features)

    def __len__(self) -> int:
        return len(self.request_ids)

    def records(self) -> list[PredictionRecord]:
        """The rows as records (absent features left out): the slow path, used to find the
        one bad row of a refused batch and by backends without a columnar write."""
        names = self.features
        rows = self.matrix.tolist()
        return [
            PredictionRecord(
                rid,
                self.model_version,
                {k: v for k, v in zip(names, row, strict=True) if v == v},
                p,
                lab,
                self.latency_ms,
                self.source,
                self.timestamp,
            )
            for rid, row, p, lab in zip(
                self.request_ids,
                rows,
                self.probability.tolist(),
                self.prediction.tolist(),
                strict=True,
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (the spill file's line); NaN stays a float, so encode it with a
        NaN-aware encoder. ``kind`` tells it apart from a record's dict."""
        return {
            "kind": "batch",
            "request_ids": list(self.request_ids),
            "model_version": self.model_version,
            "features": list(self.features),
            "matrix": self.matrix.tolist(),
            "probability": self.probability.tolist(),
            "prediction": self.prediction.tolist(),
            "latency_ms": self.latency_ms,
            "source": self.source,
            "timestamp": self.timestamp.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionBatch:
        """Inverse of :meth:`to_dict` (``None`` in the matrix reads as NaN)."""
        names = tuple(data["features"])
        matrix = np.array(data["matrix"], dtype=np.float64).reshape(
            len(data["request_ids"]), len(names)
        )
        return cls(
            list(data["request_ids"]),
            data["model_version"],
            names,
            matrix,
            np.array(data["probability"], dtype=np.float64),
            np.array(data["prediction"], dtype=np.int64),
            float(data["latency_ms"]),
            data["source"],
            datetime.fromisoformat(data["timestamp"]),
        )


LogEntry = PredictionRecord | PredictionBatch
"""What a writer queues and a spill file holds: one record, or one request's batch."""


def entry_rows(entry: LogEntry) -> int:
    """Predictions an entry holds."""
    return len(entry) if isinstance(entry, PredictionBatch) else 1


def entry_from_dict(data: Mapping[str, Any]) -> LogEntry:
    """A record or a batch from its :meth:`to_dict` form (old spill lines are records)."""
    if data.get("kind") == "batch":
        return PredictionBatch.from_dict(data)
    return PredictionRecord.from_dict(data)


class RecordStore(abc.ABC):
    """Where predictions, feedback and monitoring runs are kept."""

    @abc.abstractmethod
    def write_many(self, records: Sequence[PredictionRecord]) -> int:
        """Insert records; a request_id already stored is skipped (replays are idempotent).

        Returns:
            How many records were newly inserted.
        """

    def write_batches(self, batches: Sequence[PredictionBatch]) -> int:
        """Insert the rows of several requests at once; a batch already stored is skipped
        (replays are idempotent; a backend may store a batch as one unit, so re-sending some
        of its ids in another batch is not supported).

        This default goes through :meth:`write_many` row by row; backends override it with
        one columnar write.

        Returns:
            How many rows were newly inserted.

        Raises:
            RecordRejected: a row cannot be stored; nothing of the call is stored then.
            StoreUnavailable: the store cannot be written now.
        """
        return self.write_many([r for b in batches for r in b.records()])

    @abc.abstractmethod
    def add_feedback(self, request_id: str, label: int, at: datetime | None = None) -> bool:
        """Attach a ground-truth label to a prediction; the last feedback wins.

        Every feedback event is also kept in the feedback history.

        Returns:
            False when no prediction has that request_id.
        """

    @abc.abstractmethod
    def get(self, request_id: str) -> dict[str, Any] | None:
        """One prediction with its feedback as a flat dict (columns as in exports), or None."""

    @abc.abstractmethod
    def feedback_history(self, request_id: str) -> list[dict[str, Any]]:
        """Every feedback event for a request, oldest first (``label``, ``at``)."""

    @abc.abstractmethod
    def count(self, since: datetime | None = None, until: datetime | None = None) -> int:
        """Number of predictions with ``since <= timestamp < until``."""

    @abc.abstractmethod
    def iter_window(
        self, since: datetime | None = None, until: datetime | None = None, chunk_size: int = 50_000
    ) -> Iterator[pd.DataFrame]:
        """Stream predictions of a window, oldest first, as DataFrames of <= chunk_size rows.

        Columns: :data:`BASE_COLUMNS` then one per feature seen. ``timestamp`` and
        ``feedback_at`` are UTC datetimes; ``feedback_label`` is NaN without feedback.
        """

    @abc.abstractmethod
    def iter_late_feedback(
        self,
        feedback_since: datetime,
        feedback_until: datetime,
        predicted_since: datetime,
        predicted_until: datetime,
        chunk_size: int = 50_000,
    ) -> Iterator[pd.DataFrame]:
        """Stream predictions made in ``[predicted_since, predicted_until)`` whose latest
        feedback arrived in ``[feedback_since, feedback_until)`` (ground truth that came after
        the prediction's own monitoring window), as frames like :meth:`iter_window`'s."""

    def export(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """The whole window as one DataFrame (see :meth:`iter_window`)."""
        frames = list(self.iter_window(since, until))
        if not frames:
            from reggaeton.schema import FEATURES

            return pd.DataFrame(columns=[*BASE_COLUMNS, *(f.name for f in FEATURES)])
        return pd.concat(frames, ignore_index=True)

    @abc.abstractmethod
    def save_monitoring_run(self, run: Mapping[str, Any]) -> None:
        """Append one monitoring-job summary (JSON-serialisable, with ``finished_at``)."""

    @abc.abstractmethod
    def monitoring_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Most recent monitoring runs, newest first."""

    @abc.abstractmethod
    def save_run_artifact(self, run_id: str, name: str, started_at: datetime, data: bytes) -> None:
        """Keep one file of a monitoring run (its whylogs profile, its HTML report) beside the
        run's summary, so nothing is lost with the job's pod; saving again replaces it."""

    @abc.abstractmethod
    def run_artifacts(
        self, name: str, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[str, datetime, bytes]]:
        """``(run_id, started_at, data)`` of the artifact ``name`` of every run started in
        ``[since, until)``, oldest first."""

    def prune(self, before: datetime, max_rows: int) -> int:
        """Delete up to ``max_rows`` of the oldest predictions made before ``before``, with
        their feedback history, in one short transaction (see
        :mod:`reggaeton.records.retention`); call again while it returns ``max_rows``.

        Returns:
            How many predictions were deleted. This default deletes nothing: for a backend
            whose server expires records itself (MongoDB's TTL indexes).
        """
        return 0

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` if the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
