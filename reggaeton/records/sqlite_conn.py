"""SQLite connections of a store: one per thread, dropped and reopened when the file goes bad.

Why: when the database file cannot be written at the moment a connection opens (permissions,
an immutable or read-only mounted file, a volume still being attached), SQLite does not fail:
it silently opens the file read-only, and every write on that connection fails with
``attempt to write a readonly database`` (``SQLITE_READONLY``) for as long as the connection
lives, even after the file is writable again. A ``file:...?mode=rw`` URI does not prevent it
(measured with SQLite 3.40: the same silent fallback) and ``BEGIN IMMEDIATE`` succeeds on such a
connection, so the fallback cannot be detected when opening; it shows at the first write. A
file deleted or replaced under an open connection (``SQLITE_READONLY_DBMOVED``), disk I/O errors
and "unable to open" leave a connection just as useless.

Every store method runs through :func:`heals`: such an error closes the calling thread's
connection, and the next call opens a new one, which works as soon as the file is writable
again: no restart. A read-only failure on a connection opened before the call is retried once
at once on a new connection (nothing was written: SQLite refused the write), so the first call
after an outage ends already succeeds. Whatever still fails leaves the store as one of the
shared errors (:func:`translate`), so callers never handle ``sqlite3`` classes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reggaeton.records.base import RecordRejected, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

BROKEN_CODES = frozenset(
    {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB}
)
"""Primary result codes after which a connection is discarded (extended codes included)."""

F = TypeVar("F", bound=Callable[..., Any])


def primary_code(exc: BaseException) -> int | None:
    """SQLite primary result code of an error (``SQLITE_READONLY`` for ``..._DBMOVED``)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_broken(exc: BaseException) -> bool:
    """True when ``exc`` says the connection, not the statement, is the problem."""
    return isinstance(exc, sqlite3.Error) and primary_code(exc) in BROKEN_CODES


class ThreadConnections:
    """One connection per thread, opened on first use by ``connect``.

    Args:
        connect: Opens and configures a new connection.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []

    def has_current(self) -> bool:
        """Whether the calling thread already has a connection."""
        return getattr(self._local, "conn", None) is not None

    def get(self) -> sqlite3.Connection:
        """The calling thread's connection (opened now if it has none)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._open.append(conn)
        return conn

    def discard_current(self) -> None:
        """Close the calling thread's connection; its next :meth:`get` opens a new one."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is None:
            return
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)
        with contextlib.suppress(sqlite3.Error):  # a broken connection may refuse even that
            conn.close()

    def close_all(self) -> None:
        """Close every connection opened so far (shutdown)."""
        with self._lock:
            connections, self._open = self._open, []
        for conn in connections:
            conn.close()
        self._local = threading.local()


DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError)
"""SQLite errors about a row's content (a constraint, a value it cannot bind)."""


def translate(exc: sqlite3.Error) -> StoreError:
    """The shared error for an SQLite one: its content refused, or the store unavailable."""
    kind = RecordRejected if isinstance(exc, DATA_ERRORS) else StoreUnavailable
    return kind(f"sqlite: {exc}")


def heals(method: F) -> F:
    """Decorate a store method: a broken connection is discarded (see the module docstring),
    and an SQLite error leaves as :class:`RecordRejected` or :class:`StoreUnavailable`.

    The decorated object must have a ``_connections`` :class:`ThreadConnections`.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return _healing_call(method, self, args, kwargs)
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    return wrapper  # type: ignore[return-value]


def _healing_call(method: Callable[..., Any], self: Any, args: Any, kwargs: Any) -> Any:
    """Run ``method``; retry once on a fresh connection after a read-only failure of a reused
    one (nothing was written); discard a broken connection."""
    connections: ThreadConnections = self._connections
    reused = connections.has_current()
    try:
        return method(self, *args, **kwargs)
    except sqlite3.Error as exc:
        if not is_broken(exc):
            raise
        connections.discard_current()
        if not (reused and primary_code(exc) == sqlite3.SQLITE_READONLY):
            raise
        log.warning(
            "prediction log %s: %s on a connection opened earlier; reopening",
            getattr(self, "path", "?"),
            exc,
        )
    try:
        return method(self, *args, **kwargs)
    except sqlite3.Error as exc:
        if is_broken(exc):
            connections.discard_current()
        raise


class transaction:  # noqa: N801 - used like a function
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection.

    A failed ``ROLLBACK`` (the connection broke meanwhile) does not hide the original error.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
