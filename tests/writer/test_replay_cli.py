"""The operators' spill replay CLI, run as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from writer_helpers import make_records

from reggaeton.records.sqlite import SQLiteStore
from service.spill import SpillFile
from service.writer import main

ROOT = Path(__file__).resolve().parents[2]


def test_replay_cli_loads_spill_without_duplicates(
    db_path: Path, spill_path: Path, capsys: pytest.CaptureFixture
) -> None:
    records = make_records(40)
    store = SQLiteStore(db_path)
    store.write_many(records[:10])  # some of the spill already reached the store
    spill = SpillFile(spill_path)
    spill.append(records)
    with open(spill_path, "ab") as fh:
        fh.write(b"{not json\n")
    spill.append(records[5:8])  # replayed twice by an earlier attempt
    cmd = [
        sys.executable,
        "-m",
        "service.writer",
        "replay",
        "--spill",
        str(spill_path),
        "--store",
        f"sqlite:///{db_path}",
        "--batch-size",
        "7",
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "replayed 43 records" in out.stdout and "30 new" in out.stdout
    assert "1 unreadable lines skipped" in out.stdout
    assert store.count() == 40
    assert spill_path.stat().st_size == 0
    assert main(cmd[3:]) == 0  # again, in process: the file is empty now
    assert "nothing to replay" in capsys.readouterr().out
    store.close()
