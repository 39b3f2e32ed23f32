"""Render the chart for every value set and validate every object against the Kubernetes
schemas of 1.33 and 1.35 (kubernetes-validate, strict: unknown fields are errors)."""

from __future__ import annotations

import json
import subprocess
import urllib.parse

import pytest
from chart_helpers import (
    CHART,
    CRD_KINDS,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    ROOT,
    VALUE_SETS,
    by_kind,
    helm_template,
    one,
    pod_spec,
    validate_strict,
)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_object_passes_strict_schema_validation(rendered, value_set):
    for version in KUBE_VERSIONS:
        objects = rendered[(value_set, version)]
        assert objects, f"{value_set}: nothing rendered"
        seen: set[str] = set()
        for obj in objects:
            key = json.dumps(obj, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            where = f"{value_set} {obj['kind']}/{obj['metadata']['name']} @ {version}"
            # Prometheus Operator CRDs have no schema here: listed kinds only, checked in
            # test_chart_observability.py
            if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
                assert obj["metadata"].get("namespace") == NAMESPACE, where
                continue
            try:
                schema_version = validate_strict(obj, version)
            except Exception as exc:  # ValidationError, SchemaNotFoundError: both are failures
                pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
            assert schema_version == version.rsplit(".", 1)[0], where
            assert obj["metadata"].get("namespace") == NAMESPACE, where


def test_the_chart_refuses_clusters_older_than_1_30(helm):
    result = helm_template(helm, kube_version="1.29.0")
    assert result.returncode != 0
    assert "kubeVersion" in result.stderr or "1.30" in result.stderr


def test_defaults(rendered):
    objs = rendered[("defaults", KUBE_VERSIONS[-1])]
    kinds = sorted({o["kind"] for o in objs})
    assert kinds == sorted(
        [
            "ConfigMap",
            "CronJob",
            "Deployment",
            "Job",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Secret",
            "Service",
            "ServiceAccount",
            "Pod",
            "StatefulSet",
        ]
    )
    deploy = one(objs, "Deployment", RELEASE)
    assert deploy["spec"]["replicas"] == 2
    assert not by_kind(objs, "HorizontalPodAutoscaler")
    assert not by_kind(objs, "Ingress")
    one(objs, "StatefulSet", f"{RELEASE}-mongodb")  # the default shared prediction store
    assert one(objs, "CronJob", f"{RELEASE}-train")["spec"]["suspend"] is True
    assert one(objs, "CronJob", f"{RELEASE}-monitor")["spec"]["suspend"] is False
    pvc = one(objs, "PersistentVolumeClaim", f"{RELEASE}-model-store")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]  # works on any default class
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    service = one(objs, "Service", RELEASE)
    assert service["spec"]["type"] == "ClusterIP"
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert set(ports) == {"http", "grpc"}
    assert ports["http"]["port"] == 3000 and ports["grpc"]["port"] == 50051
    assert ports["http"]["appProtocol"] == "http" and ports["grpc"]["appProtocol"]
    config = one(objs, "ConfigMap", RELEASE)["data"]
    assert config["BENTOML_HOME"] == "/home/bentoml/model-store"
    assert config["GRPC_PORT"] == "50051" and config["MAX_BATCH_ROWS"] == "10000"
    secret = one(objs, "Secret", RELEASE)["stringData"]
    assert secret["PREDICTION_STORE_URI"] == f"mongodb://{RELEASE}-mongodb:27017/reggaeton"
    assert "API_TOKEN" not in secret  # empty values are left out, never rendered as ""


def test_autoscaling_drops_replicas_and_adds_hpa_and_pdb(rendered):
    objs = rendered[("autoscaling", KUBE_VERSIONS[-1])]
    deploy = one(objs, "Deployment", RELEASE)
    assert "replicas" not in deploy["spec"]
    hpa = one(objs, "HorizontalPodAutoscaler", RELEASE)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": RELEASE,
    }
    assert hpa["spec"]["minReplicas"] == 3
    metrics = hpa["spec"]["metrics"]
    assert [m["type"] for m in metrics] == ["Resource", "Resource", "Pods"]
    assert metrics[0]["resource"]["name"] == "cpu"
    assert one(objs, "PodDisruptionBudget", RELEASE)["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize(
    ("autoscaling", "message"),
    [
        ({"targetCPUUtilizationPercentage": 0}, "needs a metric"),
        ({"minReplicas": 5, "maxReplicas": 2}, "maxReplicas must be >= "),
    ],
)
def test_inconsistent_autoscaling_is_refused(helm, tmp_path, autoscaling, message):
    result = helm_template(
        helm, {"autoscaling": {"enabled": True, **autoscaling}}, tmp_dir=tmp_path
    )
    assert result.returncode != 0 and message in result.stderr


