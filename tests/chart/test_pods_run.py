"""The chart's rendered pods, started as containers from the images ``make image`` builds.

For the defaults, k8s/values-dev.yaml and k8s/values-prod.yaml, with external services
replaced through values only (MongoDB by an SQLite file on a shared claim, MLflow by the pods'
local fallback, SMTP by a local server, the Kubernetes API by a TLS fake): the serving
Deployment (init container included) becomes ready on its own probes and answers the original
curl body, a 1,000-row batch and gRPC health; the ``helm test`` pod passes; the monitor
CronJob's pod exits with the documented code and writes its report; the train CronJob's pod
(the Job ``make retrain`` creates) trains, gates, promotes and rolls the Deployment; the
serving container then serves the new version.
"""

from __future__ import annotations

import csv
import json
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller
from chart_helpers import (
    NAMESPACE,
    ROOT,
    helm_template,
    job_from_cronjob_like_kubectl,
    load_objects,
    one,
    pod_spec,
)
from container_images import build_images
from fake_cluster_api import FakeClusterApi
from grpc_health.v1 import health_pb2, health_pb2_grpc
from podrunner import PodRunner

from monitoring.job import build_parser, exit_code
from scripts.demo_steps import EXAMPLE_SONG

pytestmark = [pytest.mark.container, pytest.mark.integration, pytest.mark.slow]

VALUE_FILES = {
    "defaults": (),
    "values-dev": (ROOT / "k8s" / "values-dev.yaml",),
    "values-prod": (ROOT / "k8s" / "values-prod.yaml",),
}
PREDLOG = "/home/bentoml/predlog"
SONG = EXAMPLE_SONG
"""The original project's curl body."""


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def local_values(http: int, grpc_port: int, smtp: int) -> dict[str, Any]:
    """Values that swap external services for local ones (the render stays the chart's)."""
    claim = {"name": "predlog", "persistentVolumeClaim": {"claimName": "predlog"}}
    return {
        "config": {
            "httpPort": http,
            "grpcPort": grpc_port,
            "mlflowTrackingUri": "",
            "alerts": {"smtpHost": "127.0.0.1", "smtpPort": smtp, "smtpStarttls": False},
        },
        "service": {"port": http, "grpcPort": grpc_port},
        "mongodb": {"enabled": False},
        "mlflow": {"enabled": False},
        "secret": {"predictionStoreUri": f"sqlite:///{PREDLOG}/predictions.db"},
        "volumes": [claim],
        "volumeMounts": [{"name": "predlog", "mountPath": PREDLOG}],
    }


