"""Prediction log: one interface, SQLite and MongoDB backends, chosen by URI."""

from reggaeton.predlog.base import PredictionRecord, PredictionStore
from reggaeton.predlog.factory import DEFAULT_URI, open_store

__all__ = ["DEFAULT_URI", "PredictionRecord", "PredictionStore", "open_store"]
