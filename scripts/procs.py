"""Start, watch and stop the processes the demo and the end-to-end tests need.

Every process is started in its own session (process group) so that stopping it also stops
the workers ``bentoml serve`` forks; nothing is ever killed by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
SERVICE_TARGET = "service.service:ReggaetonService"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (bind to port 0 and release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python() -> str:
    """The interpreter running us (the project's venv when started through make)."""
    return sys.executable


def bentoml_exe() -> str:
    """The ``bentoml`` console script next to the interpreter, else ``python -m bentoml``."""
    candidate = Path(sys.executable).with_name("bentoml")
    return str(candidate) if candidate.exists() else ""


@dataclass
class ServiceProcess:
    """A ``bentoml serve`` process on free loopback ports.

    Args:
        env: Extra environment (BENTOML_HOME, PREDICTION_STORE_URI, ...) on top of os.environ.
        log_path: File receiving the server's stdout and stderr.
        http_port: HTTP port (0 = pick a free one).
        grpc_port: gRPC port (0 = pick a free one; ``None`` disables gRPC).
        workers: ``--workers`` for bentoml serve (None keeps the service's own setting).
    """

    env: Mapping[str, str]
    log_path: Path
    http_port: int = 0
    grpc_port: int | None = 0
    workers: int | None = None
    proc: subprocess.Popen | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.http_port = self.http_port or free_port()
        if self.grpc_port is not None:
            self.grpc_port = self.grpc_port or free_port()

    @property
    def url(self) -> str:
        """Base HTTP URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        """``host:port`` for a gRPC channel."""
        return f"127.0.0.1:{self.grpc_port}"

    def command(self) -> list[str]:
        """The command line that starts the service."""
        exe = bentoml_exe()
        cmd = [exe] if exe else [python(), "-m", "bentoml"]
        cmd += ["serve", SERVICE_TARGET, "--host", "127.0.0.1", "--port", str(self.http_port)]
        if self.workers:
            cmd += ["--workers", str(self.workers)]
        return cmd

    def start(self) -> ServiceProcess:
        """Start the server (returns at once; see :meth:`wait_ready`)."""
        env = dict(os.environ)
        env.update(self.env)
        env["GRPC_PORT"] = str(self.grpc_port if self.grpc_port is not None else 0)
        env.setdefault("BENTOML_DO_NOT_TRACK", "true")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child until it exits
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        """True while the main process runs."""
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until ``/readyz`` answers 200.

        Raises:
            RuntimeError: if the process exits or the timeout passes (with the log's tail).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"service exited early:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"service not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_text(self) -> str:
        """Everything the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the server printed."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def tree(self) -> list[int]:
        """Pids of the server and every descendant (BentoML workers run in their own sessions,
        so the process group alone does not reach them)."""
        import psutil

        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root.pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the server and all its workers at once (no flush, no cleanup: a crash)."""
        pids = self.tree()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)
        self._wait_gone(pids)
        self._reap_group()

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop: SIGTERM to the group, SIGKILL after ``timeout`` seconds."""
        if self.proc is None:
            return
        pids = self.tree()
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._reap_group()
        if not self._wait_gone(pids, timeout=10):  # workers the server did not take down
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._wait_gone(pids)

    @staticmethod
    def _wait_gone(pids: list[int], timeout: float = 15.0) -> bool:
        """Wait until none of ``pids`` is alive; True when they all exited."""

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = [p for p in pids if _running(p)]
            if not alive:
                return True
            time.sleep(0.2)
        return False

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def _reap_group(self, timeout: float = 15.0) -> None:
        """Wait until no process of the group is left (workers may outlive the arbiter)."""
        if self.proc is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.2)
        self._signal_group(signal.SIGKILL)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _running(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run_module(
    module: str,
    args: Sequence[str],
    env: Mapping[str, str],
    log_path: Path | None = None,
    timeout: float = 600.0,
) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` to completion in the repo root with extra ``env``.

    The output is captured (and appended to ``log_path`` when given).
    """
    full_env = dict(os.environ)
    full_env.update(env)
    full_env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    result = subprocess.run(
        [python(), "-m", module, *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as fh:
            fh.write(f"$ python -m {module} {' '.join(args)}  (exit {result.returncode})\n")
            fh.write(result.stdout)
            fh.write(result.stderr)
    return result
