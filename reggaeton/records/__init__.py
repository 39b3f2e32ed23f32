"""Prediction log: one interface, SQLite and MongoDB backends, chosen by URI."""

from reggaeton.records.base import (
    PredictionBatch,
    PredictionRecord,
    RecordRejected,
    RecordStore,
    StoreError,
    StoreUnavailable,
)
from reggaeton.records.factory import DEFAULT_URI, open_store

__all__ = [
    "DEFAULT_URI",
    "PredictionBatch",
    "PredictionRecord",
    "RecordStore",
    "RecordRejected",
    "StoreError",
    "StoreUnavailable",
    "open_store",
]
