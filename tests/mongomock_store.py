"""``mongomock://name/db`` store URIs for tests: an in-memory MongoDB behind ``open_store``.

Registered for every test session by ``tests/conftest.py`` through the public seam
:func:`reggaeton.records.factory.register_scheme`, so production code holds no test double.
Every store opened with the same ``name`` in a process shares one in-memory server (a writer
and a reader of one test see the same data).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reggaeton.records.factory import register_scheme
from reggaeton.records.mongo import MongoStore

SCHEME = "mongomock://"
_SERVERS: dict[str, Any] = {}
_LOCK = threading.Lock()


def open_mongomock(uri: str, retention_days: float | None = None) -> MongoStore:
    """A :class:`MongoStore` on the in-memory server ``name`` of ``mongomock://name/db?...``
    (database and collection options parsed as for a real URI)."""
    import mongomock

    parts = urlsplit(uri)
    with _LOCK:
        server = _SERVERS.setdefault(parts.netloc, mongomock.MongoClient()._store)
    client = mongomock.MongoClient(tz_aware=True, _store=server)
    real = urlunsplit(("mongodb", "localhost", parts.path, parts.query, ""))
    return MongoStore.from_uri(real, retention_days, client=client)


def register() -> None:
    """Make ``open_store("mongomock://...")`` open an in-memory MongoDB."""
    register_scheme(SCHEME, open_mongomock)
