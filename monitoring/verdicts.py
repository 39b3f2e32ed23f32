"""Make every verdict of a run visible: possible drift, plot order, the whylogs cross-check.

The assessment (:mod:`monitoring.assess`) decides; this module only collects its verdicts
into the places a person reads (summary JSON, CLI line, report header) so that what is shown
is what was decided. Pure functions: summaries in, lists and HTML snippets out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from reggaeton.schema import CATEGORICAL_FEATURES, Feature
from reggaeton.timeutil import parse_utc

VERDICT_RANK = {"drift": 0, "possible_drift": 1, "no_drift": 2}
"""Plot and list order: drifted first, then possible drift, then the rest."""
PREDICTION_TESTS = ("probability", "positive_rate")


def possible_drift(version: Mapping[str, Any]) -> dict[str, list[str]]:
    """Features and prediction tests of one assessed version in the ``possible_drift`` band.

    Args:
        version: An :func:`monitoring.assess.assess_version` result.

    Returns:
        ``{"data": [features], "prediction": [tests]}``, each in the assessment's order;
        empty lists when nothing is in the band (or nothing could be judged).
    """
    data = (version.get("data_drift") or {}).get("features") or {}
    pred = version.get("prediction_drift") or {}
    return {
        "data": [n for n, r in data.items() if r.get("category") == "possible_drift"],
        "prediction": [
            t for t in PREDICTION_TESTS if (pred.get(t) or {}).get("category") == "possible_drift"
        ],
    }


def possible_text(possible: Mapping[str, Iterable[str]] | None) -> str:
    """``data: loudness; prediction: probability`` (empty string when there is none)."""
    parts = [f"{kind}: {', '.join(names)}" for kind, names in (possible or {}).items() if names]
    return "; ".join(parts)


def plot_order(
    features: Iterable[Feature], results: Mapping[str, Mapping[str, Any]]
) -> list[Feature]:
    """``features`` ordered by verdict (drift, possible drift, no drift, not compared);
    schema order within a verdict, so a reader finds what alerted at the top."""
    feats = list(features)
    return sorted(
        feats,
        key=lambda f: (
            VERDICT_RANK.get((results.get(f.name) or {}).get("category"), len(VERDICT_RANK)),
            feats.index(f),
        ),
    )


def cross_check(scores: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """whylogs' scores without whylogs' own verdict (``drift_category``).

    whylogs labels a column DRIFT / POSSIBLE_DRIFT at its own uncorrected cut-offs (about
    p < 0.05 and < 0.15); beside the corrected main verdict that label contradicts it (an
    unchanged feature at raw p 0.009 is not drift after Bonferroni over 14 tests). Only the
    algorithm, statistic and p-value are kept; an error entry keeps its message.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, score in scores.items():
        entry = {k: score.get(k) for k in ("algorithm", "statistic", "pvalue")}
        if name == "error":
            entry["error"] = score.get("drift_category") or score.get("error")
        out[name] = entry
    return out


def when(iso: str) -> str:
    """ISO-8601 time as ``2026-03-01 12:00:00.250 UTC`` (milliseconds: a window shorter than
    a second must not read as empty)."""
    try:
        return parse_utc(iso).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    except ValueError:
        return escape(iso)


def span(since: str, until: str) -> str:
    """Length of the window: ``0.750 s``, ``42.000 s``, ``1 h 30 min 0.000 s``."""
    try:
        seconds = (parse_utc(until) - parse_utc(since)).total_seconds()
    except ValueError:
        return "?"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    head = (f"{int(hours)} h " if hours else "") + (
        f"{int(minutes)} min " if hours or minutes else ""
    )
    return f"{head}{secs:.3f} s"


def possible_html(possible: Mapping[str, Iterable[str]] | None) -> str:
    """The report header's possible-drift line (always present, ``none`` when empty)."""
    text = possible_text(possible) or "none"
    return (
        f"<p id='possible-drift'><b>Possible drift</b> (adjusted p within 3&times; the "
        f"threshold: shown, alerts only if <code>alerts.possible_drift: notify</code>): "
        f"{escape(text)}</p>"
    )


def cross_check_html(
    whylogs: Mapping[str, Mapping[str, Any]], main: Mapping[str, Mapping[str, Any]], table: Any
) -> str:
    """The cross-check section: whylogs' raw p-values beside the main test's, main verdict only.

    Args:
        whylogs: :func:`cross_check` output (column -> algorithm, statistic, pvalue).
        main: Main results per column (data features and prediction tests), with ``pvalue``
            and ``category``.
        table: The report's table renderer ``(header, rows) -> html``.
    """
    rows = [
        [
            n,
            d.get("algorithm"),
            d.get("statistic"),
            d.get("pvalue"),
            (main.get(n) or {}).get("pvalue"),
            (main.get(n) or {}).get("category"),
            d.get("error", ""),
        ]
        for n, d in whylogs.items()
    ]
    return (
        "<h2 id='cross-check'>Cross-check: whylogs sketch-based p-values</h2>"
        "<p class='muted'>Informative only, no verdict of its own: the verdict is the main "
        "table's. whylogs' p-values are raw (not corrected for testing every feature) and "
        "come from KS on approximate, randomised KLL quantile sketches, while the main test "
        "is the exact KS on every record, corrected for multiple testing; a small raw "
        "whylogs p-value with <i>no_drift</i> beside it is therefore no contradiction. "
        f"Categorical features ({', '.join(CATEGORICAL_FEATURES)}) are not cross-checked: "
        "whylogs would run KS on their codes; the main table tests them with chi-square.</p>"
        + table(
            [
                "column",
                "algorithm",
                "statistic",
                "whylogs p (raw)",
                "main test p (raw)",
                "main verdict",
                "error",
            ],
            rows,
        )
    )
