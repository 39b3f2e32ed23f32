"""Helpers of the end-to-end and fuzz tests: real ``bentoml serve`` processes on free ports.

Imported as ``e2e.support`` from both ``tests/e2e`` and ``tests/fuzz`` (``tests/`` is on
``sys.path`` because of the root conftest), so the one shared service below is started once per
session whichever of the two folders runs.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from reggaeton.records import open_store
from scripts.demo_steps import EXAMPLE_SONG
from scripts.procs import ServiceProcess, free_port, run_module

ROOT = Path(__file__).resolve().parents[2]

__all__ = [
    "ServiceProcess",
    "free_port",
    "run_module",
    "ROOT",
    "SONG",
    "Deployment",
    "deploy",
    "shared_deployment",
    "stored_ids",
    "wait_until",
]

SONG = EXAMPLE_SONG
"""The original README's example song (the body of the original curl command)."""


@dataclass
class Deployment:
    """A service process with its own model store, prediction log and spill folder."""

    service: ServiceProcess
    home: Path
    db_path: Path
    spill_dir: Path
    token: str | None
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.service.url

    def restart(self, timeout: float = 180.0) -> None:
        """Start a new process with the same environment on fresh ports (after a stop or kill).

        Fresh ports: a listening socket of the killed process group can linger for a moment.
        """
        self.service = ServiceProcess(env=self.env, log_path=self.service.log_path).start()
        self.service.wait_ready(timeout)

    def auth(self) -> dict[str, str]:
        """Authorization header with the right token (empty when no token is configured)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def deploy(
    trained_home: Path,
    workdir: Path,
    token: str | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 180.0,
) -> Deployment:
    """Copy ``trained_home`` into ``workdir`` and serve it with a fresh SQLite log.

    Args:
        trained_home: A BENTOML_HOME with a promoted version (copied, never modified).
        workdir: Folder of this deployment's state (store, log, spill, server output).
        token: API_TOKEN for the service (None = open).
        extra_env: More environment variables for the service.
    """
    home = workdir / "bentoml"
    shutil.copytree(trained_home, home)
    db_path = workdir / "predictions.db"
    spill = workdir / "spill"
    env = {
        "BENTOML_HOME": str(home),
        "PREDICTION_STORE_URI": f"sqlite:///{db_path}",
        "PREDICTION_SPILL_DIR": str(spill),
        "MODEL_WATCH_INTERVAL": "0.5",
        "FEEDBACK_WAIT_S": "5",
    }
    env["API_TOKEN"] = token or ""
    env.update(extra_env or {})
    proc = ServiceProcess(env=env, log_path=workdir / "server.log").start()
    try:
        proc.wait_ready(timeout)
    except BaseException:
        proc.stop()
        raise
    return Deployment(proc, home, db_path, spill, token, env)


_SHARED: dict[str, Deployment] = {}


def shared_deployment(trained_home: Path, tmp_factory: Any) -> Deployment:
    """One service per test session, with an API_TOKEN, for the tests that do not kill it.

    Tests using it may promote versions and write predictions, but must leave it running.
    """
    if "shared" not in _SHARED:
        workdir = tmp_factory.mktemp("shared_service")
        _SHARED["shared"] = deploy(
            trained_home,
            workdir,
            token="tok-" + secrets.token_hex(16),
            extra_env={"FEEDBACK_WAIT_S": "1"},
        )
    dep = _SHARED["shared"]
    if not dep.service.alive():
        raise RuntimeError(f"shared service died:\n{dep.service.log_tail()}")
    return dep


def stop_shared() -> None:
    """Stop the shared service (session teardown)."""
    dep = _SHARED.pop("shared", None)
    if dep is not None:
        dep.service.stop()


def stored_ids(db_path: Path) -> list[str]:
    """Every request_id in an SQLite prediction log, as its readers see it (duplicates kept).

    Read through the store, not a table: a batch request is one compact row of arrays
    (``prediction_batches``), so the ``predictions`` table alone misses its songs.
    """
    if not Path(db_path).exists():
        return []
    store = open_store(f"sqlite:///{db_path}")
    try:
        return [str(rid) for rid in store.export()["request_id"]]
    finally:
        store.close()


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.25
) -> None:
    """Poll ``predicate`` until it is true; fail the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def metric_total(url: str, name: str) -> float:
    """Sum of a Prometheus metric's samples (all label sets) scraped from ``url/metrics``."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total


@dataclass
class LoadResult:
    """Outcome of :func:`run_load`: one entry per request sent."""

    ok: list[dict[str, Any]]
    failures: list[str]

    @property
    def ids(self) -> set[str]:
        return {r["request_id"] for r in self.ok}


def run_load(
    url: str,
    total: int,
    concurrency: int = 8,
    body: dict | None = None,
    stop: Callable[[], bool] | None = None,
    on_answer: Callable[[dict[str, Any]], None] | None = None,
) -> LoadResult:
    """Send ``total`` single-song requests from ``concurrency`` threads.

    Every 200 answer's JSON (plus ``received_at``, monotonic) goes to ``ok``; anything else
    (status, connection error) to ``failures``. ``stop()`` returning True ends the load early.
    """
    import threading

    payload = {"data": body or SONG}
    lock = threading.Lock()
    result = LoadResult([], [])
    counter = iter(range(total))

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                if next(counter, None) is None or (stop is not None and stop()):
                    return
            try:
                resp = session.post(f"{url}/predict-song", json=payload, timeout=30)
            except requests.RequestException as exc:
                with lock:
                    result.failures.append(f"{type(exc).__name__}")
                continue
            if resp.status_code == 200:
                answer = resp.json()
                answer["received_at"] = time.monotonic()
                with lock:
                    result.ok.append(answer)
                if on_answer is not None:
                    on_answer(answer)
            else:
                with lock:
                    result.failures.append(f"{resp.status_code} {resp.text[:200]}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result
