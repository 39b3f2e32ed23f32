"""A fake API server for ``helm template --dry-run=server``: the chart's ``lookup`` calls.

Holds one Secret (``env`` in ``mlops``) and any other live objects by API path, with the
discovery documents helm reads first. Anything else answers 404 (a lookup then finds nothing).
"""

from __future__ import annotations

from typing import Any


class LookupApi:
    """A fake API server holding one Secret, with the discovery ``helm template
    --dry-run=server`` needs for the chart's lookups (a Deployment lookup answers 404)."""

    def __init__(
        self,
        data: dict[str, str],
        kinds: set[tuple[str, str]],
        objects: dict[str, Any] | None = None,
    ) -> None:
        import base64
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "env", "namespace": "mlops"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        lists: dict[str, list[dict[str, Any]]] = {}
        for api_version, kind in kinds | {("v1", "Secret"), ("apps/v1", "Deployment")}:
            lower = kind.lower()
            plural = (
                lower[:-1] + "ies"
                if lower.endswith("y")
                else lower + "es"
                if lower.endswith("s")
                else lower + "s"
            )
            lists.setdefault(api_version, []).append(
                {
                    "name": plural,
                    "singularName": lower,
                    "namespaced": True,
                    "kind": kind,
                    "verbs": ["get"],
                }
            )
        groups = [
            {
                "name": gv.split("/")[0],
                "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]},
            }
            for gv in sorted(lists)
            if "/" in gv
        ]
        routes: dict[str, Any] = {
            "/version": {"major": "1", "minor": "35", "gitVersion": "v1.35.0"},
            "/api": {"kind": "APIVersions", "versions": ["v1"]},
            "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups},
            "/api/v1/namespaces/mlops/secrets/env": secret,
            **(objects or {}),  # more live objects by API path
        }
        for gv, resources in lists.items():
            routes["/api/v1" if gv == "v1" else f"/apis/{gv}"] = {
                "kind": "APIResourceList",
                "groupVersion": gv,
                "resources": resources,
            }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                body = routes.get(self.path.split("?", 1)[0])
                payload = json.dumps(body).encode()
                self.send_response(404 if body is None else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def kubeconfig(self, path) -> str:
        import json

        server = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "f",
                    "clusters": [{"name": "f", "cluster": {"server": server}}],
                    "users": [{"name": "f", "user": {}}],
                    "contexts": [
                        {
                            "name": "f",
                            "context": {"cluster": "f", "user": "f", "namespace": "mlops"},
                        }
                    ],
                }
            )
        )
        return str(path)

    def __enter__(self) -> LookupApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
