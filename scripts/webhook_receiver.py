"""A tiny local HTTP receiver for alert webhooks (demo and tests).

It accepts ``POST`` requests on any path, keeps every JSON body it receives in memory and
answers ``200 {"ok": true}``. ``GET /received`` returns what it has received so far.

Use it in-process::

    with WebhookReceiver() as receiver:
        url = receiver.url            # e.g. http://127.0.0.1:41234/hook
        ...                           # point MONITOR_WEBHOOK_URL (or similar) at it
        receiver.wait_for(1, timeout=10)
        print(receiver.received)

or from a shell: ``python -m scripts.webhook_receiver --port 8099`` (prints each body).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    """One received request."""

    path: str
    headers: dict[str, str]
    body: Any
    received_at: float = field(default_factory=time.time)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (port 0 = a free port) that records POSTed bodies.

    Args:
        port: TCP port; 0 picks a free one.
        path: Path advertised in :attr:`url` (any path is accepted).
        echo: Print each body to stdout as it arrives.
    """

    def __init__(self, port: int = 0, path: str = "/hook", echo: bool = False) -> None:
        self.received: list[Delivery] = []
        self._lock = threading.Condition()
        self._echo = echo
        self._path = path
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The URL to configure as the webhook."""
        return f"http://127.0.0.1:{self.port}{self._path}"

    def start(self) -> WebhookReceiver:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="webhook-receiver"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` deliveries arrived or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def bodies(self) -> list[Any]:
        """The received bodies, oldest first."""
        with self._lock:
            return [d.body for d in self.received]

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self.received.append(delivery)
            self._lock.notify_all()
        if self._echo:
            print(json.dumps({"path": delivery.path, "body": delivery.body}), flush=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                receiver._record(Delivery(self.path, dict(self.headers.items()), body))
                self._reply(200, {"ok": True})

            def do_GET(self) -> None:  # noqa: N802
                self._reply(200, {"received": receiver.bodies()})

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                return

        return Handler


def main(argv: list[str] | None = None) -> None:
    """CLI: serve until Ctrl-C, printing every received body."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args(argv)
    receiver = WebhookReceiver(port=args.port, echo=True).start()
    print(f"webhook receiver listening on {receiver.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