def provided_secrets(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The existingSecret an operator creates before installing (values-prod's comment)."""
    rendered = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    names = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in pod_spec(deployment)["containers"][0]["env"]
        if "secretKeyRef" in (e.get("valueFrom") or {})
    }
    return [
        {
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {
                "PREDICTION_STORE_URI": f"sqlite:///{PREDLOG}/predictions.db",
                "API_TOKEN": secrets.token_hex(16),
            },
        }
        for name in sorted(names - rendered)
    ]


def post(url: str, body: Any, timeout: float = 60) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        assert response.status == 200
        return json.loads(response.read())


def catalogue_rows(count: int) -> list[dict[str, Any]]:
    """``count`` songs of the training data (what a scoring client would send)."""
    with (ROOT / "data" / "data_todotipo.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    songs = []
    for row in rows:
        row.pop("", None)
        if "NA" not in row.values():
            songs.append({k: float(v) if "." in v or "e" in v else int(v) for k, v in row.items()})
    assert len(songs) >= count
    return songs[:count]


def served_version(http: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/model", timeout=10) as response:
        return json.loads(response.read())["model_version"]


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The service and jobs images, built like ``make image`` (skips when no daemon answers)."""
    return build_images(tmp_path_factory.mktemp("bento_build"))


@pytest.mark.parametrize("value_set", sorted(VALUE_FILES))
def test_rendered_pods_run_as_containers(
    value_set: str, images: dict[str, str], helm: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    http, grpc_port, smtp = free_ports(3)
    result = helm_template(
        helm, local_values(http, grpc_port, smtp), VALUE_FILES[value_set], tmp_dir=tmp_path
    )
    assert result.returncode == 0, result.stderr
    objects = load_objects(result.stdout)
    objects += provided_secrets(objects)
    deployment = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "reggaeton"
    )
    for image in {
        c["image"]
        for o in objects
        if pod_spec(o) and o["kind"] != "StatefulSet"
        for c in pod_spec(o)["containers"] + (pod_spec(o).get("initContainers") or [])
    }:
        source = images["jobs" if "reggaeton_jobs" in image else "service"]
        PodRunner.tag(source, image)  # as `docker push` + pull through a registry would
    numbers: dict[str, Any] = {"value_set": value_set, "images": images["sizes"]}
    smtp_server = Controller(_Sink(), hostname="127.0.0.1", port=smtp)
    smtp_server.start()
    with FakeClusterApi(objects, NAMESPACE, tmp_path / "serviceaccount") as api:
        runner = PodRunner(objects, f"rgt-{value_set}", NAMESPACE, api.access)
        try:
            _walk(runner, api, objects, deployment, http, grpc_port, numbers)
        finally:
            with capsys.disabled():
                print(f"\ncontainer run {json.dumps(numbers, default=str)}")
            runner.cleanup()
            smtp_server.stop()


class _Sink:
    """aiosmtpd handler that accepts and keeps every message."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


def _walk(
    runner: PodRunner,
    api: FakeClusterApi,
    objects: list[dict[str, Any]],
    deployment: dict[str, Any],
    http: int,
    grpc_port: int,
    numbers: dict[str, Any],
) -> None:
    spec = pod_spec(deployment)
    (service,) = spec["containers"]
    base = f"http://127.0.0.1:{http}"

    # The bootstrap Job trains a first version into the empty store, once.
    start = time.monotonic()
    (bootstrap,) = [o for o in objects if o["kind"] == "Job"]
    code, logs = runner.run_to_completion("bootstrap", pod_spec(bootstrap))
    assert code == 0 and "gate: PROMOTED" in logs, logs
    numbers["bootstrap_s"] = round(time.monotonic() - start, 1)

    # The serving pod: its init container finds the version, then the probes pass.
    start = time.monotonic()
    pod = runner.start("serving", spec)
    numbers["init_s"] = round(time.monotonic() - start, 1)
    runner.probe(pod, service, "startupProbe")
    runner.probe(pod, service, "readinessProbe")
    runner.probe(pod, service, "livenessProbe")
    numbers["ready_s"] = round(time.monotonic() - start, 1)
    first = served_version(http)
    assert first.startswith("reggaeton_clf:"), first

    # The original curl body, from inside the serving container.
    cname = pod.containers["service"]
    inside = runner.docker(
        "exec",
        cname,
        "python",
        "-c",
        "import sys, urllib.request; r = urllib.request.urlopen("
        "urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), "
        "headers={'Content-Type': 'application/json'}), timeout=30); "
        "print(r.status, r.read().decode())",
        f"{base}/predict-song",
        json.dumps({"data": SONG}),
    ).stdout.strip()
    status, _, body = inside.partition(" ")
    answer = json.loads(body)
    assert status == "200" and answer["label"] == "reggaeton", inside
    assert answer["model_version"] == first
    numbers["curl_inside"] = inside

    batch = post(f"{base}/predict-songs", {"data": catalogue_rows(1000)})
    assert batch["count"] == 1000 and len(batch["results"]) == 1000
    numbers["batch_rows"] = batch["count"]
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    numbers["grpc_health"] = "SERVING"

    # `helm test`: the test pod reaches the Service by its DNS name.
    test_pod = next(o for o in objects if o["kind"] == "Pod")
    started = time.monotonic()
    code, logs = runner.run_to_completion("helm-test", test_pod["spec"], timeout=120)
    numbers["helm_test_s"] = round(time.monotonic() - started, 1)
    assert code == 0 and "OK: the example song is reggaeton" in logs, logs
    numbers["helm_test"] = logs.strip().splitlines()[-1]

    # The monitor CronJob's pod over the logged traffic: the documented exit code, a report.
    time.sleep(1.5)  # the prediction log's flush interval is 0.2 s; leave a margin
    monitor = one(objects, "CronJob", "reggaeton-monitor")
    monitor_spec = pod_spec(monitor)
    started = time.monotonic()
    code, logs = runner.run_to_completion("monitor", monitor_spec)
    numbers["monitor_s"] = round(time.monotonic() - started, 1)
    reports = runner.docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        "-v",
        "rgt-" + numbers["value_set"] + "-monitor-scratch-reports:/r",
        runner.image_of(monitor_spec),
        "-c",
        "ls /r; cat /r/*.json",
    ).stdout
    names, _, summary_text = reports.partition("{")
    summary = json.loads("{" + summary_text)
    assert any(n.endswith(".html") for n in names.split()), names
    policy = build_parser().parse_args(monitor_spec["containers"][0]["args"]).exit_codes
    assert code == exit_code(summary["status"], policy), (code, summary["status"], policy, logs)
    assert summary["window"]["rows"] >= 1001, summary["window"]
    numbers["monitor"] = {
        "exit_code": code,
        "status": summary["status"],
        "rows": summary["window"]["rows"],
        "reasons": summary["reasons"],
        "retrain_jobs_created": len(api.jobs),
    }

    # The train CronJob's pod, as the Job `make retrain` creates: train, gate, promote, roll.
    train = job_from_cronjob_like_kubectl(one(objects, "CronJob", "reggaeton-train"), "retrain")
    started = time.monotonic()
    code, logs = runner.run_to_completion("train", train["spec"]["template"]["spec"])
    numbers["train_s"] = round(time.monotonic() - started, 1)
    assert code == 0, logs
    assert "gate: PROMOTED" in logs, logs
    # The whole command ran under the training lease: created (GET 404, POST), released.
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
    assert api.requests.count(("POST", leases)) == 1, api.requests
    lease = api.leases["reggaeton-train"]["spec"]
    assert not lease.get("holderIdentity") and lease["leaseDurationSeconds"] == 1, lease
    numbers["train_lease"] = lease
    # First install: the unpinned Deployment is pinned to the served version, then set to the
    # new one (two revisions), so that `rollout undo` has a version to return to.
    tags = [p["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] for p in api.patches]
    pinned, rolled = api.revisions
    assert tags[0] == first and tags[-1] != first and len(tags) == 2, api.patches
    new = tags[-1]
    numbers["train"] = {"promoted": new, "rollout_patches": tags}

    # No watcher: the running pod keeps its version until the rollout replaces it.
    assert served_version(http) == first
    numbers["served_by_the_old_pod_after_promotion"] = served_version(http)

    # The rollout: a pod of the patched template (one host network: old pod stops first).
    runner.stop(pod)
    pod = runner.start("serving-new", pod_spec(rolled))
    (service,) = pod_spec(rolled)["containers"]
    runner.probe(pod, service, "startupProbe")
    runner.probe(pod, service, "readinessProbe")
    answer = post(f"{base}/predict-song", {"data": SONG})
    assert answer["model_version"] == new
    numbers["served_after_rollout"] = answer["model_version"]

    # `make rollback` (`kubectl rollout undo`): the previous revision, the pinned one.
    runner.stop(pod)
    pod = runner.start("serving-undo", pod_spec(pinned))
    (service,) = pod_spec(pinned)["containers"]
    runner.probe(pod, service, "startupProbe")
    runner.probe(pod, service, "readinessProbe")
    assert served_version(http) == first
    numbers["served_after_rollback"] = served_version(http)
    runner.stop(pod)
