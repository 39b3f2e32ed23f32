"""Open a prediction store from ``PREDICTION_STORE_URI``."""

from __future__ import annotations

from collections.abc import Callable

from reggaeton.records.base import RecordStore

Opener = Callable[[str, float | None], RecordStore]
"""Opens a store from its URI and the retention in days (see :func:`open_store`)."""

_OPENERS: dict[str, Opener] = {}

DEFAULT_URI = "sqlite:///var/predictions.db"
"""Default store: an SQLite file under the ignored ``var/`` folder (relative to the cwd)."""


def register_scheme(prefix: str, opener: Opener) -> None:
    """Make :func:`open_store` hand URIs starting with ``prefix`` to ``opener``.

    The seam for stores this package does not ship: tests register an in-memory MongoDB
    (mongomock) with it, so no test double lives in production code.
    """
    _OPENERS[prefix] = opener


def open_store(uri: str | None = None, retention_days: float | None = None) -> RecordStore:
    """Open the store a URI names.

    Args:
        uri: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
            ``mongodb://host/db?collection=predictions`` (``mongodb+srv://`` too), or a scheme
            added with :func:`register_scheme`. None means the default.
        retention_days: For MongoDB, the lifetime its TTL indexes get (see
            :class:`~reggaeton.records.mongo.MongoStore`); SQLite is pruned by its writer
            (:meth:`~reggaeton.records.base.RecordStore.prune`) and ignores it.

    Raises:
        ValueError: for an unknown scheme.
    """
    uri = uri or DEFAULT_URI
    if uri.startswith("sqlite:///"):
        from reggaeton.records.sqlite import SQLiteStore

        return SQLiteStore(uri.removeprefix("sqlite:///"))
    for prefix, opener in _OPENERS.items():
        if uri.startswith(prefix):
            return opener(uri, retention_days)
    if uri.startswith(("mongodb://", "mongodb+srv://")):
        from reggaeton.records.mongo import MongoStore

        return MongoStore.from_uri(uri, retention_days)
    raise ValueError(
        f"PREDICTION_STORE_URI: unsupported scheme in {uri!r} (use sqlite:///path or mongodb://...)"
    )
