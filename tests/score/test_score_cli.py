"""``python -m service.score`` on real files: validation, rejects, shards, outputs, the log.

Every test runs the real CLI (a subprocess) or the real pipeline on files in ``tmp_path``, with
the session's trained model store.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reggaeton.registry import Registry
from service.inference import load_predictor
from service.score.run import score_file
from service.score.shards import iter_chunks
from service.validation import COLUMNS, validate_rows

ROOT = Path(__file__).resolve().parents[2]


def catalogue(rows: int, seed: int = 0) -> pd.DataFrame:
    """Valid songs from the seed test file, resampled with jitter, plus an ``id_new``."""
    base = pd.read_csv(ROOT / "data" / "data_test.csv").drop(columns=["Unnamed: 0"])
    frame = base.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    frame["tempo"] = (frame["tempo"] + rng.uniform(-1, 1, rows)).clip(1, 299)
    frame["id_new"] = np.arange(rows)
    return frame


def run_cli(home: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "service.score", *args],
        cwd=ROOT,
        env={**os.environ, "BENTOML_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "rows/s" in proc.stderr  # the progress line
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_rejects_carry_the_services_field_and_reason(trained_home: Path, tmp_path: Path) -> None:
    frame = catalogue(200)
    frame = frame.astype({"key": float, "duration": float, "time_signature": float})
    frame.loc[3, "danceability"] = 1.5
    frame.loc[7, "duration"] = np.nan
    frame.loc[9, "key"] = 2.5
    frame.loc[11, "time_signature"] = np.nan  # optional: absent is fine
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    summary = run_cli(trained_home, "--input", str(source), "--output", str(tmp_path / "o.csv"))
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (200, 197, 3)
    with (tmp_path / "o.rejects.csv").open() as handle:
        rejects = {int(r["row"]): (r["field"], r["reason"]) for r in csv.DictReader(handle)}
    for row, (field, reason) in rejects.items():  # exactly what the service answers
        record = {k: (None if pd.isna(v) else v) for k, v in frame.iloc[row].to_dict().items()}
        with pytest.raises(Exception) as err:
            validate_rows([record], offset_index=False)
        assert (err.value.field, err.value.rule) == (field, reason)
    assert set(rejects) == {3, 7, 9}
    out = pd.read_csv(tmp_path / "o.csv")
    assert sorted(out["row"].tolist() + list(rejects)) == list(range(200))
    assert set(out.columns) >= {"prediction", "probability", "model_version", "threshold"}


def test_output_matches_the_service_predictor(trained_home: Path, tmp_path: Path) -> None:
    frame = catalogue(3000, seed=1)
    source = tmp_path / "in.parquet"
    frame.to_parquet(source, row_group_size=500)
    run_cli(
        trained_home,
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.parquet"),
        "--chunk-rows",
        "700",
    )
    out = pq.read_table(tmp_path / "o.parquet").to_pandas()
    predictor = load_predictor(Registry(trained_home))
    matrix = validate_rows(frame.to_dict("records"))
    proba, labels = predictor.predict(matrix)
    assert out["row"].tolist() == list(range(3000))
    np.testing.assert_allclose(out["probability"], proba, rtol=0, atol=1e-12)
    assert out["prediction"].tolist() == labels.tolist()
    assert set(out["model_version"]) == {predictor.tag}
    assert set(out["threshold"]) == {predictor.threshold}


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_cover_every_row_once(tmp_path: Path, suffix: str, count: int) -> None:
    frame = catalogue(1001, seed=2)
    source = tmp_path / f"in.{suffix}"
    if suffix == "csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source, row_group_size=100)
    seen: list[int] = []
    for index in range(count):
        for chunk in iter_chunks(source, index, count, chunk_rows=64):
            assert chunk.table.num_rows <= 64
            ids = chunk.table.column("id_new").to_pylist()
            assert ids == list(range(chunk.first_row, chunk.first_row + len(ids)))
            seen += ids
    assert seen == list(range(1001))


def test_sharded_parts_equal_one_process(trained_home: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    catalogue(2500, seed=3).to_csv(source, index=False)
    single = tmp_path / "single.parquet"
    run_cli(trained_home, "--input", str(source), "--output", str(single))
    parts = tmp_path / "parts"
    for index in range(2):  # the Indexed Job's environment
        run_cli(
            trained_home,
            "--input",
            str(source),
            "--output",
            str(parts),
            env={"JOB_COMPLETION_INDEX": str(index), "SCORE_SHARD_COUNT": "2"},
        )
    names = sorted(p.name for p in parts.iterdir())
    assert names == [
        "part-00000.parquet",
        "part-00001.parquet",
        "rejects-00000.csv",
        "rejects-00001.csv",
    ]
    joined = pa.concat_tables(pq.read_table(p) for p in sorted(parts.glob("part-*.parquet")))
    assert joined.equals(pq.read_table(single))


def test_predictions_reach_the_store_as_batch_job(trained_home: Path, tmp_path: Path) -> None:
    from reggaeton.records.factory import open_store

    source = tmp_path / "in.csv"
    catalogue(120, seed=4).to_csv(source, index=False)
    uri = f"sqlite:///{tmp_path / 'p.db'}"
    summary = run_cli(
        trained_home,
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.csv"),
        "--log-predictions",
        env={"PREDICTION_STORE_URI": uri},
    )
    assert summary["logged"] == 120
    with open_store(uri) as store:
        frame = store.export()
    assert len(frame) == 120 and set(frame["source"]) == {"batch-job"}
    assert list(COLUMNS[:3]) == [c for c in frame.columns if c in COLUMNS][:3]


def test_empty_shard_writes_empty_valid_files(trained_home: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    catalogue(50).to_parquet(source)  # one row group: shard 0 of 2 gets nothing
    predictor = load_predictor(Registry(trained_home))
    summary = score_file(
        predictor,
        source,
        tmp_path / "p1.parquet",
        tmp_path / "r1.csv",
        index=0,
        count=2,
        progress=None,
    )
    assert summary.rows == 0 and pq.read_table(tmp_path / "p1.parquet").num_rows == 0
    score_file(
        predictor,
        source,
        tmp_path / "p2.parquet",
        tmp_path / "r2.csv",
        index=1,
        count=2,
        progress=None,
    )
    parts = [pq.read_table(tmp_path / f"p{i}.parquet") for i in (1, 2)]
    assert parts[0].schema == parts[1].schema  # the parts concatenate
    assert pa.concat_tables(parts).num_rows == 50


def test_make_score_runs_the_cli(trained_home: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    catalogue(40, seed=5).to_csv(source, index=False)
    out = tmp_path / "o.parquet"
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "score",
            f"INPUT={source}",
            f"OUTPUT={out}",
            "ARGS=--no-progress",
        ],
        cwd=ROOT,
        env={**os.environ, "BENTOML_HOME": str(trained_home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["scored"] == 40
    assert pq.read_table(out).num_rows == 40
    usage = subprocess.run(
        ["make", "--no-print-directory", "score"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode != 0 and "usage: make score" in usage.stdout


def test_trailing_slash_means_parts_even_for_one_shard(trained_home: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    catalogue(30, seed=6).to_csv(source, index=False)
    run_cli(trained_home, "--input", str(source), "--output", f"{tmp_path / 'new'}/")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "part-00000.parquet",
        "rejects-00000.csv",
    ]


def test_options_default_to_the_jobs_environment() -> None:
    """An Indexed Job's pod passes its shard in the environment; flags still win."""
    from reggaeton.settings import ConfigError, load_env
    from service.score.__main__ import ScoreSettings, build_parser

    env = {
        "JOB_COMPLETION_INDEX": "2",
        "SCORE_SHARD_COUNT": "3",
        "SCORE_CHUNK_ROWS": "1000",
        "SCORE_LOG_PREDICTIONS": "true",
    }
    parser = build_parser(load_env(ScoreSettings, env))
    args = parser.parse_args(["--input", "a.csv", "--output", "out/"])
    assert (args.shard_index, args.shard_count, args.chunk_rows, args.log_predictions) == (
        2,
        3,
        1000,
        True,
    )
    assert (
        parser.parse_args(["--input", "a", "--output", "b", "--shard-index", "0"]).shard_index == 0
    )
    args = build_parser(load_env(ScoreSettings, {})).parse_args(["--input", "a", "--output", "b"])
    assert (args.shard_index, args.shard_count, args.chunk_rows, args.log_predictions) == (
        0,
        1,
        131_072,
        False,
    )
    with pytest.raises(ConfigError, match="SCORE_SHARD_COUNT: input should be greater than"):
        load_env(ScoreSettings, {"SCORE_SHARD_COUNT": "0"})
