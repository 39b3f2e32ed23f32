"""Per-worker state: the serving predictor (swapped atomically), the prediction log, metrics.

HTTP routes and the gRPC servicer both call :meth:`Runtime.score`, so every prediction, whatever
its entry point, is validated the same way, scored by the same predictor and logged the same way.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reggaeton.records.base import PredictionBatch
from reggaeton.registry import ModelLoadError, Registry
from reggaeton.timeutil import now_iso, utcnow
from service.commits import CommitWatch
from service.config import ServiceConfig
from service.feedback import FeedbackDesk
from service.inference import Predictor, load_predictor, result_rows
from service.metrics import ServiceMetrics
from service.retention import Pruner
from service.validation import COLUMNS
from service.writer import PredictionWriter

logger = logging.getLogger("reggaeton.service")


GROUP_COMMIT_S = 0.002
"""Durable mode: the writer commits what is queued at least this often (its flush interval)."""
DURABLE_TIMEOUT_S = 10.0
"""Durable mode: longest wait for a commit before answering 503 (a hung store)."""


class NotReady(RuntimeError):
    """No model version is loaded yet."""


@dataclass
class ScoreJob:
    """One request's validated rows waiting to be scored (see :meth:`Runtime.score_many`)."""

    validated: np.ndarray
    source: str
    started: float
    batch: bool = False
    ticket: int = 0
    """Set once scored: the writer ticket of the job's records (durable mode waits on it)."""


class NotDurable(RuntimeError):
    """Durable mode: a record's group commit did not finish in time (answered 503)."""


