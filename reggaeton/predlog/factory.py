"""Open a prediction store from ``PREDICTION_STORE_URI``."""

from __future__ import annotations

from reggaeton.predlog.base import PredictionStore

DEFAULT_URI = "sqlite:///var/predictions.db"
"""Default store: an SQLite file under the ignored ``var/`` folder (relative to the cwd)."""


def open_store(uri: str | None = None, retention_days: float | None = None) -> PredictionStore:
    """Open the store a URI names.

    Args:
        uri: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
            ``mongodb://host/db?collection=predictions`` (``mongodb+srv://`` too).
            ``mongomock://`` gives an in-memory MongoDB (tests). None means the default.
        retention_days: For MongoDB, the lifetime its TTL indexes get (see
            :class:`~reggaeton.predlog.mongo.MongoStore`); SQLite is pruned by its writer
            (:meth:`~reggaeton.predlog.base.PredictionStore.prune`) and ignores it.

    Raises:
        ValueError: for an unknown scheme.
    """
    uri = uri or DEFAULT_URI
    if uri.startswith("sqlite:///"):
        from reggaeton.predlog.sqlite import SQLiteStore

        return SQLiteStore(uri.removeprefix("sqlite:///"))
    if uri.startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
        from reggaeton.predlog.mongo import MongoStore

        return MongoStore.from_uri(uri, retention_days)
    raise ValueError(f"PREDICTION_STORE_URI: unsupported scheme in {uri!r} "
                     "(use sqlite:///path or mongodb://...)")