def test_single_replica_has_no_pdb(rendered):
    objs = rendered[("minimal", KUBE_VERSIONS[-1])]
    assert not by_kind(objs, "PodDisruptionBudget")
    assert not by_kind(objs, "CronJob") and not by_kind(objs, "Role")
    assert not by_kind(objs, "ServiceAccount")
    spec = pod_spec(one(objs, "Deployment", RELEASE))
    assert spec["serviceAccountName"] == "default"
    assert spec["automountServiceAccountToken"] is False
    assert [c["name"] for c in spec["initContainers"]] == ["wait-for-model"]
    assert not by_kind(objs, "Job") and "topologySpreadConstraints" not in spec


def test_ingress_routes_http_and_grpc(rendered):
    objs = rendered[("ingress", KUBE_VERSIONS[-1])]
    http = one(objs, "Ingress", RELEASE)
    grpc = one(objs, "Ingress", f"{RELEASE}-grpc")
    backend = http["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": RELEASE, "port": {"name": "http"}}
    assert http["spec"]["ingressClassName"] == "nginx" and http["spec"]["tls"]
    grpc_backend = grpc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert grpc_backend == {"name": RELEASE, "port": {"name": "grpc"}}
    assert grpc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"


def test_mongodb_statefulset_and_uri(rendered):
    objs = rendered[("mongodb", KUBE_VERSIONS[-1])]
    sts = one(objs, "StatefulSet", f"{RELEASE}-mongodb")
    assert sts["spec"]["serviceName"] == f"{RELEASE}-mongodb-headless"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    one(objs, "Service", f"{RELEASE}-mongodb")
    uri = one(objs, "Secret", RELEASE)["stringData"]["PREDICTION_STORE_URI"]
    password = urllib.parse.quote_plus("p@ss/word")
    assert uri == f"mongodb://root:{password}@{RELEASE}-mongodb:27017/reggaeton?authSource=admin"
    creds = one(objs, "Secret", f"{RELEASE}-mongodb")["stringData"]
    assert creds["MONGO_INITDB_ROOT_PASSWORD"] == "p@ss/word"


def test_mongodb_auth_without_password_is_refused(helm):
    result = helm_template(helm, {"mongodb": {"enabled": True, "auth": {"enabled": True}}})
    assert result.returncode != 0 and "rootPassword" in result.stderr


