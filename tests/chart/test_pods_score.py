"""The scoring Indexed Job (score.*), run from the chart's render as Docker containers.

Two indexes score one CSV catalogue on a shared claim, each its own shard; a one-index render of
the same Job is the single-process reference. Every input row is in exactly one output part or
reject file, and the parts, concatenated in name order, equal the single-process output.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chart_helpers import NAMESPACE, ROOT, helm_template, load_objects
from container_images import build_images
from podrunner import PodRunner

pytestmark = [pytest.mark.container, pytest.mark.integration, pytest.mark.slow]

ROWS = 20_000
GROUP = 1034  # the chart's fsGroup


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The service and jobs images, built like ``make image`` (skips when no daemon answers)."""
    return build_images(tmp_path_factory.mktemp("bento_build"))


def catalogue(path: Path) -> set[int]:
    """Write ``ROWS`` songs (two of them invalid) as CSV; returns the rows that are invalid."""
    base = pd.read_csv(ROOT / "data" / "data_test.csv").drop(columns=["Unnamed: 0"])
    frame = base.sample(ROWS, replace=True, random_state=7).reset_index(drop=True)
    frame["tempo"] = (frame["tempo"] + np.random.default_rng(7).uniform(-1, 1, ROWS)).clip(1, 299)
    frame["id_new"] = np.arange(ROWS)
    frame = frame.astype({"energy": float})
    frame.loc[[123, 15_000], "energy"] = [2.0, -1.0]
    frame.to_csv(path, index=False)
    return {123, 15_000}


def score_job(helm: str, tmp_path: Path, completions: int, output: str) -> tuple[list, dict]:
    values = {
        "replicaCount": 1,
        "mongodb": {"enabled": False},
        "mlflow": {"enabled": False},
        "monitor": {"enabled": False},
        "config": {"mlflowTrackingUri": ""},
        "modelStore": {"bootstrap": {"enabled": False}},
        "score": {
            "enabled": True,
            "completions": completions,
            "parallelism": completions,
            "volume": {"existingClaim": "catalogue"},
            "input": "in/songs.csv",
            "outputDir": output,
            "chunkRows": 4096,
        },
    }
    result = helm_template(helm, values, tmp_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    objects = load_objects(result.stdout)
    (job,) = [
        o
        for o in objects
        if o["kind"] == "Job" and o["metadata"]["labels"]["app.kubernetes.io/component"] == "score"
    ]
    return objects, job


def test_indexed_job_shards_one_catalogue(
    images: dict[str, str], helm: str, tmp_path: Path, trained_home: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    bad = catalogue(src / "songs.csv")
    objects, job = score_job(helm, tmp_path, 2, "parts")
    _, single_job = score_job(helm, tmp_path, 1, "single")
    image = job["spec"]["template"]["spec"]["containers"][0]["image"]
    PodRunner.tag(images["jobs"], image)
    runner = PodRunner(objects, f"rgt-score-{secrets.token_hex(3)}", NAMESPACE)
    sh = ["run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "sh"]
    try:
        data = runner._volume(f"{runner.run_id}-pvc-catalogue", image, "2775", GROUP)
        store = runner._volume(f"{runner.run_id}-pvc-reggaeton-model-store", image, "2775", GROUP)
        runner.docker(
            *sh,
            "-v",
            f"{data}:/v",
            "-v",
            f"{store}:/m",
            "-v",
            f"{src}:/src:ro",
            "-v",
            f"{trained_home}:/trained:ro",
            image,
            "-c",
            "mkdir -p /v/in && cp /src/songs.csv /v/in/ && cp -r /trained/. /m/ && "
            f"chgrp -R {GROUP} /v /m && chmod -R g+rwX,o+rX /v /m",
        )
        results = runner.run_job("score", job)
        assert [code for code, _ in results] == [0, 0], results
        (single,) = runner.run_job("single", single_job)
        assert single[0] == 0, single
        out = tmp_path / "out"
        out.mkdir()
        runner.docker(
            *sh,
            "-v",
            f"{data}:/v:ro",
            "-v",
            f"{out}:/out",
            image,
            "-c",
            "cp -r /v/parts /v/single /out/ && chmod -R a+rwX /out",
        )
    finally:
        runner.cleanup()
    names = sorted(p.name for p in (out / "parts").iterdir())
    assert names == [
        "part-00000.parquet",
        "part-00001.parquet",
        "rejects-00000.csv",
        "rejects-00001.csv",
    ]
    parts = [pq.read_table(p) for p in sorted((out / "parts").glob("part-*.parquet"))]
    assert all(p.num_rows > ROWS // 4 for p in parts)  # both indexes did real work
    rejects = pd.concat(pd.read_csv(p) for p in sorted((out / "parts").glob("rejects-*.csv")))
    assert set(rejects["row"]) == bad and set(rejects["field"]) == {"energy"}
    scored = [r for p in parts for r in p.column("row").to_pylist()]
    assert sorted(scored + list(rejects["row"])) == list(range(ROWS))  # each row exactly once
    assert len(set(scored)) == len(scored)
    joined = pa.concat_tables(parts)
    assert joined.equals(pq.read_table(out / "single" / "part-00000.parquet"))
    (version,) = set(joined.column("model_version").to_pylist())
    assert version.startswith("reggaeton_clf:") and joined.num_rows == ROWS - len(bad)