class Runtime:
    """Everything one worker needs to serve, created by the service's startup hook.

    Args:
        config: The service configuration.
        worker: BentoML worker index (1-based) or None outside ``bentoml serve``.
    """

    def __init__(self, config: ServiceConfig, worker: int | None = None) -> None:
        self.config = config
        self.worker = worker
        self.registry = Registry(config.home)
        self.metrics = ServiceMetrics()
        self.predictor: Predictor | None = None
        self.status: dict[str, Any] = {"last_check": None, "last_error": None, "refused": {}}
        self._reload_lock = threading.Lock()
        self._seen_record: tuple[float, str | None] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by a request that found no model: check now
        self._threads: list[threading.Thread] = []
        self.durable = config.log_durability == "sync"
        linger = min(config.log_flush_interval, GROUP_COMMIT_S) if self.durable else None
        spill = config.spill_dir / f"predictions-worker{worker or 0}.jsonl"
        self.writer = PredictionWriter(
            self._open_store,
            Path(spill),
            max_queue=config.log_queue,
            batch_size=config.log_batch,
            flush_interval=linger or config.log_flush_interval,
            retention=Pruner(config.log_retention_days),
            spill_max_bytes=config.spill_max_bytes or None,
            drain_s=config.spill_drain_s,
        )
        self.commits = CommitWatch(self.writer)
        self.feedback = FeedbackDesk(self.commits, self._open_store, config.feedback_wait)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Load the model (a failure leaves the worker unready, the watcher keeps trying)."""
        self.writer.start()
        self.reload(reason="startup")
        for name, target in (("model-watcher", self._watch), ("metrics-sync", self._sync)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop the background threads and flush the prediction log."""
        self._stop.set()
        self._wake.set()
        self.writer.close(timeout=self.config.spill_drain_s + 10.0)
        self.feedback.close()

    @property
    def ready(self) -> bool:
        """True once a model version is loaded; asking an unready worker wakes its watcher.

        Readiness (``/readyz``) and scoring are answered per worker, and a sibling may already
        serve a new promotion: the asked worker checks the record now, not at its next tick.
        """
        if self.predictor is None:
            self._wake.set()
            return False
        return True

    def _open_store(self) -> Any:
        from reggaeton.records.factory import open_store

        return open_store(self.config.store_uri, self.config.log_retention_days)

    # -- model versions ----------------------------------------------------------------------
    def _record_state(self) -> tuple[float, str | None]:
        path = self.registry.promotions.path
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return (0.0, None)
        return (mtime, self.registry.promotions.current())

    def reload(self, reason: str = "manual") -> dict[str, Any]:
        """Load the version that should serve now and swap it in if it differs and verifies.

        A version that fails to load or verify is refused: the current predictor keeps
        serving, the reason is logged, counted and shown by ``GET /model``.

        Returns:
            ``{"changed": bool, "model_version": tag or None, "error": str or None}``.
        """
        with self._reload_lock:
            state = self._record_state()
            self._seen_record = state
            self.status["last_check"] = now_iso("seconds")
            wanted = self.config.model_tag or state[1]
            current = self.predictor.tag if self.predictor else None
            if wanted and current and _same_tag(wanted, current):
                return {"changed": False, "model_version": current, "error": None}
            try:
                predictor = load_predictor(self.registry, self.config.model_tag)
            except ModelLoadError as exc:
                return self._refuse(wanted, str(exc), reason)
            except Exception as exc:  # noqa: BLE001 - an unusable version must never crash serving
                return self._refuse(wanted, f"{type(exc).__name__}: {exc}", reason)
            self.predictor = predictor  # one reference assignment: in-flight requests keep theirs
            self.status["last_error"] = None
            self.metrics.set_model(predictor.tag, predictor.path_name)
            logger.info(
                "worker %s now serves %s (%s path, %s; was %s)",
                self.worker,
                predictor.tag,
                predictor.path_name,
                reason,
                current,
            )
            return {"changed": True, "model_version": predictor.tag, "error": None}

    def _refuse(self, tag: str | None, error: str, reason: str) -> dict[str, Any]:
        at = now_iso("seconds")
        self.status["last_error"] = {"tag": tag, "error": error, "at": at, "trigger": reason}
        if tag:
            self.status["refused"][tag] = {"error": error, "at": at}
        self.metrics.reload_failures.inc()
        serving = self.predictor.tag if self.predictor else None
        logger.error(
            "worker %s refused model version %s (%s): %s; still serving %s",
            self.worker,
            tag,
            reason,
            error,
            serving,
        )
        return {"changed": False, "model_version": serving, "error": error}

    def _watch(self) -> None:
        interval = self.config.watch_interval
        if interval <= 0:
            return
        tick = time.monotonic() + interval
        while True:
            self._wake.wait(max(0.0, tick - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            # Wake-ups between ticks load only a changed record (a flood of requests to a
            # worker whose version was refused must not become a loop of failing loads), and
            # do not postpone the tick, which retries an unloaded worker.
            ticked = time.monotonic() >= tick
            if ticked:
                tick = time.monotonic() + interval
            try:
                if self.config.model_tag and self.predictor is not None:
                    continue  # pinned and loaded: nothing to follow
                changed = self._record_state() != self._seen_record
                if changed or (self.predictor is None and ticked):
                    self.reload(reason="promotion record changed")
            except Exception:  # noqa: BLE001 - the watcher must survive anything
                logger.exception("model watcher error")

    def _sync(self) -> None:
        while not self._stop.wait(1.0):
            self.sync_metrics()

    def sync_metrics(self) -> None:
        """Copy the writer's counters into the Prometheus metrics."""
        try:
            self.metrics.update_writer(self.writer.stats())
        except Exception:  # noqa: BLE001
            logger.exception("metrics sync failed")

    # -- scoring -------------------------------------------------------------------------------
    def current(self) -> Predictor:
        """The serving predictor. Raises NotReady before the first successful load."""
        predictor = self.predictor
        if predictor is None:
            self._wake.set()  # as in :attr:`ready`
            raise NotReady("no model version loaded yet")
        return predictor

    def score(
        self, validated: np.ndarray, source: str, started: float, batch: bool = False
    ) -> list[dict[str, Any]]:
        """Score validated rows, log every prediction, count it; returns the JSON results.

        Args:
            validated: Matrix from :func:`service.validation.validate_rows`.
            source: ``http``, ``grpc`` or ``batch`` (stored in the prediction log).
            started: ``time.perf_counter()`` when the request arrived.
            batch: True for the batch endpoints (ids get a shared prefix and an index).
        """
        job = ScoreJob(validated, source, started, batch)
        results = self.score_many([job])[0]
        if self.durable and not self.commits.wait_blocking(job.ticket, DURABLE_TIMEOUT_S):
            raise NotDurable(f"prediction log: no commit within {DURABLE_TIMEOUT_S} s")
        return results

    async def committed(self, job: ScoreJob) -> None:
        """Durable mode: return once the job's records are committed (or spilled, fsync'd).

        Called by the event-loop paths after :meth:`score_many`; a no-op in the default mode.

        Raises:
            NotDurable: The commit took longer than :data:`DURABLE_TIMEOUT_S`.
        """
        if self.durable and not await self.commits.wait(job.ticket, DURABLE_TIMEOUT_S):
            raise NotDurable(f"prediction log: no commit within {DURABLE_TIMEOUT_S} s")

    def score_many(self, jobs: list[ScoreJob]) -> list[list[dict[str, Any]]]:
        """Score several requests with ONE model call (rows stacked), then answer and log
        each request separately. Returns one result list per job, in order.

        Does not wait for durability: the caller awaits :meth:`committed` (event loop) or uses
        :meth:`score` (threads), which does."""
        predictor = self.current()  # one read: every merged request uses one version
        if len(jobs) == 1:
            parts = [predictor.predict(jobs[0].validated)]
        else:
            proba, labels = predictor.predict(np.concatenate([j.validated for j in jobs]))
            cuts = np.cumsum([len(j.validated) for j in jobs])[:-1]
            parts = list(zip(np.split(proba, cuts), np.split(labels, cuts), strict=True))
        self.metrics.merged.observe(len(jobs))
        return [
            self._finish(predictor, job, proba, labels)
            for job, (proba, labels) in zip(jobs, parts, strict=True)
        ]

    def _finish(
        self, predictor: Predictor, job: ScoreJob, proba: np.ndarray, labels: np.ndarray
    ) -> list[dict[str, Any]]:
        """Answer one scored request: its results, its log entry, its metrics."""
        prefix = secrets.token_hex(16)
        ids = [f"{prefix}-{i}" for i in range(len(labels))] if job.batch else [prefix]
        results = result_rows(predictor, proba, labels, ids)
        job.ticket = self._log(predictor, job, ids, proba, labels)
        self.metrics.observe(proba, labels, job.source)
        return results

    def _log(
        self,
        predictor: Predictor,
        job: ScoreJob,
        ids: list[str],
        proba: np.ndarray,
        labels: np.ndarray,
    ) -> int:
        """Queue the request's predictions for the prediction log; returns the writer ticket.

        The only call into the writer: one columnar entry per request (not one object per row),
        see :class:`reggaeton.records.base.PredictionBatch`.
        """
        latency_ms = (time.perf_counter() - job.started) * 1000.0
        batch = PredictionBatch(
            ids,
            predictor.tag,
            COLUMNS,
            job.validated,
            proba,
            labels,
            latency_ms,
            job.source,
            utcnow(),
        )
        return self.writer.submit_ticketed(batch)[1]


def _same_tag(a: str, b: str) -> bool:
    return a.split(":")[-1] == b.split(":")[-1]
