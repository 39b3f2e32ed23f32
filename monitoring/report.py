"""Self-contained HTML report of one monitoring run (inline CSS, charts as inline SVG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from monitoring import plots, verdicts
from monitoring.window import VersionScan
from reggaeton.schema import FEATURES

COLORS = {"ok": "#2e7d32", "warning": "#ef6c00", "alert": "#c62828", "insufficient_data": "#616161"}
CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.badge{color:#fff;padding:3px 10px;border-radius:4px;font-weight:600}
.drift{background:#fdecea} .possible_drift{background:#fff4e5}
.feature{margin:10px 0 18px} figure{margin:0} .charts svg{margin-right:12px}
.muted{color:#777}
"""


def _badge(status: str) -> str:
    return (
        f'<span class="badge" style="background:{COLORS.get(status, "#555")}">'
        f"{escape(status.upper())}</span>"
    )


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return escape(str(value))


def _img(svg: str | None, alt: str) -> str:
    return f'<figure aria-label="{escape(alt)}">{svg}</figure>' if svg else ""


def _table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str] | None = None
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = ""
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body += f"<tr{cls}>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


TEST_COLUMNS = ("feature", "test", "statistic", "p-value", "adjusted p", "category")
"""The leading columns of both drift tables (the window's and the long window's)."""


def _test_row(name: str, result: Mapping[str, Any]) -> list[Any]:
    """A feature's test result as the cells under :data:`TEST_COLUMNS`."""
    keys = ("test", "statistic", "pvalue", "p_adjusted", "category")
    return [name, *(result[k] for k in keys)]


def _drift_section(section: Mapping[str, Any], scan: VersionScan | None) -> str:
    out = ["<h2>Data drift</h2>"]
    if section.get("status") == "insufficient_data":
        return out[0] + f"<p>{escape(section['reason'])}</p>"
    feats = section.get("features", {})
    out.append(
        f"<p>Kolmogorov-Smirnov (numeric) and chi-square (categorical) against the "
        f"training sample; threshold {section['threshold']:g}, correction "
        f"<b>{escape(section['correction'])}</b>.</p>"
    )
    rows = [_test_row(n, r) + [r["n_reference"], r["n_window"]] for n, r in feats.items()]
    out.append(_table([*TEST_COLUMNS, "n ref", "n window"], rows, [r[5] for r in rows]))
    if feats:
        out.append(_img(plots.pvalue_plot(feats, section["threshold"]), "p-values"))
    out.append("<h2>Reference vs window, per feature</h2>")
    for feature in verdicts.plot_order(FEATURES, feats):  # drifted first
        name = feature.name
        res = feats.get(name)
        title = f'<h3 id="feature-{name}">{escape(name)}'
        if res:
            title += f" &mdash; {escape(res['category'])} (p adj. {_fmt(res['p_adjusted'])})"
        out.append(f'<div class="feature">{title}</h3>')
        if res and scan is not None and name in scan.numeric:
            out.append(
                _img(plots.numeric_plot(name, scan.numeric[name], res["category"] == "drift"), name)
            )
        elif res and scan is not None and name in scan.categorical:
            out.append(
                _img(
                    plots.categorical_plot(
                        name, scan.reference.category_counts(name), scan.categorical[name]
                    ),
                    name,
                )
            )
        else:
            out.append(
                '<p class="muted">not compared: absent from the reference sample or '
                "from this window's records</p>"
            )
        out.append("</div>")
    return "\n".join(out)


def _long_window_section(
    drift_section: Mapping[str, Any], overview: Mapping[str, Any] | None
) -> str:
    """The long window (issue 14, slow drift): the last runs' exact counts merged, tested in
    the same multiple-testing family as the current window (monitoring/longwindow.py)."""
    out = ['<h2 id="long-window">Long window: the last runs merged</h2>']
    lw = drift_section.get("long_window")
    if not lw:
        note = (overview or {}).get("note") or "off (drift.long_window_runs: 0)"
        return out[0] + f"<p class='muted'>{escape(note)}</p>"
    out.append(
        f"<p>{lw['runs']} runs, {_when(lw['since'])} &rarr; {_when(lw['until'])}, "
        f"{lw['rows']:,} records; tested with the current window as one family of "
        f"{drift_section.get('tests')} tests (threshold {drift_section['threshold']:g}, "
        f"correction <b>{escape(drift_section['correction'])}</b>).</p>"
    )
    current = drift_section.get("features", {})
    rows = [
        _test_row(n, r) + [(current.get(n) or {}).get("category"), r["n_window"]]
        for n, r in lw["features"].items()
    ]
    columns = [*TEST_COLUMNS, "current window", "n long window"]
    out.append(_table(columns, rows, [r[5] for r in rows]))
    if lw.get("skipped"):
        out.append("<p class='muted'>Left out: " + escape("; ".join(lw["skipped"])) + "</p>")
    return "\n".join(out)


def _prediction_section(section: Mapping[str, Any], scan: VersionScan | None) -> str:
    out = ["<h2>Prediction drift</h2>"]
    if section.get("status") == "insufficient_data":
        return out[0] + "<p>insufficient data</p>"
    rows = []
    if "probability" in section:
        p = section["probability"]
        rows.append(
            ["probability (KS)", p["statistic"], p["pvalue"], p["p_adjusted"], p["category"]]
        )
    if "positive_rate" in section:
        r = section["positive_rate"]
        rows.append(
            [
                f"positive rate {r['reference_rate']:.3f} -> {r['window_rate']:.3f}",
                r["statistic"],
                r["pvalue"],
                r["p_adjusted"],
                r["category"],
            ]
        )
    out.append(
        _table(
            ["test", "statistic", "p-value", "adjusted p", "category"], rows, [r[4] for r in rows]
        )
    )
    if scan is not None and scan.probability is not None and scan.probability.n:
        out.append(
            _img(
                plots.numeric_plot(
                    "probability", scan.probability, "probability" in section.get("drifted", [])
                ),
                "probability histogram",
            )
        )
    return "\n".join(out)