def test_mlflow_server_and_tracking_uri(rendered):
    objs = rendered[("mlflow", KUBE_VERSIONS[-1])]
    deploy = one(objs, "Deployment", f"{RELEASE}-mlflow")
    command = deploy["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["mlflow", "server"] and "--serve-artifacts" in command
    one(objs, "PersistentVolumeClaim", f"{RELEASE}-mlflow")
    config = one(objs, "ConfigMap", RELEASE)["data"]
    assert config["MLFLOW_TRACKING_URI"] == f"http://{RELEASE}-mlflow:5000"


def test_existing_secret_and_claims_are_used_not_created(rendered):
    objs = rendered[("existing", KUBE_VERSIONS[-1])]
    assert not by_kind(objs, "Secret")
    claims = [o["metadata"]["name"] for o in by_kind(objs, "PersistentVolumeClaim")]
    assert claims == []
    for obj in objs:
        spec = pod_spec(obj)
        if spec is None or obj["metadata"]["name"].endswith("mlflow") or obj["kind"] == "Pod":
            continue
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["model-store"]["persistentVolumeClaim"]["claimName"] == "my-store"
        for container in spec["containers"]:
            refs = {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in container["env"]
                if "secretKeyRef" in (e.get("valueFrom") or {})
            }
            # every key comes from the existing Secret (the bootstrap Job reads none)
            assert refs == ({"my-env"} if obj["kind"] != "Job" else set()), obj["metadata"]
    mlflow = pod_spec(one(objs, "Deployment", f"{RELEASE}-mlflow"))
    data = [v for v in mlflow["volumes"] if v["name"] == "data"][0]
    assert data["persistentVolumeClaim"]["claimName"] == "my-mlflow"
    annotations = one(objs, "Deployment", RELEASE)["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/config" in annotations and "checksum/secret" not in annotations


def test_baked_model_needs_no_store(rendered):
    objs = rendered[("baked", KUBE_VERSIONS[-1])]
    assert not by_kind(objs, "PersistentVolumeClaim")
    assert one(objs, "ConfigMap", RELEASE)["data"]["BENTOML_HOME"] == "/home/bentoml/bento"
    service = pod_spec(one(objs, "Deployment", RELEASE))["containers"][0]
    assert {"name": "MODEL_TAG", "value": "reggaeton_clf:abc123"} in service["env"]
    monitor = pod_spec(one(objs, "CronJob", f"{RELEASE}-monitor"))["containers"][0]
    assert monitor["args"] == ["--exit-codes", "zero"]  # no --auto-retrain
    assert "model-store" not in str(monitor["volumeMounts"])


def test_jobs_run_the_jobs_image_and_serving_the_service_image(rendered):
    objs = rendered[("values-dev", KUBE_VERSIONS[-1])]
    serving = pod_spec(one(objs, "Deployment", RELEASE))
    assert serving["containers"][0]["image"] == "reggaeton_service:0.1.0"
    assert serving["initContainers"][0]["image"] == "reggaeton_service:0.1.0"
    for name in ("monitor", "train"):
        container = pod_spec(one(objs, "CronJob", f"{RELEASE}-{name}"))["containers"][0]
        assert container["image"] == "reggaeton_jobs:0.1.0"
    defaults = rendered[("defaults", KUBE_VERSIONS[-1])]
    images = {
        c["image"]
        for o in defaults
        if pod_spec(o) and o["kind"] != "StatefulSet"
        for c in pod_spec(o)["containers"]
    }
    # the chart's defaults run: serving on the lean image, the jobs on the jobs image (and
    # the in-chart MongoDB StatefulSet its pinned mongo image)
    assert images == {"reggaeton_service:0.1.0", "reggaeton_jobs:0.1.0"}
    serving = pod_spec(one(defaults, "Deployment", RELEASE))
    assert serving["containers"][0]["image"] == "reggaeton_service:0.1.0"
    assert serving["initContainers"][0]["image"] == "reggaeton_service:0.1.0"
    (bootstrap,) = by_kind(defaults, "Job")
    assert pod_spec(bootstrap)["containers"][0]["image"] == "reggaeton_jobs:0.1.0"


def test_train_schedule_can_be_enabled(rendered):
    objs = rendered[("train-schedule", KUBE_VERSIONS[-1])]
    spec = one(objs, "CronJob", f"{RELEASE}-train")["spec"]
    assert spec["suspend"] is False
    assert spec["schedule"] == "15 4 * * 1" and spec["timeZone"] == "Europe/Madrid"


def test_network_policies_cover_every_component(rendered):
    objs = rendered[("network-policy", KUBE_VERSIONS[-1])]
    policies = {o["metadata"]["name"]: o for o in by_kind(objs, "NetworkPolicy")}
    assert set(policies) == {
        f"{RELEASE}-{c}" for c in ("serving", "monitor", "train", "mongodb", "mlflow")
    }
    for component, policy in policies.items():
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert selector["app.kubernetes.io/component"] == component.rsplit("-", 1)[1]
    serving = policies[f"{RELEASE}-serving"]["spec"]
    assert serving["policyTypes"] == ["Ingress", "Egress"]
    assert {p["port"] for p in serving["ingress"][0]["ports"]} == {"http", "grpc"}
    egress_ports = {p["port"] for rule in serving["egress"] for p in rule.get("ports", [])}
    assert egress_ports == {53, 27017, 5000}  # DNS, MongoDB, MLflow; no API server
    monitor_ports = {
        p["port"]
        for rule in policies[f"{RELEASE}-monitor"]["spec"]["egress"]
        for p in rule.get("ports", [])
    }
    assert {443, 6443} <= monitor_ports
    assert "ingress" not in policies[f"{RELEASE}-train"]["spec"]  # deny all ingress


def test_config_change_rolls_the_pods(helm, tmp_path):
    def checksums(values):
        result = helm_template(
            helm, values, tmp_dir=tmp_path, extra_args=["--show-only", "templates/deployment.yaml"]
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split("template:")[1].split("labels:")[0]

    base = checksums({})
    assert checksums({"config": {"maxBatchRows": 500}}) != base
    assert checksums({"secret": {"apiToken": "t0k3n"}}) != base


def test_secret_values_never_reach_the_configmap(rendered):
    objs = rendered[("values-dev", KUBE_VERSIONS[-1])]
    config = json.dumps(one(objs, "ConfigMap", RELEASE))
    assert "dev-token-change-me" not in config
    secret = one(objs, "Secret", RELEASE)
    assert secret["stringData"]["API_TOKEN"] == "dev-token-change-me"


@pytest.mark.parametrize("values_file", ["k8s/values-dev.yaml", "k8s/values-prod.yaml"])
def test_notes_tell_how_to_call_and_retrain(helm, values_file):
    result = subprocess.run(
        [
            helm,
            "install",
            RELEASE,
            str(CHART),
            "--dry-run=client",
            "-n",
            NAMESPACE,
            "-f",
            str(ROOT / values_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"http://{RELEASE}.{NAMESPACE}.svc:3000" in notes
    assert "curl -s -X POST http://127.0.0.1:3000/predict-song" in notes
    assert f"make retrain RELEASE={RELEASE} NAMESPACE={NAMESPACE}" in notes
    assert f"helm test {RELEASE}" in notes
    if "prod" in values_file:
        assert "https://reggaeton.example.com/" in notes and "grpc.reggaeton.example.com" in notes
