"""bench/score_bench.py: the generated catalogue is valid, the run prints its figures, and the
verdicts are judged right (no timing assertions: speed belongs to the benchmark itself)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from bench import score_bench
from service.score.check import check_chunk

REPO = Path(__file__).resolve().parents[2]


def test_generated_catalogue_is_all_valid(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    score_bench.generate(path, 300_000)
    handle = pq.ParquetFile(path)
    assert handle.metadata.num_rows == 300_000 and handle.metadata.num_row_groups == 3
    checked = check_chunk(handle.read_row_group(1))
    assert checked.rejects == []
    assert checked.matrix.shape[0] == handle.metadata.row_group(1).num_rows


def test_small_run_prints_figures_and_verdicts(trained_home: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.score_bench", "--rows", "40000", "--work", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "BENTOML_HOME": str(trained_home)},
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "| 4,000 |" in out and "| 40,000 |" in out
    assert "2 processes (shards) at once: 40,000 rows" in out
    for goal in ("rows/s per core", "peak RSS < 1 GiB", "linear in rows"):
        assert re.search(rf"goal .*{re.escape(goal)}.* -> (MET|NOT MET)$", out, re.M), out


def test_verdicts(capsys) -> None:
    slow = {
        "rows": 10,
        "scoring_s": 1,
        "cpu_s": 1,
        "rows_per_core_s": 1000.0,
        "rows_per_s": 1000.0,
        "peak_rss_mib": 2048.0,
    }
    score_bench.report(
        [slow, {**slow, "rows_per_core_s": 400.0}],
        {"rows": 10, "wall_s": 1.0, "max_rss_mib": 1.0},
        2,
        0.0,
    )
    out = capsys.readouterr().out
    assert "per core: 400 -> NOT MET" in out and "2048 MiB -> NOT MET" in out
    assert "linear in rows: 0.40 -> NOT MET" in out
    fast = {**slow, "rows_per_core_s": 250_000.0, "peak_rss_mib": 300.0}
    score_bench.report([fast, fast], {"rows": 10, "wall_s": 1.0, "max_rss_mib": 1.0}, 2, 0.0)
    out = capsys.readouterr().out
    assert out.count("-> MET") == 3