def _performance_section(perf: Mapping[str, Any]) -> str:
    out = [
        "<h2>Performance on labelled records</h2>",
        f"<p>{perf['n_labelled']} labelled records ({perf['n_positive']} reggaeton, "
        f"{perf['n_negative']} other). Status {_badge(perf['status'])}</p>",
    ]
    if perf.get("metrics") is None:
        out.append(f"<p>{escape(perf.get('reason', 'insufficient data'))}</p>")
        return "\n".join(out)
    m, ref = perf["metrics"], perf["reference"]
    pvalues = perf.get("pvalues") or {}
    rows = [
        [k, m.get(k), ref.get(k), perf["drops"].get(k), pvalues.get(k, "")]
        for k in ("precision", "recall", "f1", "pr_auc")
    ]
    out.append(
        _table(["metric", "window", "model (hold-out)", "drop", "p (drop, one-sided Fisher)"], rows)
    )
    for line in perf.get("unconfirmed") or []:
        out.append(f"<p class='note'>Not alerted: {escape(line)}.</p>")
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    out.append(
        _table(
            ["confusion matrix", "predicted other", "predicted reggaeton"],
            [["actual other", tn, fp], ["actual reggaeton", fn, tp]],
        )
    )
    return "\n".join(out)


def _quality_section(quality: Mapping[str, Any]) -> str:
    rows = [
        [n, q["missing"], q["invalid"], q["out_of_training_range"], "; ".join(q["problems"])]
        for n, q in quality["features"].items()
    ]
    return "<h2>Data quality</h2>" + _table(
        ["feature", "missing", "invalid", "outside training range", "problems"],
        rows,
        ["possible_drift" if r[4] else "" for r in rows],
    )


def _when(iso: str) -> str:
    """ISO-8601 time as ``2026-03-01 12:00:00.000 UTC`` (see :func:`verdicts.when`)."""
    return verdicts.when(iso)


def _alerts_line(a: Mapping[str, Any]) -> str:
    sent = ", ".join(a.get("sent") or []) or "none"
    line = f"alerts: logged; sent to {sent}; delivery failures {a.get('failures', 0)}"
    if a.get("possible_drift"):
        line += f"; possible drift {a['possible_drift']}"
    return line + (f" ({a['skipped']})" if a.get("skipped") else "")


def _retrain_line(r: Mapping[str, Any] | None) -> str:
    if not r:
        return "retraining: not triggered (auto-retrain off or status below alert)"
    if r.get("triggered"):
        what = r.get("job") or (r.get("result") or {}).get("tag") or r.get("error")
        return f"retraining: triggered ({r['mode']}, {r['condition']}): {what}"
    return f"retraining: skipped ({r.get('reason') or r.get('error')})"


def render(
    summary: Mapping[str, Any], scan: VersionScan | None, history: Sequence[Mapping[str, Any]] = ()
) -> str:
    """The HTML report of a run.

    Args:
        summary: The run summary (see :func:`monitoring.monitor.run`).
        scan: The serving version's scan (for the plots); None when it had no records.
        history: Previous runs' summaries, newest first (performance over time).
    """
    s = summary
    serving = s.get("serving") or {}
    w = s["window"]
    reasons = "".join(f"<li>{escape(r)}</li>" for r in s.get("reasons", [])) or "<li>none</li>"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Monitoring "
        f"{escape(s['run_id'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Reggaeton model monitoring {_badge(s['status'])}</h1>",
        f"<p>Run <code>{escape(s['run_id'])}</code> &middot; model "
        f"<code>{escape(str(s.get('model_version')))}</code> &middot; window "
        f"{_when(w['since'])} &rarr; {_when(w['until'])} "
        f"({verdicts.span(w['since'], w['until'])}) &middot; {w['rows']:,} records "
        f"({serving.get('rows', 0):,} from the serving version)</p>",
        f"<h2>What triggered</h2><ul>{reasons}</ul>",
        verdicts.possible_html(s.get("possible_drift")),
        f"<p class='muted'>{escape(_alerts_line(s.get('alerts') or {}))}<br>"
        f"{escape(_retrain_line(s.get('retrain')))}</p>",
    ]
    if serving.get("data_drift"):
        parts.append(_drift_section(serving["data_drift"], scan))
        parts.append(_long_window_section(serving["data_drift"], s.get("long_window")))
        parts.append(_prediction_section(serving["prediction_drift"], scan))
        parts.append(_performance_section(serving["performance"]))
        parts.append(_quality_section(serving["quality"]))
    else:
        parts.append("<p>No record of the serving version in this window.</p>")
    hist = plots.history_plot([s, *history])
    if hist:
        parts.append("<h2>Over the last runs</h2>" + _img(hist, "history"))
    others = s.get("other_versions") or {}
    if others:
        rows = [
            [t, o.get("rows"), o.get("status"), "; ".join(o.get("reasons", []))]
            for t, o in others.items()
        ]
        parts.append(
            "<h2>Other model versions in the window</h2>"
            + _table(["version", "records", "status", "reasons"], rows)
        )
    wl = s.get("whylogs_drift") or {}
    if wl:
        main = {
            **((serving.get("data_drift") or {}).get("features") or {}),
            **(serving.get("prediction_drift") or {}),
        }
        parts.append(verdicts.cross_check_html(verdicts.cross_check(wl), main, _table))
    parts.append("</body></html>")
    return "\n".join(parts)
