"""How long the prediction log keeps a prediction: the one place its defaults are set.

A prediction and its feedback history are kept ``PREDICTION_LOG_RETENTION_DAYS`` days (default
30) after the prediction was made, then deleted: SQLite by the service's writer, in bounded
deletes of :data:`PRUNE_CHUNK_ROWS` rows per transaction; MongoDB by TTL indexes on the
predictions' ``timestamp`` and the feedback events' ``at`` (the server deletes them).

The monitor counts feedback that arrives up to ``performance.late_feedback_days`` after its
prediction's window, so that window plus one monitoring window must end inside the retention:
:data:`DEFAULT_LATE_FEEDBACK_DAYS` is derived from :data:`DEFAULT_RETENTION_DAYS` here, and the
monitor's configuration refuses a late-feedback window that would reach pruned predictions.
The variable itself is read, with the other settings, by ``service.config`` and
``monitoring.config``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from reggaeton.timeutil import utcnow

DEFAULT_RETENTION_DAYS = 30.0
"""Days a prediction (and its feedback) is kept; 0 keeps everything forever."""

LATE_FEEDBACK_MARGIN_DAYS = 2.0
"""Retention minus the late-feedback window: one monitoring window (24 h at most by default)
plus a day for the pruning cadence and clock skew."""

DEFAULT_LATE_FEEDBACK_DAYS = DEFAULT_RETENTION_DAYS - LATE_FEEDBACK_MARGIN_DAYS
"""The monitor's default ``performance.late_feedback_days`` (28)."""

PRUNE_CHUNK_ROWS = 5_000
"""Predictions deleted per SQLite transaction: the writer handles its queue between chunks,
so a large backlog of expired rows never holds the log's write lock for long."""

PRUNE_INTERVAL_S = 600.0
"""Seconds between two pruning passes of a writer once nothing expired is left."""


def cutoff(days: float, now: datetime | None = None) -> datetime | None:
    """Predictions made before this time are expired; None when nothing expires."""
    if days <= 0:
        return None
    return (now or utcnow()) - timedelta(days=days)
