"""The writer with the MongoDB backend: a real pymongo outage spills, mongomock takes the replay."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from writer_helpers import make_records

from reggaeton.records import open_store
from service.writer import PredictionWriter


def test_unreachable_mongodb_spills_and_the_next_writer_replays(spill_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    down_uri = f"mongodb://127.0.0.1:{port}/reggaeton?serverSelectionTimeoutMS=100"
    first = PredictionWriter(
        lambda: open_store(down_uri),
        spill_path,
        batch_size=100,
        flush_interval=0.05,
        backoff=(0.05, 0.1),
    ).start()
    assert first.submit_many(make_records(150)) == 150
    first.close(timeout=30)
    assert first.stats()["spilled"] == 150 and first.stats()["write_failures"] >= 1

    up_uri = f"mongomock://{uuid.uuid4().hex}/reggaeton"
    second = PredictionWriter(
        lambda: open_store(up_uri), spill_path, batch_size=100, flush_interval=0.05
    ).start()
    second.submit_many(make_records(50, start=150))
    assert second.flush(timeout=20) is True
    second.close()
    store = open_store(up_uri)
    frame = store.export()
    assert list(frame["request_id"]) == [r.request_id for r in make_records(200)]
    assert second.stats()["written"] == 200 and second.stats()["dropped"] == 0
