"""The promotion gate: is a new version at least as good as the one serving?

Both versions are scored on the SAME hold-out (this run's), each with its own stored
threshold, and, when feedback was included, on recent labelled production rows. The
decision is pure (:func:`decide`); :func:`apply` writes it to the promotion record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reggaeton.calibration import apply_calibration
from reggaeton.registry import ModelLoadError, ModelVersion, Registry
from reggaeton.schema import LABEL_COLUMN
from training.evaluate import metrics_at
from training.pipeline import to_matrix

COMPARED = ("f1", "pr_auc")


@dataclass
class GateDecision:
    """Outcome of the gate. ``details`` holds the numbers it was based on."""

    promote: bool
    reason: str
    forced: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def shortfalls(
    candidate: dict[str, Any], current: dict[str, Any], tolerances: dict[str, float], dataset: str
) -> list[str]:
    """Metrics where the candidate is worse than current by more than the tolerance."""
    out = []
    for name in COMPARED:
        new, old = candidate.get(name), current.get(name)
        if new is None or old is None:
            continue
        if new < old - tolerances.get(name, 0.0):
            out.append(
                f"{name} on {dataset} {new:.4f} < current {old:.4f}"
                f" - tolerance {tolerances.get(name, 0.0):g}"
            )
    return out


def holdout_mismatch(candidate_meta: dict[str, Any], current_meta: dict[str, Any]) -> str | None:
    """Why the two versions' hold-outs differ (the serving version may have trained on part of
    the candidate's hold-out, which inflates its score), or None when they are the same rows:
    same seed, same ``split.test_size`` and the same data files (SHA-256)."""
    cand_cfg, cur_cfg = candidate_meta.get("config") or {}, current_meta.get("config") or {}
    diffs = []
    if cand_cfg.get("seed") != cur_cfg.get("seed"):
        diffs.append(f"seed {cur_cfg.get('seed')} -> {cand_cfg.get('seed')}")
    cand_split = (cand_cfg.get("split") or {}).get("test_size")
    cur_split = (cur_cfg.get("split") or {}).get("test_size")
    if cand_split != cur_split:
        diffs.append(f"split.test_size {cur_split} -> {cand_split}")
    if (candidate_meta.get("data_files") or {}) != (current_meta.get("data_files") or {}):
        diffs.append("the data files changed")
    return "; ".join(diffs) or None


def decide(
    candidate: dict[str, Any],
    current: dict[str, Any] | None,
    tolerances: dict[str, float],
    *,
    force: bool = False,
    candidate_prod: dict[str, Any] | None = None,
    current_prod: dict[str, Any] | None = None,
    current_tag: str | None = None,
    mismatch: str | None = None,
) -> GateDecision:
    """Decide whether to promote.

    Args:
        candidate: Hold-out metrics of the new version.
        current: Metrics of the serving version on the same hold-out (None: none serves).
        tolerances: Allowed shortfall per metric (``f1``, ``pr_auc``).
        force: Promote regardless (recorded as forced).
        candidate_prod: Metrics of the new version on recent labelled production rows.
        current_prod: Same for the serving version.
        current_tag: Tag of the serving version, for the record.
        mismatch: :func:`holdout_mismatch` of the two versions: the comparison is not fair,
            so the candidate is not promoted unless forced.

    Returns:
        The decision with a human reason and the numbers.
    """
    details = {
        "candidate_holdout": _numbers(candidate),
        "current": current_tag,
        "current_holdout": _numbers(current),
        "tolerances": dict(tolerances),
    }
    if candidate_prod is not None:
        details["candidate_production"] = _numbers(candidate_prod)
        details["current_production"] = _numbers(current_prod)
    if current is None:
        reason = (
            "no promoted version yet"
            if current_tag is None
            else f"current version {current_tag} cannot be scored"
        )
        return GateDecision(True, f"{reason}; forced" if force else reason, force, details)
    if mismatch:
        details["holdout_mismatch"] = mismatch
        why = (
            f"hold-out not comparable with current {current_tag} ({mismatch}): it may have "
            "trained on part of this hold-out"
        )
        if force:
            return GateDecision(True, f"forced promotion ({why})", True, details)
        return GateDecision(
            False, f"{why}; review the numbers and promote with --force", False, details
        )
    failures = shortfalls(candidate, current, tolerances, "hold-out")
    if candidate_prod is not None and current_prod is not None:
        failures += shortfalls(candidate_prod, current_prod, tolerances, "production feedback")
    details["failures"] = failures
    if force:
        why = "; ".join(failures) if failures else "passes the gate anyway"
        return GateDecision(True, f"forced promotion ({why})", True, details)
    if failures:
        return GateDecision(
            False,
            "worse than current " + str(current_tag) + ": " + "; ".join(failures),
            False,
            details,
        )
    return GateDecision(
        True,
        f"at least as good as {current_tag} on "
        + ("hold-out and production feedback" if candidate_prod else "hold-out")
        + f" (f1 {candidate['f1']:.4f} vs {current['f1']:.4f}, pr_auc "
        f"{candidate['pr_auc']:.4f} vs {current['pr_auc']:.4f})",
        False,
        details,
    )


def score_version(registry: Registry, version: ModelVersion, frame: pd.DataFrame) -> dict[str, Any]:
    """Metrics of a stored version's served probabilities on a labelled frame: the raw score
    through the version's own calibration map (none for older versions), at its own threshold.

    Raises:
        ModelLoadError: the version cannot be loaded or does not accept the frame.
    """
    pipeline = registry.load_pipeline(version)
    features = version.metadata.get("features")
    if not features:
        raise ModelLoadError(f"{version.tag}: metadata has no feature list")
    try:
        raw = pipeline.predict_proba(to_matrix(frame, features))[:, 1]
        proba = apply_calibration(raw, version.metadata.get("calibration"))
    except Exception as exc:  # missing columns, wrong shape, unreadable calibration
        raise ModelLoadError(f"{version.tag}: cannot score: {exc}") from exc
    return metrics_at(np.asarray(frame[LABEL_COLUMN]), proba, version.threshold)


def usable_for_gate(frame: pd.DataFrame | None, min_rows: int) -> bool:
    """True when a labelled frame has enough rows and both classes."""
    return frame is not None and len(frame) >= min_rows and frame[LABEL_COLUMN].nunique() == 2


def apply(registry: Registry, tag: str, decision: GateDecision) -> dict[str, Any]:
    """Write the decision to the promotion record (promote or reject)."""
    if decision.promote:
        return registry.promotions.promote(
            tag, decision.reason, forced=decision.forced, details=decision.details
        )
    return registry.promotions.reject(tag, decision.reason, details=decision.details)


def _numbers(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if metrics is None else dict(metrics)
