"""Store outages that really happen, then end: an unwritable SQLite file, a failing Mongo client.

SQLite: the tests run as root, for whom file permissions do not block writes, so the database
file is made immutable with ``chattr +i`` (ext4/xfs/btrfs; the test is skipped where the
filesystem or the tool does not support it). For root and everyone else that is what a
write-protected file is to SQLite: opening it silently falls back to a read-only connection,
and writes fail with ``attempt to write a readonly database``, exactly the production fault.
Only the main file is made immutable, never ``-wal``/``-shm``: an immutable ``-shm`` that is
already mapped makes SQLite die of SIGBUS.

MongoDB: a client whose every call raises :class:`pymongo.errors.AutoReconnect` while ``down``
is set, wrapping mongomock (or a real server when ``MONGODB_URI`` is set).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from reggaeton.records import RecordStore
from reggaeton.records.mongo import MongoStore
from reggaeton.records.sqlite import SQLiteStore


class SQLiteOutage:
    """A real SQLite log file that becomes unwritable (``chattr +i``) and writable again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        SQLiteStore(path).close()  # the log exists, from an earlier run (its tables too)
        self.broken = False

    def open(self) -> RecordStore:
        return SQLiteStore(self.path)

    def break_(self) -> None:
        if os.geteuid() != 0:
            self.path.chmod(0o444)
        else:
            if shutil.which("chattr") is None:
                pytest.skip("chattr not installed: cannot make a file unwritable for root")
            done = subprocess.run(["chattr", "+i", str(self.path)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"chattr +i unsupported here: {done.stderr.strip()}")
        self.broken = True
        assert not _writable(self.path), "the outage did not make the file unwritable"

    def restore(self) -> None:
        if self.broken:
            if os.geteuid() != 0:
                self.path.chmod(0o644)
            else:
                subprocess.run(["chattr", "-i", str(self.path)], check=True)
            self.broken = False


def _writable(path: Path) -> bool:
    try:
        with open(path, "r+b"):
            return True
    except OSError:
        return False


class _Flaky:
    """Proxy whose methods raise AutoReconnect while ``down`` is set; sub-objects proxied too."""

    def __init__(self, inner: Any, down: threading.Event) -> None:
        self._inner, self._down = inner, down

    def __getitem__(self, name: str) -> _Flaky:
        return _Flaky(self._inner[name], self._down)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name in ("admin",) or type(value).__name__ in ("Database", "Collection"):
            return _Flaky(value, self._down)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._down.is_set():
                raise AutoReconnect("connection refused (simulated outage)")
            return value(*args, **kwargs)

        return call


class MongoOutage:
    """A MongoStore whose client fails while the outage lasts, then answers again."""

    def __init__(self, kind: str) -> None:
        self.down = threading.Event()
        self.database = f"reggaeton_test_{uuid.uuid4().hex[:12]}"
        if kind == "mongomock":
            import mongomock

            self.client = mongomock.MongoClient(tz_aware=True)
        else:
            uri = os.environ.get("MONGODB_URI")
            if not uri:
                pytest.skip("MONGODB_URI not set: real MongoDB outage run skipped")
            self.client = MongoStore.from_uri(uri).client

    def open(self) -> RecordStore:
        return MongoStore(_Flaky(self.client, self.down), self.database)

    def break_(self) -> None:
        self.down.set()

    def restore(self) -> None:
        self.down.clear()

    def cleanup(self) -> None:
        self.client.drop_database(self.database)


OUTAGE_BACKENDS = ["sqlite", "mongomock", pytest.param("mongodb", marks=pytest.mark.mongo)]


def make_outage(kind: str, tmp_path: Path) -> SQLiteOutage | MongoOutage:
    """The outage of one backend (see :data:`OUTAGE_BACKENDS`)."""
    if kind == "sqlite":
        return SQLiteOutage(tmp_path / "log" / "predictions.db")
    return MongoOutage(kind)


def on_one_thread() -> tuple[Callable[..., Any], Callable[[], None]]:
    """``run(fn, *args)`` on one long-lived thread (a worker's request thread), and ``stop``."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        return pool.submit(fn, *args).result(timeout=60)

    return run, pool.shutdown
