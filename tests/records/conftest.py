"""Fixtures: one RecordStore per backend (SQLite file, mongomock, real MongoDB if set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reggaeton.records import RecordStore, open_store

BACKENDS = ["sqlite", "mongomock", pytest.param("mongodb", marks=pytest.mark.mongo)]


def open_backend(kind: str, tmp_path: Path) -> RecordStore:
    """A fresh, empty store of the given kind."""
    if kind == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'log' / 'predictions.db'}")
    if kind == "mongomock":
        return open_store(f"mongomock://{uuid.uuid4().hex}/reggaeton_test")
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        pytest.skip("MONGODB_URI not set: real MongoDB contract run skipped")
    from reggaeton.records.mongo import MongoStore

    store = MongoStore.from_uri(uri)
    db = f"reggaeton_test_{uuid.uuid4().hex[:12]}"
    return MongoStore(store.client, db)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """An empty store, once per backend; a real MongoDB test database is dropped afterwards."""
    s = open_backend(request.param, tmp_path)
    yield s
    if request.param == "mongodb":
        s.client.drop_database(s.predictions.database.name)
    s.close()
