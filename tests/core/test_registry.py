"""Registry: versions in a BentoML store bound to a temp home, and the promotion record."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from reggaeton.registry import ModelLoadError, PromotionError, PromotionRecord, Registry


@pytest.fixture(scope="module")
def tiny_pipeline():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return Pipeline([("model", LogisticRegression())]).fit(X, (X[:, 0] > 0).astype(int))


@pytest.fixture
def registry(tmp_path):
    return Registry(tmp_path / "home")


def test_save_get_and_load_round_trip(registry, tiny_pipeline):
    v = registry.save(
        tiny_pipeline,
        {"threshold": 0.3, "metrics": {"f1": 0.5}},
        reference_files={"sample.csv": b"a,b\n1,2\n"},
    )
    assert v.tag.startswith("reggaeton_clf:") and v.metadata["tag"] == v.tag
    assert v.threshold == 0.3 and v.metadata["pipeline_sha256"] and v.metadata["created_at"]
    assert v.reference_path("sample.csv").read_bytes() == b"a,b\n1,2\n"
    assert registry.get(v.version).tag == v.tag
    X = np.ones((2, 3))
    np.testing.assert_array_equal(
        registry.load_pipeline(v).predict_proba(X), tiny_pipeline.predict_proba(X)
    )


def test_list_is_oldest_first(registry, tiny_pipeline):
    tags = [registry.save(tiny_pipeline, {}).tag for _ in range(3)]
    assert [v.tag for v in registry.list()] == tags


def test_tampered_pipeline_is_refused(registry, tiny_pipeline):
    v = registry.save(tiny_pipeline, {})
    with open(v.path / "pipeline.joblib", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelLoadError, match="checksum"):
        registry.load_pipeline(v)


def test_unknown_version_and_nothing_promoted(registry):
    with pytest.raises(ModelLoadError):
        registry.get("doesnotexist")
    with pytest.raises(ModelLoadError, match="no promoted version"):
        registry.serving_version()


def test_serving_version_prefers_explicit_pin(registry, tiny_pipeline):
    a, b = registry.save(tiny_pipeline, {}), registry.save(tiny_pipeline, {})
    registry.promotions.promote(a.tag, "first")
    assert registry.serving_version().tag == a.tag
    assert registry.serving_version(b.tag).tag == b.tag


def test_promotion_history_reject_and_rollback_stack(tmp_path):
    record = PromotionRecord(tmp_path / "promotion.json")
    assert record.current() is None
    for tag in ("A", "B", "C"):
        record.promote(tag, f"promote {tag}")
    record.reject("D", "worse", details={"f1": 0.1})
    assert record.current() == "C"
    assert record.rollback()["tag"] == "B"
    assert record.rollback()["tag"] == "A"
    with pytest.raises(PromotionError):
        record.rollback()
    record.promote("E", "forced", forced=True)
    assert record.rollback()["tag"] == "A"
    history = record.history()
    assert [e["action"] for e in history] == ["promote"] * 3 + [
        "reject",
        "rollback",
        "rollback",
        "promote",
        "rollback",
    ]
    assert history[3]["details"] == {"f1": 0.1} and history[3]["previous"] == "C"
    assert history[6]["forced"] is True
    assert json.loads((tmp_path / "promotion.json").read_text())["current"] == "A"


def test_concurrent_promotions_lose_no_entry(tmp_path):
    record = PromotionRecord(tmp_path / "promotion.json")
    threads = [threading.Thread(target=record.promote, args=(f"T{i}", "x")) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(record.history()) == 20
    assert record.current() in {f"T{i}" for i in range(20)}


def test_versions_saved_by_the_bentoml_store_stay_readable(registry, tiny_pipeline):
    """Older releases saved through BentoML: same folder, plus its model.yaml and latest file."""
    v = registry.save(tiny_pipeline, {"threshold": 0.4})
    (v.path / "model.yaml").write_text("name: reggaeton_clf\n")
    (registry.models / "latest").write_text(v.version)
    (registry.models / f".{v.version}-staging").mkdir()  # an interrupted save
    assert [x.tag for x in registry.list()] == [v.tag]
    assert registry.get(v.tag).threshold == 0.4


def test_registry_does_not_need_bentoml(tmp_path, tiny_pipeline):
    import subprocess
    import sys

    code = (
        "import sys, joblib; from reggaeton.registry import Registry; "
        f"r = Registry({str(tmp_path / 'h')!r}); "
        "v = r.save(joblib.load(sys.argv[1]), {}); assert r.list()[0].tag == v.tag; "
        "assert 'bentoml' not in sys.modules, 'bentoml imported'"
    )
    import joblib

    joblib.dump(tiny_pipeline, tmp_path / "p.joblib")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.joblib")], check=True)
