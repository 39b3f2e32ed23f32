"""A tiny fake Kubernetes API server on 127.0.0.1 that serves one CronJob.

Enough discovery for ``kubectl create job --from=cronjob/NAME --dry-run=client -o yaml``,
so the tests run the real kubectl against the rendered CronJob without a cluster.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_BATCH = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "batch/v1",
    "resources": [
        {
            "name": "cronjobs",
            "singularName": "cronjob",
            "namespaced": True,
            "kind": "CronJob",
            "verbs": ["get", "list", "create"],
            "shortNames": ["cj"],
        },
        {
            "name": "jobs",
            "singularName": "job",
            "namespaced": True,
            "kind": "Job",
            "verbs": ["get", "list", "create"],
        },
    ],
}
_GROUPS = {
    "kind": "APIGroupList",
    "apiVersion": "v1",
    "groups": [
        {
            "name": "batch",
            "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"},
        }
    ],
}
_CORE = {
    "kind": "APIVersions",
    "versions": ["v1"],
    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
}
_CORE_V1 = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": []}
_VERSION = {"major": "1", "minor": "35", "gitVersion": "v1.35.0"}


class FakeApiServer:
    """Context manager: serves ``cronjob`` (API form) read-only; records the requested paths."""

    def __init__(self, cronjob: Mapping[str, Any]) -> None:
        self.cronjob = dict(cronjob)
        self.paths: list[str] = []
        ns = self.cronjob["metadata"]["namespace"]
        self._cronjob_path = (
            f"/apis/batch/v1/namespaces/{ns}/cronjobs/{self.cronjob['metadata']['name']}"
        )
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                server.paths.append(path)
                routes = {
                    "/version": _VERSION,
                    "/api": _CORE,
                    "/api/v1": _CORE_V1,
                    "/apis": _GROUPS,
                    "/apis/batch/v1": _BATCH,
                    server._cronjob_path: server.cronjob,
                }
                body = routes.get(path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig pointing at this server (no credentials)."""
        ns = self.cronjob["metadata"]["namespace"]
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {}}],
                    "contexts": [
                        {
                            "name": "fake",
                            "context": {"cluster": "fake", "user": "fake", "namespace": ns},
                        }
                    ],
                }
            )
        )
        return path

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
