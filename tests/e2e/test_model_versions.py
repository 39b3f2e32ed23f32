"""Model-version faults on a running service: a trainer promoting under load, bad versions.

Both run against the session's shared service (two workers, watching the promotion record).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from e2e import support

from reggaeton.registry import Registry
from reggaeton.servable import SERVABLE_FILE

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TRAIN_FAST = ["model.params.n_estimators=15", "cv.folds=2"]


def _served(dep: support.Deployment) -> str:
    return requests.post(f"{dep.url}/predict-song", json={"data": support.SONG}, timeout=10).json()[
        "model_version"
    ]


def _all_workers_serve(dep: support.Deployment, tag: str, tries: int = 12) -> bool:
    """True when a run of consecutive answers (spread over both workers) all name ``tag``."""
    return all(_served(dep) == tag for _ in range(tries))


def test_trainer_promoting_under_load_fails_no_request(shared, repo_root):
    from training.config import ORIGINAL_CONFIG, load_config
    from training.train import run_training

    dep = shared
    registry = Registry(dep.home)
    existing = {v.tag for v in registry.list()}
    old = registry.promotions.current()
    stop = threading.Event()
    box: dict[str, support.LoadResult] = {}
    loader = threading.Thread(
        target=lambda: box.setdefault("r", support.run_load(dep.url, 10**9, 4, stop=stop.is_set))
    )
    loader.start()
    try:
        saved_at = time.monotonic()
        result = run_training(
            load_config(ORIGINAL_CONFIG, TRAIN_FAST),
            registry,
            tracking_uri=None,
            force=True,
            root=repo_root,
        )
        promoted_at = time.monotonic()
        assert result.promoted and registry.promotions.current() == result.tag
        support.wait_until(
            lambda: _all_workers_serve(dep, result.tag), 60, f"both workers serving {result.tag}"
        )
    finally:
        stop.set()
        loader.join(60)
    load = box["r"]
    assert not load.failures, load.failures[:5]
    assert len(load.ok) > 50
    versions = {r["model_version"] for r in load.ok}
    assert versions <= existing | {result.tag}, versions
    assert old in versions
    new_answers = [r for r in load.ok if r["model_version"] == result.tag]
    assert all(r["received_at"] > saved_at for r in new_answers)
    print(
        f"\n{len(load.ok)} requests during training + promotion, 0 failed; "
        f"{len(new_answers)} answered by {result.tag} (promoted "
        f"{promoted_at - saved_at:.0f}s into the load)"
    )


@pytest.mark.parametrize("damage", ["corrupted", "incompatible", "other_features", "pickle_only"])
def test_bad_version_is_refused_and_the_old_one_keeps_serving(shared, damage):
    import io

    import numpy as np

    from reggaeton.hashing import sha256_file
    from reggaeton.registry import METADATA_FILE
    from reggaeton.servable import export

    dep = shared
    registry = Registry(dep.home)
    serving = _served(dep)
    good = registry.get(serving)
    pipeline = registry.load_pipeline(good)
    meta = dict(good.metadata, note=damage)
    if damage == "other_features":  # trained for another feature list than the service sends
        meta["features"] = [f for f in good.metadata["features"] if f != "popularity"]
    servable = None if damage == "pickle_only" else export(pipeline)
    bad = registry.save(pipeline, meta, reference_files={}, servable=servable)
    path = bad.path / SERVABLE_FILE
    if damage == "corrupted":  # bytes changed after saving: the checksum no longer matches
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "incompatible":  # a well-formed file, valid checksum, no evaluator in it
        buffer = io.BytesIO()
        np.savez(buffer, format=np.array(1), features=np.array(good.metadata["features"]))
        path.write_bytes(buffer.getvalue())
        meta = json.loads((bad.path / METADATA_FILE).read_text())
        meta["servable_sha256"] = sha256_file(path)
        (bad.path / METADATA_FILE).write_text(json.dumps(meta))
    log_size = len(dep.service.log_text())
    registry.promotions.promote(bad.tag, f"e2e: {damage} version", forced=True)
    try:
        support.wait_until(
            lambda: (
                bad.tag in dep.service.log_text()[log_size:]
                and dep.service.log_text()[log_size:].count("refused") >= 2
            ),
            30,
            "both workers logging that they refuse the version",
        )
        for _ in range(10):
            assert _served(dep) == serving
        assert requests.get(f"{dep.url}/readyz", timeout=5).status_code == 200
        info = requests.get(f"{dep.url}/model", timeout=5).json()
        assert info["model_version"] == serving
        assert bad.tag in info["reload"]["refused"]
        new_lines = dep.service.log_text()[log_size:]
        refusal = next(line for line in new_lines.splitlines() if "refused" in line)
        why = {
            "corrupted": "checksum",
            "incompatible": "not a compiled model",
            "other_features": "trained on features",
            "pickle_only": "python -m training.export",
        }[damage]
        assert why in refusal, refusal
    finally:  # leave the shared service's record pointing at a loadable version
        registry.promotions.promote(serving, f"e2e: back from the {damage} version")
