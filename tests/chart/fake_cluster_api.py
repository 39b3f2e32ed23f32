"""A fake Kubernetes API server over TLS, for pods that automount a service-account token.

Serves the rendered serving Deployment (GET, and PATCH of a container's env as the train Job's
rollout step sends it), the rendered CronJobs (GET), Jobs (list, create) and Leases (GET, POST,
PUT: the train Job's training lease), and nothing else (404, recorded). It writes ``token``,
``ca.crt`` and ``namespace`` into a directory that the pod runner mounts where the kubelet
would, so ``kubernetes.config.load_incluster_config()`` in the container talks to it exactly as
to a real API server.
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import secrets
import ssl
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from podrunner import ApiAccess


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A CA-flagged self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kube-apiserver")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class FakeClusterApi:
    """Context manager: a TLS API server on 127.0.0.1 with the given objects.

    Attributes:
        requests: ``(method, path)`` of every request, in order.
        patches: Bodies of the PATCH requests.
        leases: The Leases (coordination.k8s.io/v1) by name: created by POST, replaced by PUT
            with the stored ``resourceVersion`` (else 409), as the training lease uses them.
        revisions: The patched object after each PATCH (a Deployment's rollout history).
        access: What the pod runner mounts (address and the service-account directory).
    """

    def __init__(
        self, objects: Sequence[Mapping[str, Any]], namespace: str, directory: Path
    ) -> None:
        self.namespace = namespace
        self.objects: dict[str, dict[str, Any]] = {}
        for obj in objects:
            if obj["kind"] in ("Deployment", "CronJob"):
                group = "apps" if obj["kind"] == "Deployment" else "batch"
                path = (
                    f"/apis/{group}/v1/namespaces/{namespace}/{obj['kind'].lower()}s/"
                    f"{obj['metadata']['name']}"
                )
                self.objects[path] = copy.deepcopy(dict(obj))
        self.jobs: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.patches: list[dict[str, Any]] = []
        self.leases: dict[str, dict[str, Any]] = {}
        self._lease_lock = threading.Lock()
        self._lease_version = 0
        self.revisions: list[dict[str, Any]] = []
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = _self_signed(directory)
        self.token = secrets.token_hex(16)
        (directory / "token").write_text(self.token)
        (directory / "namespace").write_text(namespace)
        for path in directory.iterdir():
            path.chmod(0o644)  # read by the pod's non-root uid
        directory.chmod(0o755)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.access = ApiAccess("127.0.0.1", self._server.server_address[1], directory)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: Mapping[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                api.requests.append((method, path))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
                if scheme.lower() != "bearer" or token != api.token:  # the scheme is caseless
                    return self._send(401, {"kind": "Status", "code": 401})
                jobs = f"/apis/batch/v1/namespaces/{api.namespace}/jobs"
                leases = f"/apis/coordination.k8s.io/v1/namespaces/{api.namespace}/leases"
                if path == leases or path.startswith(leases + "/"):
                    return self._send(*api.lease_request(method, path[len(leases) + 1 :], body))
                if method == "GET" and path in api.objects:
                    return self._send(200, api.objects[path])
                if method == "PATCH" and path in api.objects:
                    api.patches.append(body)
                    api.apply_env_patch(api.objects[path], body)
                    api.revisions.append(copy.deepcopy(api.objects[path]))  # rollout history
                    return self._send(200, api.objects[path])
                if method == "GET" and path == jobs:
                    return self._send(
                        200,
                        {
                            "kind": "JobList",
                            "apiVersion": "batch/v1",
                            "metadata": {},
                            "items": api.jobs,
                        },
                    )
                if method == "POST" and path == jobs:
                    api.jobs.append(body)
                    return self._send(201, body)
                return self._send(404, {"kind": "Status", "code": 404})

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                self._handle("GET")

            def do_PATCH(self) -> None:  # noqa: N802
                self._handle("PATCH")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def lease_request(self, method: str, name: str, body: Any) -> tuple[int, dict[str, Any]]:
        """Serve a Lease request as the API server does: GET (404 when missing), POST (409
        when it exists), PUT (404 when missing, 409 on a stale ``resourceVersion``)."""
        with self._lease_lock:
            stored = self.leases.get(name or (body or {}).get("metadata", {}).get("name", ""))
            if method == "GET" and name:
                return (200, stored) if stored else (404, {"kind": "Status", "code": 404})
            if method == "POST" and not name:
                if stored:
                    return 409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"}
            elif method == "PUT" and name:
                if not stored:
                    return 404, {"kind": "Status", "code": 404}
                if body["metadata"].get("resourceVersion") != stored["metadata"]["resourceVersion"]:
                    return 409, {"kind": "Status", "code": 409, "reason": "Conflict"}
            else:
                return 405, {"kind": "Status", "code": 405}
            self._lease_version += 1
            lease = copy.deepcopy(body)
            lease["metadata"]["resourceVersion"] = str(self._lease_version)
            lease["metadata"]["namespace"] = self.namespace
            self.leases[lease["metadata"]["name"]] = lease
            return (201 if method == "POST" else 200), lease

    @staticmethod
    def apply_env_patch(obj: dict[str, Any], patch: Mapping[str, Any]) -> None:
        """Apply a strategic-merge patch of container env entries (merged by name)."""
        containers = patch["spec"]["template"]["spec"]["containers"]
        for change in containers:
            target = next(
                c
                for c in obj["spec"]["template"]["spec"]["containers"]
                if c["name"] == change["name"]
            )
            env = {e["name"]: e for e in target.get("env") or []}
            env.update({e["name"]: e for e in change.get("env") or []})
            target["env"] = list(env.values())

    def __enter__(self) -> FakeClusterApi:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
