"""Turn a version's scan into test results and a status (ok / warning / alert).

Rules (documented in ``monitoring/README.md``):

* data drift: a feature drifts when its multiple-testing adjusted p-value is below the
  threshold -> ``alert``; fewer than ``drift.min_samples`` records -> ``insufficient_data``;
* prediction drift (probability KS, positive-rate chi-square, Bonferroni over the two) ->
  ``drift.prediction_status`` (``warning`` by default);
* performance -> see :mod:`monitoring.performance`; quality -> ``warning`` at most;
* overall: the worst section; ``insufficient_data`` when neither drift nor performance could
  be judged.
"""

from __future__ import annotations

from typing import Any

from monitoring import drift, longwindow
from monitoring.config import MonitoringConfig
from monitoring.performance import assess_performance
from monitoring.quality import assess_quality
from monitoring.status import is_problem, worst
from monitoring.window import VersionScan
from reggaeton.schema import OPTIONAL_FEATURES


def assess_drift(
    scan: VersionScan, config: MonitoringConfig, long: longwindow.LongWindow | None = None
) -> dict[str, Any]:
    """KS / chi-square per feature, corrected for multiple testing.

    Args:
        scan: The version's window.
        config: Thresholds.
        long: The version's long window (the last runs merged): its tests join the same
            multiple-testing family, under ``long_window``.
    """
    cfg = config.drift
    out: dict[str, Any] = {
        "threshold": cfg.threshold,
        "correction": cfg.correction,
        "min_samples": cfg.min_samples,
        "rows": scan.rows,
        "features": {},
        "drifted": [],
    }
    if scan.rows < cfg.min_samples:
        out.update(
            status="insufficient_data",
            reason=f"insufficient data: {scan.rows} records, need >= {cfg.min_samples}",
        )
        return out
    results = drift.feature_tests(
        scan.numeric, scan.categorical, scan.reference.category_counts, cfg.min_expected
    )
    # One family for both windows: the correction covers the long window's tests too, so the
    # false-alarm rate per run stays at the threshold (see monitoring/longwindow.py).
    family = {n: r["pvalue"] for n, r in results.items()}
    long_results = longwindow.tests(long, scan, cfg.min_expected) if long else {}
    family |= {f"long:{n}": r["pvalue"] for n, r in long_results.items()}
    adjusted = drift.adjust_pvalues(family, cfg.correction)
    for name, res in results.items():
        res["p_adjusted"] = adjusted[name]
        res["category"] = drift.category(adjusted[name], cfg.threshold, cfg.possible_factor)
    features = list(scan.numeric) + list(scan.categorical)
    ordered = [f for f in features if f in results]
    out["features"] = {name: results[name] for name in ordered}
    out["not_compared"] = [f for f in features if f not in results]
    out["drifted"] = [n for n in ordered if results[n]["category"] == "drift"]
    out["tests"] = len(family)
    out["long_window"] = (
        longwindow.section(long, long_results, adjusted, cfg.threshold, cfg.possible_factor)
        if long
        else None
    )
    slow = out["long_window"]["drifted"] if long else []
    out["status"] = "alert" if out["drifted"] or slow else "ok"
    out["reason"] = _drift_reason(out["drifted"], slow, long)
    return out


def _drift_reason(drifted: list[str], slow: list[str], long: longwindow.LongWindow | None) -> str:
    """The drift section's reason: the window's drifted features, then the long window's."""
    parts = [f"data drift in {', '.join(drifted)}"] if drifted else []
    if slow and long is not None:
        parts.append(
            f"slow drift over the last {long.runs} runs ({long.rows:,} records) in "
            f"{', '.join(slow)}"
        )
    return "; ".join(parts)


def assess_prediction_drift(scan: VersionScan, config: MonitoringConfig) -> dict[str, Any]:
    """Probability distribution (KS) and positive rate (chi-square) vs the reference."""
    cfg = config.drift
    out: dict[str, Any] = {"rows": scan.rows}
    ref = scan.reference
    if scan.rows < cfg.min_samples:
        out.update(status="insufficient_data", reason="insufficient data")
        return out
    pvalues: dict[str, float] = {}
    if scan.probability is not None and scan.probability.n > 0:
        out["probability"] = drift.ks_test(scan.probability)
        pvalues["probability"] = out["probability"]["pvalue"]
    rate = ref.positive_rate
    if rate is not None:
        out["positive_rate"] = drift.proportion_test(rate[0], rate[1], scan.positives, scan.rows)
        pvalues["positive_rate"] = out["positive_rate"]["pvalue"]
    method = "none" if cfg.correction == "none" else "bonferroni"
    adjusted = drift.adjust_pvalues(pvalues, method)
    drifted = []
    for name, p_adj in adjusted.items():
        out[name]["p_adjusted"] = p_adj
        out[name]["category"] = drift.category(p_adj, cfg.threshold, cfg.possible_factor)
        if out[name]["category"] == "drift":
            drifted.append(name)
    out["drifted"] = drifted
    out["status"] = cfg.prediction_status if drifted else "ok"
    out["reason"] = f"prediction drift in {', '.join(drifted)}" if drifted else ""
    return out


def assess_version(
    scan: VersionScan, config: MonitoringConfig, long: longwindow.LongWindow | None = None
) -> dict[str, Any]:
    """Every section for one version with a reference (and its long window), and its status."""
    ref = scan.reference
    if ref is None:
        return {
            "version": scan.tag,
            "rows": scan.rows,
            "status": "insufficient_data",
            "reasons": [f"no reference found for {scan.tag}: reported separately"],
        }
    data_drift = assess_drift(scan, config, long)
    prediction = assess_prediction_drift(scan, config)
    labels, preds, probs = scan.labels()
    perf = assess_performance(labels, preds, probs, ref.metadata, config.performance)
    perf["late_labelled"] = scan.late_labelled  # of n_labelled: predicted before the window
    quality = assess_quality(scan.quality, config.quality, OPTIONAL_FEATURES)
    status = worst(data_drift["status"], prediction["status"], perf["status"], quality["status"])
    if data_drift["status"] == "insufficient_data" and perf["status"] == "insufficient_data":
        status = status if is_problem(status) else "insufficient_data"
    sections = (data_drift, prediction, perf)
    reasons = [s["reason"] for s in sections if is_problem(s["status"]) and s.get("reason")]
    reasons += [f"data quality: {item}" for item in quality["flagged"]]
    notes = [s["reason"] for s in sections if s["status"] == "insufficient_data"]
    if status == "insufficient_data":
        reasons = notes
    return {
        "version": scan.tag,
        "rows": scan.rows,
        "status": status,
        "reasons": reasons,
        "notes": notes,
        "data_drift": data_drift,
        "prediction_drift": prediction,
        "performance": perf,
        "quality": quality,
    }
