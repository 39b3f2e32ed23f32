"""The servable file: what the service loads instead of the pickle, and what it refuses.

The file is written from real fitted pipelines and read back with ``numpy.load`` without
pickle support; every malformed variant below is built by rewriting one array of a real file,
so each check is shown to be the one that refuses it. The registry and ``training.export``
tests at the end use real model-store folders.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from inference_helpers import in_bounds

from reggaeton.registry import ModelLoadError, Registry
from reggaeton.schema import MODEL_FEATURES
from reggaeton.servable import SERVABLE_FILE, NotServable, export, load


@pytest.fixture(scope="module")
def pipeline(served):
    return served[1]


@pytest.fixture(scope="module")
def arrays(pipeline):
    with np.load(io.BytesIO(export(pipeline)), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _file(arrays, **changes):
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays, **changes})
    return buffer.getvalue()


def test_file_round_trips_to_the_pipeline_numbers_without_pickle(pipeline, arrays):
    assert str(arrays["name"]) in ("trees:gbm", "trees:hgb")
    assert all(a.dtype != object for a in arrays.values())
    fast = load(_file(arrays))
    X = in_bounds(700, seed=21)
    np.testing.assert_allclose(
        fast.raw_proba(X), pipeline.predict_proba(X)[:, 1], rtol=0, atol=1e-12
    )


def test_a_file_holding_pickled_objects_is_refused(arrays):
    with pytest.raises(NotServable, match="not a servable file"):
        load(_file(arrays, name=np.array([{"code": "runs on load"}], dtype=object)))


def _children_with(arrays, index, value):
    children = arrays["trees.children"].copy()
    children[index] = value
    return children


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {"format": np.array(99)}, "format 99"),
        (lambda a: {"features": np.array(MODEL_FEATURES[::-1])}, "compiled for features"),
        (lambda a: {"name": np.array("trees:knn")}, "unknown evaluator"),
        (
            lambda a: {"trees.children": _children_with(a, 0, len(a["trees.feature"]))},
            "outside the table",
        ),
        (
            lambda a: {"trees.children": _children_with(a, 0, -len(a["trees.leaf_value"]) - 1)},
            "outside the table",
        ),
        (lambda a: {"trees.children": _children_with(a, 2, 0)}, "the walk could loop"),
        (
            lambda a: {"trees.feature": np.full_like(a["trees.feature"], len(MODEL_FEATURES))},
            "outside 0..10",
        ),
        (lambda a: {"trees.cut": a["trees.cut"][:-1]}, "one cut and one NaN direction"),
        (lambda a: {"probe.proba": a["probe.proba"] + 1e-9}, "differs from the stored"),
        (lambda a: {"probe.rows": a["probe.rows"][:10]}, "the probe has the wrong shape"),
        (lambda a: {"columns.raw": a["columns.raw"] + 20}, "raw column outside"),
    ],
    ids=[
        "format",
        "features",
        "evaluator",
        "child-past-the-end",
        "leaf-past-the-end",
        "cycle",
        "feature",
        "cut-length",
        "probe-values",
        "probe-shape",
        "column",
    ],
)
def test_malformed_files_are_refused_naming_the_problem(arrays, change, message):
    with pytest.raises(NotServable, match=message):
        load(_file(arrays, **change(arrays)))


def test_a_missing_array_is_refused(arrays):
    trimmed = {k: v for k, v in arrays.items() if k != "trees.roots"}
    with pytest.raises(NotServable, match="not a compiled model"):
        load(_file(trimmed))


def test_registry_serves_only_the_checked_servable_file(tmp_path, pipeline):
    registry = Registry(tmp_path / "home")
    meta = {"threshold": 0.5, "features": list(MODEL_FEATURES)}
    with_file = registry.save(pipeline, meta, servable=export(pipeline))
    assert with_file.metadata["servable_sha256"]
    assert registry.load_servable(with_file).name in ("trees:gbm", "trees:hgb")

    path = with_file.path / SERVABLE_FILE
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        registry.load_servable(with_file)

    pickle_only = registry.save(pipeline, meta)
    with pytest.raises(ModelLoadError, match=f"python -m training.export {pickle_only.version}"):
        registry.load_servable(pickle_only)


def test_training_export_writes_the_file_for_versions_saved_without_one(
    tmp_path, pipeline, monkeypatch, capsys
):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    from training import export as export_cli

    registry = Registry(tmp_path / "home")
    meta = {"threshold": 0.5, "features": list(MODEL_FEATURES)}
    old = registry.save(pipeline, meta)
    monkeypatch.setenv("BENTOML_HOME", str(registry.home))
    assert export_cli.main([]) == 0
    assert f"{old.tag}: wrote {SERVABLE_FILE}" in capsys.readouterr().out
    refreshed = registry.get(old.tag)
    assert registry.load_servable(refreshed).name in ("trees:gbm", "trees:hgb")
    assert json.loads((refreshed.path / "metadata.json").read_text())["threshold"] == 0.5
    assert export_cli.main([]) == 0  # nothing left to export
    assert "every version" in capsys.readouterr().out

    X = in_bounds(80, seed=3)
    bare = Pipeline([("m", DummyClassifier())]).fit(X, (X[:, 0] > X[:, 0].mean()).astype(int))
    unservable = registry.save(bare, meta)
    assert export_cli.main([unservable.version]) == 1
    assert "not exported: no compiled form" in capsys.readouterr().err
    with pytest.raises(ModelLoadError, match="no servable.npz"):
        registry.load_servable(registry.get(unservable.tag))


def test_the_serving_load_needs_neither_the_pickle_nor_scikit_learn(tmp_path, pipeline):
    """In a fresh interpreter, a version whose pickle is deleted still loads and predicts."""
    import subprocess
    import sys

    from reggaeton.registry import PIPELINE_FILE

    registry = Registry(tmp_path / "home")
    meta = {"threshold": 0.5, "features": list(MODEL_FEATURES)}
    version = registry.save(pipeline, meta, servable=export(pipeline))
    registry.promotions.promote(version.tag, "test")
    (version.path / PIPELINE_FILE).unlink()
    code = (
        "import sys; from reggaeton.registry import Registry; "
        "from service.inference import load_predictor; "
        "from reggaeton.servable import probe_matrix; "
        f"p = load_predictor(Registry({str(registry.home)!r})); "
        "print(p.path_name, float(p.predict_proba(probe_matrix(3)).sum()) > 0, "
        "sorted(m for m in ('joblib', 'sklearn', 'treelite') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name, scored, imported = out.stdout.split(maxsplit=2)
    assert name in ("trees:gbm", "trees:hgb") and scored == "True"
    assert imported.strip() == "[]", imported
