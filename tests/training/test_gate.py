"""Promotion gate: pure decisions, and real runs against a copy of the trained home."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reggaeton.registry import PromotionError
from training.gate import decide, holdout_mismatch
from training.promote import format_listing, promote_version
from training.promote import main as promote_main
from training.train import run_training

TOL = {"f1": 0.0, "pr_auc": 0.0}
CURRENT = {"f1": 0.60, "pr_auc": 0.70}


@pytest.mark.parametrize(
    ("candidate", "tolerances", "promote"),
    [
        ({"f1": 0.65, "pr_auc": 0.75}, TOL, True),  # better
        ({"f1": 0.60, "pr_auc": 0.70}, TOL, True),  # equal
        ({"f1": 0.55, "pr_auc": 0.75}, TOL, False),  # worse F1
        ({"f1": 0.65, "pr_auc": 0.69}, TOL, False),  # worse PR-AUC
        ({"f1": 0.59, "pr_auc": 0.69}, {"f1": 0.02, "pr_auc": 0.02}, True),  # within tolerance
    ],
)
def test_decide_on_the_same_holdout(candidate, tolerances, promote):
    d = decide(candidate, CURRENT, tolerances, current_tag="reggaeton_clf:old")
    assert d.promote is promote and not d.forced
    assert d.details["candidate_holdout"]["f1"] == candidate["f1"]
    if not promote:
        assert "worse than current reggaeton_clf:old" in d.reason


def test_decide_first_forced_and_production_feedback():
    assert decide(CURRENT, None, TOL).reason == "no promoted version yet"
    forced = decide({"f1": 0.1, "pr_auc": 0.1}, CURRENT, TOL, force=True, current_tag="t")
    assert forced.promote and forced.forced and "f1 on hold-out" in forced.reason
    prod = decide(
        CURRENT,
        CURRENT,
        TOL,
        current_tag="t",
        candidate_prod={"f1": 0.4, "pr_auc": 0.5},
        current_prod={"f1": 0.5, "pr_auc": 0.5},
    )
    assert not prod.promote and "production feedback" in prod.reason


def test_worse_model_is_saved_but_not_promoted(registry_copy, tiny_config, repo_root):
    before = registry_copy.promotions.current()
    result = run_training(tiny_config, registry_copy, root=repo_root)
    assert not result.promoted
    assert registry_copy.promotions.current() == before
    assert result.tag in [v.tag for v in registry_copy.list()]
    last = registry_copy.promotions.history()[-1]
    assert last["action"] == "reject" and last["tag"] == result.tag
    assert "worse than current" in last["reason"] and last["details"]["current"] == before
    assert last["details"]["current_holdout"]["f1"] > last["details"]["candidate_holdout"]["f1"]


def test_forced_promotion_is_recorded_then_rolled_back(registry_copy, tiny_config, repo_root):
    before = registry_copy.promotions.current()
    result = run_training(tiny_config, registry_copy, root=repo_root, force=True)
    assert result.promoted and registry_copy.promotions.current() == result.tag
    entry = registry_copy.promotions.history()[-1]
    assert entry["forced"] is True and entry["reason"].startswith("forced promotion")
    assert registry_copy.promotions.rollback()["tag"] == before
    assert registry_copy.serving_version().tag == before
    assert "(forced)" in format_listing(registry_copy)


def test_equal_model_passes_the_gate(registry_copy, fast_config, repo_root):
    # same data, config and seeds as the session model -> identical numbers -> promoted
    before = registry_copy.promotions.current()
    result = run_training(fast_config, registry_copy, root=repo_root)
    assert result.promoted, result.decision.reason
    d = result.decision.details
    assert d["candidate_holdout"]["f1"] == d["current_holdout"]["f1"]
    assert d["current"] == before and "at least as good" in result.decision.reason


def test_manual_promotion_refuses_worse_unless_forced(registry_copy, tiny_config, repo_root):
    worse = run_training(tiny_config, registry_copy, root=repo_root).tag
    with pytest.raises(PromotionError, match="use --force"):
        promote_version(registry_copy, worse)
    assert promote_version(registry_copy, worse, force=True)["forced"] is True
    assert registry_copy.promotions.current() == worse


def test_promote_cli_list_rollback_and_if_empty(home_copy, repo_root, monkeypatch, capsys):
    env = {"BENTOML_HOME": str(home_copy), "PATH": "/usr/bin:/bin", "BENTOML_DO_NOT_TRACK": "true"}

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=repo_root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listing = run("training.promote", "--list")
    assert listing.returncode == 0 and "serving: reggaeton_clf:" in listing.stdout
    monkeypatch.setenv("BENTOML_HOME", str(home_copy))
    assert promote_main(["--rollback"]) == 1
    assert "no earlier promoted version" in capsys.readouterr().err
    empty = run("training.train", "--if-empty")
    assert empty.returncode == 0 and "nothing to do" in empty.stdout


def test_a_different_split_is_not_compared_unless_forced():
    meta = {"config": {"seed": 42, "split": {"test_size": 0.2}}, "data_files": {"a.csv": "x"}}
    assert holdout_mismatch(meta, meta) is None
    other = {"config": {"seed": 7, "split": {"test_size": 0.2}}, "data_files": {"a.csv": "y"}}
    why = holdout_mismatch(other, meta)
    assert "seed 42 -> 7" in why and "data files changed" in why
    better = {"f1": 0.9, "pr_auc": 0.9}
    d = decide(better, CURRENT, TOL, current_tag="t", mismatch=why)
    assert not d.promote and "not comparable" in d.reason and "--force" in d.reason
    forced = decide(better, CURRENT, TOL, current_tag="t", mismatch=why, force=True)
    assert forced.promote and forced.forced and forced.details["holdout_mismatch"] == why


def test_training_with_another_seed_is_saved_but_not_promoted(
    registry_copy, config_with, repo_root
):
    before = registry_copy.promotions.current()
    result = run_training(
        config_with("seed=7", "model.params.n_estimators=40", "cv.folds=2"),
        registry_copy,
        root=repo_root,
    )
    assert not result.promoted and "not comparable" in result.decision.reason
    assert registry_copy.promotions.current() == before


def test_manual_promotion_uses_the_tolerances_and_refuses_other_holdouts(
    registry_copy, config_with, repo_root
):
    first = registry_copy.promotions.current()
    lenient = run_training(
        config_with(
            "model.params.n_estimators=1",
            "cv.folds=2",
            "gate.f1_tolerance=1",
            "gate.pr_auc_tolerance=1",
        ),
        registry_copy,
        root=repo_root,
    )
    assert lenient.promoted  # worse, but within its tolerance of 1
    registry_copy.promotions.rollback()
    assert registry_copy.promotions.current() == first
    assert promote_version(registry_copy, lenient.tag)["tag"] == lenient.tag  # same tolerance
    registry_copy.promotions.rollback()
    other = run_training(
        config_with("seed=7", "model.params.n_estimators=40", "cv.folds=2"),
        registry_copy,
        root=repo_root,
    )
    with pytest.raises(PromotionError, match="not comparable"):
        promote_version(registry_copy, other.tag)
    assert promote_version(registry_copy, other.tag, force=True)["forced"] is True


def test_the_gate_scores_each_version_through_its_own_calibration(trained_home, repo_root):
    import dataclasses

    from reggaeton.registry import Registry
    from training.config import load_config
    from training.data import load_labelled, split_holdout
    from training.gate import score_version

    registry = Registry(trained_home)
    version = registry.serving_version()
    config = load_config()
    labelled, _ = load_labelled(
        repo_root / config.data.reggaeton_csv,
        repo_root / config.data.other_csv,
        version.metadata["features"],
    )
    _, holdout = split_holdout(labelled, config.split.test_size, config.seed)
    stored = score_version(registry, version, holdout)
    assert stored["f1"] == pytest.approx(version.metadata["metrics"]["f1"])
    # the same pipeline with a map that sends every score to 0.1: nothing reaches the threshold
    flat = dataclasses.replace(
        version,
        metadata={
            **version.metadata,
            "calibration": {"method": "sigmoid", "a": 0.0, "b": -2.1972245773},
        },
    )
    assert score_version(registry, flat, holdout)["recall"] == 0.0
