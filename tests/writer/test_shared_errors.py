"""The writer and its spill know the store's errors only as the shared types."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from writer_helpers import make_records

from reggaeton.records.base import RecordRejected, StoreUnavailable
from service.spill import write_or_reject

ROOT = Path(__file__).resolve().parents[2]


def test_spill_and_writer_import_no_driver_error_classes() -> None:
    for module in ("service/spill.py", "service/writer.py"):
        tree = ast.parse((ROOT / module).read_text())
        names = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        names |= {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert not names & {"sqlite3", "pymongo", "bson"}, module


class _Refusing:
    """Refuses any call holding the record ``bad``; ``down`` makes every call unavailable."""

    def __init__(self, down: bool = False) -> None:
        self.down, self.stored = down, []

    def write_many(self, records):  # noqa: ANN001, ANN201
        if self.down:
            raise StoreUnavailable("simulated outage")
        if any(r.request_id == "r00002" for r in records):
            raise RecordRejected("simulated constraint")
        self.stored += records
        return len(records)


def test_a_rejected_record_is_isolated_and_an_outage_propagates() -> None:
    store = _Refusing()
    inserted, rejected = write_or_reject(store, make_records(5))
    assert inserted == 4 and [r.request_id for r in rejected] == ["r00002"]
    with pytest.raises(StoreUnavailable):  # an outage reaches the writer: it spills
        write_or_reject(_Refusing(down=True), make_records(2))
