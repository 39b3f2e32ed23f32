"""Start and stop a real ``bentoml serve`` process for the service integration tests."""

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-test-token"
"""API_TOKEN of the shared test server."""
INPROCESS_TOKEN = "t0k"
"""API_TOKEN of the in-process runtime (the ``runtime`` fixture)."""
INPROCESS_BATCH_ROWS = 306
"""MAX_BATCH_ROWS of the in-process runtime: above ``service.routes.OFFLOAD_ROWS``."""
SONG = {
    "popularity": 60,
    "danceability": 0.607,
    "energy": 0.875,
    "key": 0,
    "loudness": -4.434,
    "mode": 1,
    "speechiness": 0.0605,
    "acousticness": 0.00114,
    "instrumentalness": 0.00765,
    "liveness": 0.467,
    "valence": 0.457,
    "tempo": 131.058,
    "duration": 264520,
    "time_signature": 4,
    "id_new": 2301,
}
"""The original client's body ``{"data": SONG}`` (first song of data/data_test.csv)."""


def free_port() -> int:
    """A port nobody listens on right now (127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running service: its URL, gRPC port, process and log file."""

    url: str
    grpc_port: int
    proc: subprocess.Popen
    log: Path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        """Send one HTTP request; returns (status, decoded JSON or text)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, content = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, content = err.code, err.read()
        try:
            return status, json.loads(content)
        except ValueError:
            return status, content.decode(errors="replace")

    def logs(self) -> str:
        """The server's combined output so far (for assertion messages)."""
        return self.log.read_text(errors="replace")[-4000:]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns a truthy value (not a timing assertion: the
    deadline only bounds how long a broken build can hang)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def serve(
    home: Path, store_uri: str, workdir: Path, wait_ready: bool = True, **env: str
) -> Iterator[Server]:
    """Run ``bentoml serve service.service:ReggaetonService`` on free ports until exit
    (waiting for ``/readyz`` unless ``wait_ready`` is False)."""
    port, grpc_port = free_port(), free_port()
    log = workdir / f"serve-{port}.log"
    environ = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "PREDICTION_STORE_URI": store_uri,
        "PREDICTION_SPILL_DIR": str(workdir / "spill"),
        "GRPC_PORT": str(grpc_port),
        "BENTOML_DO_NOT_TRACK": "true",
        "MODEL_WATCH_INTERVAL": "0.5",
        **env,
    }
    for name in ("MODEL_TAG", "API_TOKEN"):  # only what the test asks for
        if name not in env:
            environ.pop(name, None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(REPO / ".venv" / "bin" / "bentoml"),
                "serve",
                "service.service:ReggaetonService",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", grpc_port, proc, log)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"bentoml serve exited:\n{server.logs()}")
            try:
                return server.request("GET", "/readyz", timeout=2)[0] == 200
            except OSError:
                return False

        if wait_ready:
            wait_until(ready, 120, "the service to become ready")
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def save_version(home: Path, n_estimators: int, seed: int = 0) -> str:
    """Train a small GBM pipeline (the served structure) on the seed data; return its tag."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from reggaeton.registry import Registry
    from reggaeton.schema import MODEL_FEATURES
    from reggaeton.servable import export

    pos = pd.read_csv(REPO / "data" / "data_reggaeton.csv").assign(label=1)
    neg = pd.read_csv(REPO / "data" / "data_todotipo.csv").assign(label=0)
    frame = pd.concat([pos, neg]).dropna(subset=list(MODEL_FEATURES))
    scaled = [MODEL_FEATURES.index("loudness"), MODEL_FEATURES.index("tempo")]
    pipeline = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer([("scale", StandardScaler(), scaled)], remainder="passthrough"),
            ),
            ("model", GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)),
        ]
    ).fit(frame[list(MODEL_FEATURES)].to_numpy(np.float64), frame["label"].to_numpy())
    version = Registry(home).save(
        pipeline,
        {
            "threshold": 0.5,
            "features": list(MODEL_FEATURES),
            "metrics": {"f1": 0.0},
            "estimator": "test",
        },
        servable=export(pipeline),
    )
    return version.tag
