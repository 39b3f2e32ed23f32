"""The service's own Prometheus metrics (prometheus_client, multiprocess-aware).

``bentoml serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` for its workers, so these metrics land in
the same directory as BentoML's and appear in its ``/metrics``; when BentoML's metrics are
switched off, :func:`render` exposes the same directory from our own ``/metrics`` route.
Metrics are created when a worker starts (:class:`ServiceMetrics`), never at import.

The probability histogram is the exception to "prometheus_client's own classes":
``Histogram.observe`` takes one value per call, and in multiprocess mode a call cost 2.9 µs
here, about 3 ms for a 1,000-row batch. :class:`ProbabilityCounts` keeps the bucket counts as
a small float64 array per worker instead (a memory-mapped file next to prometheus_client's own,
so dead workers' counts stay in the total as theirs do), adds a whole batch with one
``bincount``, and is exposed as a histogram through prometheus_client's public custom-collector
interface (``HistogramMetricFamily``). It is served by our ``/metrics`` route; BentoML's own
``/metrics`` (when switched on) reads only prometheus_client's files and does not show it.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

PROBABILITY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
_WRITER_COUNTERS = {
    "write_failures": "Failed writes/probes of the prediction store (records then spill)",
    "spilled": "Prediction records written to the local spill file while the store was down",
    "overflowed": "Prediction records spilled because the in-memory queue was full",
    "replayed": "Spilled prediction records replayed into the store",
    "dropped": "Prediction records that could not be recorded (spill unwritable)",
    "written": "Prediction records written to the store",
    "spill_full": "Prediction records dropped: the spill file was at PREDICTION_SPILL_MAX_BYTES",
    "pruned": "Predictions deleted by the retention (PREDICTION_LOG_RETENTION_DAYS)",
}


class ServiceMetrics:
    """Counters and histograms of one worker (aggregated across workers at scrape time)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        reg = registry or REGISTRY
        self.predictions = Counter(
            "reggaeton_predictions_total",
            "Predictions served, by predicted label and source",
            ["label", "source"],
            registry=reg,
        )
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.probability = ProbabilityCounts(Path(directory) if directory else None)
        if not directory:  # one process: its registry collects the counts directly
            reg.register(self.probability)
        self.latency = Histogram(
            "reggaeton_request_latency_seconds",
            "Server-side latency of scoring requests, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.merged = Histogram(
            "reggaeton_requests_per_model_call",
            "Concurrent requests merged into one model call",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=reg,
        )
        self.requests = Counter(
            "reggaeton_requests_total",
            "HTTP requests answered, by endpoint and status code",
            ["endpoint", "status"],
            registry=reg,
        )
        self.queue_depth = Gauge(
            "reggaeton_prediction_log_queue_depth",
            "Prediction records waiting in memory for the store",
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.spill_pending = Gauge(
            "reggaeton_prediction_log_spill_bytes",
            "Bytes in the spill file waiting for replay",
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.writer = {
            key: Counter(f"reggaeton_prediction_log_{key}_total", doc, registry=reg)
            for key, doc in _WRITER_COUNTERS.items()
        }
        self.reload_failures = Counter(
            "reggaeton_model_reload_failures_total",
            "Model versions refused by the reload/watch logic",
            registry=reg,
        )
        self.model_info = Gauge(
            "reggaeton_model_info",
            "Model version served (value 1)",
            ["version", "path"],
            multiprocess_mode="livemax",
            registry=reg,
        )
        self._children: dict[tuple[int, str], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._request_children: dict[tuple[str, int], Any] = {}
        self._writer_seen = dict.fromkeys(_WRITER_COUNTERS, 0)
        self._model_labels: tuple[str, str] | None = None

    def observe(self, proba: np.ndarray, labels: np.ndarray, source: str) -> None:
        """Count a scored request: labels by source and the probability histogram."""
        n = len(labels)
        positives = int(labels.sum()) if n > 1 else int(labels[0])
        for label, count in ((1, positives), (0, n - positives)):
            if count:
                self._child(label, source).inc(count)
        self.probability.add(proba)

    def observe_request(self, endpoint: str, status: int, seconds: float | None) -> None:
        """Count one answered request and, for successes, record its latency."""
        key = (endpoint, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(endpoint, str(status))
        counter.inc()
        if seconds is None:
            return
        child = self._latency_children.get(endpoint)
        if child is None:
            child = self._latency_children[endpoint] = self.latency.labels(endpoint)
        child.observe(seconds)

    def _child(self, label: int, source: str) -> Any:
        key = (label, source)
        child = self._children.get(key)
        if child is None:
            name = "reggaeton" if label == 1 else "other"
            child = self._children[key] = self.predictions.labels(name, source)
        return child

    def update_writer(self, stats: dict[str, Any]) -> None:
        """Mirror the prediction writer's cumulative counters and gauges."""
        self.queue_depth.set(stats.get("queue_depth", 0))
        self.spill_pending.set(stats.get("spill_bytes", 0))
        for key, counter in self.writer.items():
            value = int(stats.get(key, 0))
            delta = value - self._writer_seen[key]
            if delta > 0:
                counter.inc(delta)
                self._writer_seen[key] = value

    def set_model(self, version: str, path: str) -> None:
        """Publish the version now served by this worker."""
        if self._model_labels is not None:  # (remove() does not reach multiprocess files)
            self.model_info.labels(*self._model_labels).set(0)
        self._model_labels = (version, path)
        self.model_info.labels(version, path).set(1)


def render() -> tuple[bytes, str]:
    """Prometheus text for every worker (multiprocess) or this process."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(
            ProbabilityCounts.all_workers(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
        )
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


PROBABILITY_NAME = "reggaeton_prediction_probability"
_COUNTS_GLOB = "reggaeton_probability_*.f64"


class ProbabilityCounts:
    """Counts of predicted probabilities per :data:`PROBABILITY_BUCKETS` bucket, plus their sum.

    Layout: one count per bucket (values ``<= bound``, the last for ``+Inf``), then the sum.

    Args:
        directory: ``PROMETHEUS_MULTIPROC_DIR``: this worker's counts live in a file there, and
            :meth:`all_workers` sums every worker's file. None: counts in memory only.
    """

    def __init__(self, directory: Path | None, files: list[Path] | None = None) -> None:
        self._bounds = np.asarray(PROBABILITY_BUCKETS)
        self._bound_list = list(PROBABILITY_BUCKETS)
        self._files = files
        size = len(PROBABILITY_BUCKETS) + 2
        if directory is None or files is not None:
            self.counts = np.zeros(size)
            return
        path = directory / _COUNTS_GLOB.replace("*", str(os.getpid()))
        # Same-pid restarts continue the file, as prometheus_client does with its own files.
        mode = "r+" if path.is_file() and path.stat().st_size == size * 8 else "w+"
        self._file = np.memmap(path, dtype=np.float64, mode=mode, shape=(size,))
        self.counts = np.asarray(self._file)  # same memory, without memmap's per-call wrapping

    @classmethod
    def all_workers(cls, directory: Path) -> ProbabilityCounts:
        """A collector of the sum of every worker's counts in ``directory``."""
        return cls(directory, files=sorted(directory.glob(_COUNTS_GLOB)))

    def add(self, values: np.ndarray) -> None:
        """Count a batch of probabilities (bucket ``i`` holds ``bound[i-1] < v <= bound[i]``)."""
        counts = self.counts
        if len(values) == 1:  # a single song: no array temporaries
            value = float(values[0])
            counts[bisect.bisect_left(self._bound_list, value)] += 1.0
            counts[-1] += value
            return
        buckets = np.searchsorted(self._bounds, values, side="left")
        counts[:-1] += np.bincount(buckets, minlength=len(self._bounds) + 1)
        counts[-1] += float(values.sum())

    def collect(self) -> Iterator[Any]:
        """prometheus_client's collector interface: one histogram family."""
        from prometheus_client.core import HistogramMetricFamily

        totals = self.counts.copy()
        for path in self._files or []:
            found = np.fromfile(path, dtype=np.float64)
            if found.shape == totals.shape:  # a file being created is skipped once
                totals += found
        cumulative = np.cumsum(totals[:-1])
        bounds = [repr(float(b)) for b in self._bounds] + ["+Inf"]
        yield HistogramMetricFamily(
            PROBABILITY_NAME,
            "Predicted probability of reggaeton",
            buckets=list(zip(bounds, cumulative.tolist(), strict=True)),
            sum_value=float(totals[-1]),
        )
