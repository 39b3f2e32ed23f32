"""The probability histogram equals prometheus_client's own Histogram, in one and many processes.

The referee is a real ``prometheus_client.Histogram`` observing the same values one at a time;
the multiprocess case runs two real worker processes writing their own count files in one
``PROMETHEUS_MULTIPROC_DIR`` and scrapes them through :func:`service.metrics.render`.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from service.metrics import PROBABILITY_BUCKETS, PROBABILITY_NAME, ProbabilityCounts, render

# Values exactly at, just above and between bucket bounds, and both ends.
VALUES = np.array([0.0, 0.05, np.nextafter(0.05, 1), 0.5, 0.73, 0.95, 0.97, 1.0, 0.3, 0.3])


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(PROBABILITY_NAME) and not line.startswith(f"{PROBABILITY_NAME}_created"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _referee(values: np.ndarray) -> dict[str, float]:
    registry = CollectorRegistry()
    hist = Histogram(PROBABILITY_NAME, "x", buckets=PROBABILITY_BUCKETS, registry=registry)
    for v in values.tolist():
        hist.observe(v)
    return _samples(generate_latest(registry).decode())


def test_one_process_counts_equal_prometheus_histogram():
    registry = CollectorRegistry()
    counts = ProbabilityCounts(None)
    registry.register(counts)
    counts.add(VALUES[:4])
    counts.add(VALUES[4:5])  # single rows and batches add up the same way
    counts.add(VALUES[5:])
    assert _samples(generate_latest(registry).decode()) == _referee(VALUES)


WORKER = (
    "import sys, numpy as np; from pathlib import Path; "
    "from service.metrics import ProbabilityCounts; "
    "c = ProbabilityCounts(Path(sys.argv[1])); c.add(np.array([float(v) for v in sys.argv[2:]]))"
)


def test_workers_counts_are_summed_at_scrape_time(tmp_path, monkeypatch):
    halves = (VALUES[:6], VALUES[6:])
    for half in halves:
        subprocess.run(
            [sys.executable, "-c", WORKER, str(tmp_path), *map(repr, half.tolist())], check=True
        )
    assert len(list(tmp_path.glob("reggaeton_probability_*.f64"))) == 2
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    content, _ = render()
    assert _samples(content.decode()) == _referee(VALUES)
