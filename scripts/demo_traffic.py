"""Traffic for the demo: songs sent over HTTP (single and batch) and gRPC, feedback, a client loop.

The songs come from the monitoring simulator's sampling helpers
(:func:`monitoring.simulate.load_songs` / :func:`~monitoring.simulate.build_traffic`), so the
demo's drift is exactly the simulator's (shift/scale, clipped to the schema bounds).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import requests

from reggaeton.schema import FEATURES, LABEL_COLUMN


@dataclass
class Sent:
    """One answered prediction: its id, the true label if known (NaN if not), its channel."""

    request_id: str
    label: float
    source: str
    model_version: str


def song_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as request bodies: schema columns only, ints as ints, missing optionals left out."""
    out = []
    for row in frame.to_dict("records"):
        song: dict[str, Any] = {}
        for f in FEATURES:
            value = row.get(f.name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            song[f.name] = int(value) if f.dtype == "int" else float(value)
        out.append(song)
    return out


def send_http_single(url: str, frame: pd.DataFrame, concurrency: int = 4) -> list[Sent]:
    """POST /predict-song once per row from ``concurrency`` threads."""
    songs, labels = song_dicts(frame), frame[LABEL_COLUMN].tolist()
    local = threading.local()

    def one(i: int) -> Sent:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        resp = session.post(f"{url}/predict-song", json={"data": songs[i]}, timeout=30)
        resp.raise_for_status()
        body = resp.json()
        return Sent(body["request_id"], labels[i], "http", body["model_version"])

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(len(songs))))


def send_http_batches(url: str, frame: pd.DataFrame, batch: int = 50) -> list[Sent]:
    """POST /predict-songs with ``batch`` songs per request."""
    songs, labels = song_dicts(frame), frame[LABEL_COLUMN].tolist()
    out: list[Sent] = []
    with requests.Session() as session:
        for lo in range(0, len(songs), batch):
            resp = session.post(
                f"{url}/predict-songs", json={"data": songs[lo : lo + batch]}, timeout=60
            )
            resp.raise_for_status()
            for j, result in enumerate(resp.json()["results"]):
                out.append(
                    Sent(result["request_id"], labels[lo + j], "batch", result["model_version"])
                )
    return out


def send_grpc(target: str, frame: pd.DataFrame, batch: int = 25) -> list[Sent]:
    """gRPC: PredictSong for the first half of the rows, PredictSongs batches for the rest."""
    import grpc

    from service.grpc import reggaeton_pb2, reggaeton_pb2_grpc

    songs, labels = song_dicts(frame), frame[LABEL_COLUMN].tolist()
    half = len(songs) // 2
    out: list[Sent] = []
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = reggaeton_pb2_grpc.ReggaetonServiceStub(channel)
        for i in range(half):
            reply = stub.PredictSong(
                reggaeton_pb2.PredictSongRequest(data=reggaeton_pb2.Song(**songs[i])), timeout=30
            )
            out.append(Sent(reply.request_id, labels[i], "grpc", reply.model_version))
        for lo in range(half, len(songs), batch):
            chunk = [reggaeton_pb2.Song(**s) for s in songs[lo : lo + batch]]
            reply = stub.PredictSongs(reggaeton_pb2.PredictSongsRequest(data=chunk), timeout=60)
            for j, result in enumerate(reply.results):
                out.append(Sent(result.request_id, labels[lo + j], "grpc", result.model_version))
    return out


def send_feedback(
    url: str,
    sent: Sequence[Sent],
    fraction: float,
    seed: int,
    token: str | None = None,
    concurrency: int = 4,
) -> int:
    """POST /feedback with the true label for ``fraction`` of the labelled predictions."""
    rng = np.random.default_rng(seed)
    chosen = [s for s in sent if not math.isnan(s.label) and rng.random() < fraction]
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def one(s: Sent) -> bool:
        resp = requests.post(
            f"{url}/feedback",
            json={"request_id": s.request_id, "label": int(s.label)},
            headers=headers,
            timeout=30,
        )
        return resp.status_code == 200

    with ThreadPoolExecutor(concurrency) as pool:
        return sum(pool.map(one, chosen))


@dataclass
class ClientLoop:
    """Single-song requests in a loop from a few threads, until :meth:`stop`.

    Counts answers per model version and every failure (non-200 or connection error).
    """

    url: str
    song: dict[str, Any]
    threads: int = 2
    versions: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ClientLoop:
        for _ in range(self.threads):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                resp = session.post(
                    f"{self.url}/predict-song", json={"data": self.song}, timeout=30
                )
                outcome = resp.json()["model_version"] if resp.status_code == 200 else None
                error = None if outcome else f"HTTP {resp.status_code}: {resp.text[:200]}"
            except (requests.RequestException, ValueError) as exc:
                outcome, error = None, f"{type(exc).__name__}: {exc}"
            with self._lock:
                if outcome:
                    self.versions[outcome] += 1
                else:
                    self.failures.append(error or "unknown")
            time.sleep(0.01)

    def stop(self) -> dict[str, Any]:
        """Stop the threads; returns ``{"requests", "failed", "versions", "errors"}``."""
        self._stop.set()
        for thread in self._workers:
            thread.join(60)
        with self._lock:
            return {
                "requests": sum(self.versions.values()) + len(self.failures),
                "failed": len(self.failures),
                "versions": dict(self.versions),
                "errors": self.failures[:5],
            }
