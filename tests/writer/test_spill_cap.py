"""A long outage cannot fill the disk: the spill file stops at PREDICTION_SPILL_MAX_BYTES and what
the cap refuses is counted (``spill_full``, in ``reggaeton_prediction_log_spill_full_total``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from writer_helpers import FlakyStore, make_records, wait_until

from reggaeton.records.sqlite import SQLiteStore
from service.config import DEFAULT_SPILL_MAX_BYTES, ServiceConfig
from service.metrics import ServiceMetrics
from service.spill import SpillFile
from service.writer import PredictionWriter

CAP = 20_000


class DownStore(FlakyStore):
    """While ``down`` is set, every write and probe fails and nothing is stored."""

    def write_many(self, records):  # noqa: ANN001, ANN201
        if self.down.is_set():
            raise ConnectionError("store down (simulated)")
        return self.inner.write_many(records)


def test_spill_stops_at_its_cap_and_counts_what_it_drops(
    db_path: Path, spill_path: Path, capsys
) -> None:
    inner = SQLiteStore(db_path)
    store = DownStore(inner)
    store.down.set()
    writer = PredictionWriter(
        lambda: store,
        spill_path,
        batch_size=50,
        flush_interval=0.05,
        backoff=(0.02, 0.1),
        spill_max_bytes=CAP,
    ).start()
    for start in range(0, 1_000, 50):
        writer.submit_many(make_records(50, start=start))
    wait_until(lambda: writer.stats()["spilled"] + writer.stats()["spill_full"] == 1_000)
    stats = writer.stats()
    assert 0 < stats["spill_bytes"] <= CAP
    assert stats["spill_full"] > 0 and stats["dropped"] == stats["spill_full"]

    registry = CollectorRegistry()
    ServiceMetrics(registry).update_writer(stats)
    assert (
        registry.get_sample_value("reggaeton_prediction_log_spill_full_total")
        == stats["spill_full"]
    )

    store.down.clear()
    assert writer.flush(timeout=30)
    writer.close()
    final = writer.stats()
    assert inner.count() == final["spilled"] == final["replayed"]  # all that fit came back
    assert final["spilled"] + final["spill_full"] == 1_000  # the rest is counted, not silent
    assert final["spill_bytes"] == 0
    with capsys.disabled():
        print(
            f"\nspill cap {CAP} bytes during an outage: {final['spilled']} of 1000 records "
            f"spilled and replayed, {final['spill_full']} dropped by the cap and counted"
        )
    inner.close()


def test_spill_file_keeps_the_records_that_fit_under_its_cap(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "s.jsonl", fsync=False, max_bytes=1_000)
    assert spill.append(make_records(2)) == 2
    kept = spill.append(make_records(20, start=2))
    assert 0 < kept < 20 and spill.size() <= 1_000
    assert spill.append(make_records(5, start=30)) == 0  # full
    ids = [r.request_id for r in spill.read(0, 100)[0]]
    assert ids == [f"r{i:05d}" for i in range(2 + kept)]  # whole lines, in order


def test_spill_cap_setting() -> None:
    assert ServiceConfig.from_env({}).spill_max_bytes == DEFAULT_SPILL_MAX_BYTES == 256 * 2**20
    assert ServiceConfig.from_env({"PREDICTION_SPILL_MAX_BYTES": "0"}).spill_max_bytes == 0
    with pytest.raises(ValueError, match="PREDICTION_SPILL_MAX_BYTES"):
        ServiceConfig.from_env({"PREDICTION_SPILL_MAX_BYTES": "-5"})
