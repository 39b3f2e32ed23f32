"""Prediction log: one interface, SQLite and MongoDB backends, chosen by URI."""

from reggaeton.predlog.base import (
    PredictionBatch,
    PredictionRecord,
    PredictionStore,
    RecordRejected,
    StoreError,
    StoreUnavailable,
)
from reggaeton.predlog.factory import DEFAULT_URI, open_store

__all__ = [
    "DEFAULT_URI",
    "PredictionBatch",
    "PredictionRecord",
    "PredictionStore",
    "RecordRejected",
    "StoreError",
    "StoreUnavailable",
    "open_store",
]
