"""The service's own Prometheus metrics (prometheus_client, multiprocess-aware).

``bentoml serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` for its workers, so these metrics land in
the same directory as BentoML's and appear in its ``/metrics``; when BentoML's metrics are
switched off, :func:`render` exposes the same directory from our own ``/metrics`` route.
Metrics are created when a worker starts (:class:`ServiceMetrics`), never at import.
"""

from __future__ import annotations

import os
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
        self.probability = Histogram(
            "reggaeton_prediction_probability",
            "Predicted probability of reggaeton",
            buckets=PROBABILITY_BUCKETS,
            registry=reg,
        )
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
        self._bounds = np.asarray(PROBABILITY_BUCKETS)
        self._model_labels: tuple[str, str] | None = None

    def observe(self, proba: np.ndarray, labels: np.ndarray, source: str) -> None:
        """Count a scored request: labels by source and the probability histogram."""
        n = len(labels)
        positives = int(labels.sum()) if n > 1 else int(labels[0])
        for label, count in ((1, positives), (0, n - positives)):
            if count:
                self._child(label, source).inc(count)
        self._observe_many(proba)

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

    def _observe_many(self, values: np.ndarray) -> None:
        hist = self.probability
        buckets = getattr(hist, "_buckets", None)
        if buckets is None or len(buckets) != len(self._bounds) + 1 or len(values) < 8:
            for v in values.tolist():
                hist.observe(v)
            return
        # Bulk observe: one increment per bucket instead of one call per value.
        counts = np.bincount(
            np.searchsorted(self._bounds, values, side="left"), minlength=len(buckets)
        )
        for i, c in enumerate(counts.tolist()):
            if c:
                buckets[i].inc(c)
        hist._sum.inc(float(values.sum()))

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
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
