"""TTL indexes: how the MongoDB prediction log applies ``PREDICTION_LOG_RETENTION_DAYS``.

The server's TTL monitor (a pass every 60 s) deletes a document once the BSON date in the
indexed field is older than ``expireAfterSeconds``; predictions store ``timestamp`` and feedback
events ``at`` as BSON dates, so no application code deletes anything. A TTL index must be a
single-field index, hence its own index beside the ``(timestamp, _id)`` one that streams windows.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import OperationFailure


def ensure_ttl(collection: Any, field: str, seconds: int | None, name: str) -> None:
    """Make ``collection`` expire documents ``seconds`` after their ``field`` date.

    Args:
        collection: A pymongo (or mongomock) collection.
        field: A field holding a BSON date.
        seconds: Lifetime; None leaves the index as it is (a reader that does not configure
            retention, e.g. the monitor), 0 or less removes it (keep everything).
        name: Index name (changing the lifetime keeps the name: ``collMod``).
    """
    if seconds is None:
        return
    current = collection.index_information().get(name)
    if seconds <= 0:
        if current is not None:
            collection.drop_index(name)
        return
    if current is None:
        collection.create_index(field, name=name, expireAfterSeconds=int(seconds))
        return
    if current.get("expireAfterSeconds") == int(seconds):
        return
    try:  # change the lifetime in place (no index rebuild)
        collection.database.command(
            {
                "collMod": collection.name,
                "index": {"name": name, "expireAfterSeconds": int(seconds)},
            }
        )
    except (OperationFailure, NotImplementedError):  # mongomock, or a server refusing collMod
        collection.drop_index(name)
        collection.create_index(field, name=name, expireAfterSeconds=int(seconds))
