"""Hostile HTTP/1.1 clients on raw sockets, and the RSS of the server's worker processes.

Raw sockets rather than an HTTP library: the clients keep their connection alive across
answers (as a browser, ``hey`` or a load balancer does), which is what exposed the leak fixed by
``service.bodyguard``, and they must be able to send a body the server never reads.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil


@dataclass
class Tally:
    """What the clients saw: answers by status line, connections lost, bodies of odd answers."""

    statuses: collections.Counter = field(default_factory=collections.Counter)
    errors: int = 0
    samples: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, body: bytes) -> None:
        with self.lock:
            self.statuses[status] += 1
            if len(self.samples) < 5 and b'"error"' not in body:
                self.samples.append(body[:200])


def _read_response(reader) -> tuple[int, bool, bytes]:
    line = reader.readline()
    if not line:
        raise OSError("connection closed before the status line")
    status, length, close = int(line.split()[1]), 0, False
    while (header := reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"connection":
            close = b"close" in value.lower()
    return status, close, reader.read(length)


def keep_alive_client(
    port: int, method: str, path: str, body: bytes, stop: threading.Event, tally: Tally
) -> None:
    """Send ``method path`` with ``body`` again and again on one keep-alive connection
    (reconnecting when the server closes it) until ``stop`` is set."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = reader = None
    while not stop.is_set():
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                reader = sock.makefile("rb")
            sock.sendall(head + body)
            status, close, answer = _read_response(reader)
            tally.add(status, answer)
            if close:
                sock.close()
                sock = None
        except OSError:
            with tally.lock:
                tally.errors += 1
            if sock is not None:
                sock.close()
            sock = None
    if sock is not None:
        sock.close()


def worker_processes(server_pid: int) -> list[psutil.Process]:
    """The ``bentoml serve`` worker processes (the ones that answer HTTP)."""
    children = psutil.Process(server_pid).children(recursive=True)
    return [p for p in children if "_bentoml_impl.worker.service" in " ".join(p.cmdline())]


def run_load(
    clients: list[Callable[[threading.Event], None]],
    seconds: float,
    workers: list[psutil.Process],
    cap: Callable[[int, int], bool],
) -> dict[int, int]:
    """Run every client for ``seconds``; return each worker's highest RSS seen (bytes).

    The load stops early once ``cap(pid, rss)`` says a worker is past the bound (the test then
    fails without pushing the machine into swap).
    """
    stop = threading.Event()
    threads = [threading.Thread(target=c, args=(stop,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    peak = {p.pid: p.memory_info().rss for p in workers}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        time.sleep(1)
        for proc in workers:
            peak[proc.pid] = max(peak[proc.pid], proc.memory_info().rss)
            if cap(proc.pid, peak[proc.pid]):
                stop.set()
    stop.set()
    for thread in threads:
        thread.join(60)
    return peak
