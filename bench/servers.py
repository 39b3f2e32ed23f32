"""Start, wait for, and stop each benchmarked server (one at a time, loopback only)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
MLSERVER_TEMPLATES = Path(__file__).resolve().parent / "mlserver"
MLSERVER_MODEL = "reggaeton_clf"


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago (bind to port 0)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Launch:
    """How to start one side and where to send requests."""

    name: str
    argv: list[str]
    cwd: Path
    port: int
    ready_path: str
    single_path: str
    batch_path: str
    protocol: str  # "api" (our JSON body) or "v2" (Open Inference Protocol)
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    pid: int | None = None

    def worker_pids(self) -> list[int]:
        """Pids of every process the started server spawned (for profilers)."""
        return [p.pid for p in _descendants(self.pid)] if self.pid else []

    def url(self, path: str) -> str:
        """Absolute loopback URL of ``path`` on this side."""
        return f"http://{HOST}:{self.port}{path}"


def post_json(url: str, body: dict, timeout: float = 30.0) -> tuple[int, object]:
    """POST a JSON body; return (status, decoded JSON or text)."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _stop(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM our process group, then make sure every descendant we spawned is gone.

    BentoML's workers run in their own process group, so they are collected by pid first.
    """
    import psutil

    children = _descendants(proc.pid)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # our own group only (start_new_session)
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


ONE_THREAD = {"OMP_NUM_THREADS": "1"}
"""The peers get the thread budget our service gives its model (one per worker): with
HistGradientBoosting, OpenMP's default of one thread per core in every worker process
oversubscribed the 2 cores and MLServer without batching answered 10 req/s at c=32."""


@contextmanager
def running(launch: Launch, ready_timeout_s: float = 180.0) -> Iterator[Launch]:
    """Start ``launch`` in its own process group, wait until ready, stop it on exit."""
    log = open(launch.log or os.devnull, "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, **launch.env}
    proc = subprocess.Popen(
        launch.argv,
        cwd=launch.cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    launch.pid = proc.pid
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not _ready(launch.url(launch.ready_path)):
            if proc.poll() is not None:
                raise RuntimeError(f"{launch.name} exited with {proc.returncode}; see {launch.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{launch.name} not ready after {ready_timeout_s:.0f}s; see {launch.log}"
                )
            time.sleep(0.5)
        yield launch
    finally:
        _stop(proc)
        log.close()


def service_launch(
    repo: Path,
    run_dir: Path,
    bentoml_home: Path,
    store_uri: str,
    name: str = "service",
    extra_path: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Launch:
    """Our BentoML service with prediction logging to ``store_uri`` and gRPC off.

    ``extra_path`` is put on PYTHONPATH (the optional uvloop + httptools experiment);
    ``extra_env`` adds settings (the ``service+sync`` side's ``PREDICTION_LOG_DURABILITY``).
    """
    port = free_port()
    extra = {"PYTHONPATH": str(extra_path)} if extra_path else {}
    extra.update(extra_env or {})
    return Launch(
        name=name,
        cwd=repo,
        port=port,
        protocol="api",
        log=run_dir / f"{name}.log",
        argv=[
            str(repo / ".venv" / "bin" / "bentoml"),
            "serve",
            "service.service:ReggaetonService",
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        env={
            "BENTOML_HOME": str(bentoml_home),
            "PREDICTION_STORE_URI": store_uri,
            "PREDICTION_SPILL_DIR": str(run_dir / f"spill-{name}"),
            "GRPC_PORT": "0",
            "BENTOML_DO_NOT_TRACK": "true",
            **extra,
        },
        ready_path="/readyz",
        single_path="/predict-song",
        batch_path="/predict-songs",
    )


def baseline_launch(repo: Path, run_dir: Path, artifacts: Path, workers: int) -> Launch:
    """The naive Flask app under gunicorn (sync workers, like the original)."""
    port = free_port()
    return Launch(
        name="baseline",
        cwd=repo,
        port=port,
        protocol="api",
        log=run_dir / "baseline.log",
        argv=[
            str(repo / ".venv" / "bin" / "gunicorn"),
            "-w",
            str(workers),
            "-b",
            f"{HOST}:{port}",
            "bench.baseline.app:create_app()",
        ],
        env={"BASELINE_ARTIFACTS": str(artifacts), **ONE_THREAD},
        ready_path="/health",
        single_path="/predict-song",
        batch_path="/predict-songs",
    )


def mlserver_launch(
    mlserver_bin: Path, run_dir: Path, pipeline: Path, workers: int, batching: bool
) -> Launch:
    """MLServer + mlserver-sklearn over ``pipeline``, from the templates in ``bench/mlserver``."""
    variant = "batching" if batching else "no-batching"
    folder = run_dir / f"mlserver-{variant}"
    model_dir = folder / MLSERVER_MODEL
    model_dir.mkdir(parents=True, exist_ok=True)
    settings = json.loads((MLSERVER_TEMPLATES / "settings.json").read_text())
    port = free_port()
    settings.update(
        http_port=port,
        grpc_port=free_port(),
        metrics_port=free_port(),
        parallel_workers=workers,
        metrics_dir=str(folder / ".metrics"),
    )
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    model_settings = (MLSERVER_TEMPLATES / variant / "model-settings.json").read_text()
    (model_dir / "model-settings.json").write_text(model_settings)
    link = model_dir / "pipeline.joblib"
    if not link.exists():
        link.symlink_to(pipeline)
    infer = f"/v2/models/{MLSERVER_MODEL}/infer"
    return Launch(
        name=f"mlserver-{variant}",
        cwd=folder,
        port=port,
        protocol="v2",
        log=run_dir / f"mlserver-{variant}.log",
        argv=[str(mlserver_bin), "start", str(folder)],
        env=dict(ONE_THREAD),
        ready_path=f"/v2/models/{MLSERVER_MODEL}/ready",
        single_path=infer,
        batch_path=infer,
    )
