"""Every verdict is visible: possible drift, plot order, the cross-check, times, axes, logs."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from monitoring import job, plots, report
from monitoring.alerts import OUTCOME_LOGGER, deliver
from monitoring.config import AlertConfig, load_config
from monitoring.drift import EcdfAccumulator
from monitoring.monitor import run
from monitoring.verdicts import VERDICT_RANK
from reggaeton.schema import FEATURES

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # as in conftest.py
WHYLOGS_CATEGORIES = ("NO_DRIFT", "POSSIBLE_DRIFT", "DRIFT")


def _run(config, store, registry):
    return run(
        config, store, registry, now=NOW, until=NOW, window=timedelta(hours=24), progress=None
    )


def _minimal_summary(**window) -> dict:
    """A run summary with no record of the serving version (renders the header only)."""
    return {
        "run_id": "r1",
        "status": "ok",
        "model_version": "m:1",
        "reasons": [],
        "window": window,
        "serving": {},
        "alerts": {},
        "retrain": None,
    }


@pytest.mark.integration
def test_possible_drift_in_summary_cli_line_and_report(make_log, registry, config, capsys):
    """A threshold half the smallest adjusted p-value puts that feature in the possible band:
    the JSON summary, the CLI status line and the report header all name it."""
    store, _ = make_log(n=1000, seed=3, name="possible.db")
    feats = _run(config, store, registry)["serving"]["data_drift"]["features"]
    target = min(feats, key=lambda n: feats[n]["p_adjusted"])
    threshold = feats[target]["p_adjusted"] / 2
    code = job.main(
        [
            "--store",
            f"sqlite:///{store.path}",
            "--home",
            str(registry.home),
            "--until",
            NOW.isoformat(),
            "--window",
            "24h",
            "--quiet",
            "--reports-dir",
            config.reports_dir,
            "--threshold",
            f"{threshold!r}",
            "--exit-zero",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(Path(re.search(r"^summary: (.+)$", out, re.M).group(1)).read_text())
    categories = summary["serving"]["data_drift"]["features"]
    expected = [n for n, r in categories.items() if r["category"] == "possible_drift"]
    assert target in expected
    assert summary["possible_drift"]["data"] == expected
    assert summary["drifted_features"] == []
    status_line = next(line for line in out.splitlines() if line.startswith("status: "))
    assert f"possible drift: data: {', '.join(expected)}" in status_line
    html = Path(summary["report_html"]).read_text()
    header = html.split("<h2>Data drift</h2>")[0]
    line = re.search(r"<p id='possible-drift'>(.*?)</p>", header).group(1)
    assert f"data: {', '.join(expected)}" in line


def _possible_summary(status: str = "ok") -> dict:
    return {
        "status": status,
        "run_id": "r1",
        "model_version": "m:1",
        "reasons": [],
        "window": {"rows": 1500},
        "possible_drift": {"data": ["loudness"], "prediction": []},
    }


@pytest.mark.parametrize(
    ("setting", "posted", "logged"),
    [("off", False, False), ("log", False, True), ("notify", True, True)],
)
def test_possible_drift_alert_channel(setting, posted, logged, caplog, monkeypatch):
    posts = []
    monkeypatch.setattr(
        "monitoring.alerts.send_webhook", lambda url, payload, timeout: posts.append(payload)
    )
    caplog.set_level(logging.INFO, logger=OUTCOME_LOGGER)
    outcome = deliver(
        _possible_summary(), AlertConfig(webhook_url="http://hook.test/x", possible_drift=setting)
    )
    events = [
        json.loads(r.getMessage())["event"] for r in caplog.records if r.name == OUTCOME_LOGGER
    ]
    assert ("possible_drift" in events) is logged
    assert bool(posts) is posted
    if posted:
        assert "possible drift (data: loudness)" in posts[0]["text"]
        assert posts[0]["monitoring"]["possible_drift"]["data"] == ["loudness"]
        assert outcome["sent"] == ["webhook"] and outcome["possible_drift"] == "notified"
    else:
        assert outcome["skipped"]


def test_possible_drift_setting_from_yaml_and_environment(tmp_path):
    assert load_config(environ={}).alerts.possible_drift == "off"
    assert load_config(environ={"ALERT_POSSIBLE_DRIFT": "Notify"}).alerts.possible_drift == "notify"
    path = tmp_path / "m.yaml"
    path.write_text("alerts: {possible_drift: log}\n")
    assert load_config(path, environ={}).alerts.possible_drift == "log"
    with pytest.raises(ValueError, match="alerts.possible_drift"):
        load_config(environ={"ALERT_POSSIBLE_DRIFT": "page"})


@pytest.mark.parametrize(
    ("status", "level"),
    [("ok", logging.INFO), ("warning", logging.WARNING), ("alert", logging.WARNING)],
)
def test_outcome_logged_below_error_on_its_own_logger(status, level, caplog):
    caplog.set_level(logging.DEBUG)
    deliver({"status": status, "reasons": ["data drift in tempo"], "window": {}}, AlertConfig())
    runs = [r for r in caplog.records if '"event": "monitoring_run"' in r.getMessage()]
    assert [(r.name, r.levelno) for r in runs] == [(OUTCOME_LOGGER, level)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_report_header_shows_subsecond_window_and_record_count():
    html = report.render(
        _minimal_summary(
            since="2026-03-01T15:37:15.100000+00:00",
            until="2026-03-01T15:37:15.900000+00:00",
            rows=12,
        ),
        None,
    )
    assert "2026-03-01 15:37:15.100 UTC &rarr; 2026-03-01 15:37:15.900 UTC (0.800 s)" in html
    assert "12 records" in html


def _ticks(svg: str) -> list[float]:
    return [float(t) for t in re.findall(r'class="xtick"[^>]*>([^<]+)<', svg)]


def test_histogram_axis_clipped_to_schema_bounds_with_labelled_overflow_bins():
    acc = EcdfAccumulator(np.linspace(1, 99, 300))  # bins 3.27 wide: outer bins cross 0, 100
    acc.update(np.array([0.5, 50.0, 99.5]))
    hist = plots.numeric_plot("popularity", acc, drifted=False).split("</svg>")[0]
    ticks = _ticks(hist)
    assert ticks and min(ticks) >= 0 and max(ticks) <= 100, ticks
    assert ticks[0] == 0 and ticks[-1] == 100
    labels = re.findall(r'class="overflow-label"[^>]*>([^<]+)<', hist)
    assert labels == ["&lt; 1", "&gt; 99"]


def test_histogram_axis_unbounded_keeps_outer_bins():
    acc = EcdfAccumulator(np.linspace(1, 99, 300))
    acc.update(np.array([50.0]))
    ticks = _ticks(plots.numeric_plot("x", acc, False, bounds=(None, None)).split("</svg>")[0])
    assert ticks[0] < 0 and ticks[-1] > 100  # no bounds, nothing clipped


@pytest.fixture
def tempo_drift_run(make_log, registry, config) -> dict:
    """A run over traffic with tempo +20 BPM: tempo drifts, the rest does not."""
    store, _ = make_log(n=1500, seed=17, drift=("tempo=+20",))
    summary = _run(config, store, registry)
    assert summary["drifted_features"] == ["tempo"]
    return summary


@pytest.mark.integration
def test_plots_ordered_by_verdict_drifted_first(tempo_drift_run):
    feats = tempo_drift_run["serving"]["data_drift"]["features"]
    ids = re.findall(r'<h3 id="feature-(\w+)"', report.render(tempo_drift_run, None))
    schema = [f.name for f in FEATURES]
    assert ids[0] == "tempo"
    assert ids == sorted(
        schema,
        key=lambda n: (VERDICT_RANK.get((feats.get(n) or {}).get("category"), 3), schema.index(n)),
    )


@pytest.mark.integration
def test_cross_check_shows_p_values_not_its_own_verdict(tempo_drift_run):
    summary = tempo_drift_run
    feats = summary["serving"]["data_drift"]["features"]
    # the JSON cross-check carries p-values only, numeric columns (KS) only
    wl = summary["whylogs_drift"]
    assert "tempo" in wl and "probability" in wl
    assert not {"key", "mode", "time_signature"} & set(wl)
    assert all("drift_category" not in d for d in wl.values())
    # an older stored summary with whylogs' uncorrected label: the report shows no such label
    summary["whylogs_drift"]["popularity"] = {
        "algorithm": "ks",
        "statistic": 0.1,
        "pvalue": 0.009,
        "drift_category": "DRIFT",
    }
    section = report.render(summary, None).split("id='cross-check'")[1]
    assert not any(c in section for c in WHYLOGS_CATEGORIES)
    assert "not corrected" in section and "no contradiction" in section
    row = re.search(r"<tr><td>popularity</td>(.*?)</tr>", section).group(1)
    assert "0.009" in row and feats["popularity"]["category"] in row
