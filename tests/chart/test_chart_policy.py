"""Policy assertions over every rendered value set: resources, probes, hardened security
contexts, pinned images, CronJob limits, least-privilege RBAC, selectors and mounts."""

from __future__ import annotations

import pytest
from chart_helpers import (
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    WORKLOAD_KINDS,
    all_containers,
    by_kind,
    one,
    pod_metadata,
    pod_spec,
)

APP_COMPONENTS = {"serving", "monitor", "train", "test"}


def _objects(rendered, value_set):
    return rendered[(value_set, KUBE_VERSIONS[-1])]


def _workloads(objects):
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_container_is_hardened_sized_and_pinned(rendered, value_set):
    for obj in _workloads(_objects(rendered, value_set)):
        spec = pod_spec(obj)
        name = f"{value_set} {obj['kind']}/{obj['metadata']['name']}"
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] in (True, False), name
        mounts_needed = set()
        for c in all_containers(spec):
            where = f"{name} container {c['name']}"
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(part) or {}), f"{where}: {part}"
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert not sc["capabilities"].get("add"), where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert sc.get("privileged") in (None, False), where
            image = c["image"]
            repo, _, tag = image.rpartition(":")
            assert "@sha256:" in image or (repo and "/" not in tag and tag), f"{where}: {image}"
            assert tag.lower() != "latest", f"{where}: {image}"
            component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
            if component in APP_COMPONENTS:
                assert sc["runAsUser"] == 1034, where  # the BentoML image's user
                assert c["workingDir"].startswith("/"), where  # never the image's WORKDIR
            mounts_needed.update(m["name"] for m in c.get("volumeMounts", []))
            assert "/tmp" in {m["mountPath"] for m in c.get("volumeMounts", [])}, (
                f"{where}: read-only root needs an emptyDir on /tmp"
            )
        claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        assert mounts_needed <= {v["name"] for v in spec.get("volumes", [])} | claims, name


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_serving_pods(rendered, value_set):
    deploy = one(_objects(rendered, value_set), "Deployment", RELEASE)
    spec = pod_spec(deploy)
    assert (
        deploy["spec"]["selector"]["matchLabels"].items() <= pod_metadata(deploy)["labels"].items()
    )
    assert spec["automountServiceAccountToken"] is False
    assert spec["terminationGracePeriodSeconds"] >= 30
    service = spec["containers"][0]
    assert service["name"] == "service"
    assert service["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert service["readinessProbe"]["httpGet"]["path"] == "/readyz"
    startup = service["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # model loading
    assert {p["name"]: p["containerPort"] for p in service["ports"]} == {
        "http": 3000,
        "grpc": 50051,
    }
    store = [m for m in service["volumeMounts"] if m["name"] == "model-store"]
    if value_set == "baked":
        assert not store and "initContainers" not in spec
    else:
        assert store and store[0]["readOnly"] is True
    assert any(e["name"] == "MODEL_TAG" for e in service["env"])
    assert "checksum/config" in pod_metadata(deploy)["annotations"]
    for init in spec.get("initContainers", []):  # wait-for-model reads the store, read-only
        assert [m["readOnly"] for m in init["volumeMounts"] if m["name"] == "model-store"] == [True]


def test_serving_pods_spread_over_nodes_and_zones(rendered):
    spec = pod_spec(one(_objects(rendered, "defaults"), "Deployment", RELEASE))
    keys = [t["topologyKey"] for t in spec["topologySpreadConstraints"]]
    assert keys == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_cronjobs_have_limits_and_deadlines(rendered, value_set):
    for cron in by_kind(_objects(rendered, value_set), "CronJob"):
        spec = cron["spec"]
        name = f"{value_set} {cron['metadata']['name']}"
        assert spec["concurrencyPolicy"] == "Forbid", name
        assert spec["successfulJobsHistoryLimit"] >= 1, name
        assert spec["failedJobsHistoryLimit"] >= 1, name
        assert spec["startingDeadlineSeconds"] > 0, name
        job = spec["jobTemplate"]["spec"]
        assert job["ttlSecondsAfterFinished"] > 0 and job["backoffLimit"] >= 0, name
        assert job["activeDeadlineSeconds"] > 0, name
        assert job["template"]["spec"]["restartPolicy"] == "Never", name
        assert job["template"]["metadata"]["labels"] == spec["jobTemplate"]["metadata"]["labels"]


def test_monitor_cronjob(rendered):
    objs = _objects(rendered, "defaults")
    cron = one(objs, "CronJob", f"{RELEASE}-monitor")
    job = cron["spec"]["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "monitoring.job"]
    assert container["args"] == [
        "--auto-retrain",
        "--retrain-mode",
        "kubernetes",
        "--exit-codes",
        "zero",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["RETRAIN_CRONJOB"]["value"] == f"{RELEASE}-train"
    assert env["RETRAIN_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["RETRAIN_COOLDOWN_HOURS"]["value"] == "6"  # read by monitoring.config
    # monitor.exitCodes "zero" (default): every status exits 0, no status fails the Job; 4
    # (an error) is retried (test_chart_observability.py covers the other policies).
    rules = (job.get("podFailurePolicy") or {}).get("rules", [])
    assert not [rule for rule in rules if rule["action"] == "FailJob"]
    store = [m for m in container["volumeMounts"] if m["name"] == "model-store"][0]
    assert store["readOnly"] is True
    assert job["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-monitor"


def test_train_cronjob(rendered):
    cron = one(_objects(rendered, "defaults"), "CronJob", f"{RELEASE}-train")
    assert cron["spec"]["suspend"] is True
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "python -m training.train" in " ".join(container["command"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ROLLOUT_DEPLOYMENT"] == RELEASE and env["ROLLOUT_CONTAINER"] == "service"
    store = [m for m in container["volumeMounts"] if m["name"] == "model-store"][0]
    assert not store.get("readOnly")
    assert pod["serviceAccountName"] == f"{RELEASE}-train"


def _rules(role):
    return [{k: sorted(v) for k, v in rule.items()} for rule in role["rules"]]


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_rbac_is_exactly_least_privilege(rendered, value_set):
    objs = _objects(rendered, value_set)
    assert not by_kind(objs, "ClusterRole") and not by_kind(objs, "ClusterRoleBinding")
    roles = {r["metadata"]["name"]: r for r in by_kind(objs, "Role")}
    if not roles:
        return
    assert set(roles) == {f"{RELEASE}-monitor", f"{RELEASE}-train"}
    assert _rules(roles[f"{RELEASE}-monitor"]) == [
        {
            "apiGroups": ["batch"],
            "resources": ["cronjobs"],
            "resourceNames": [f"{RELEASE}-train"],
            "verbs": ["get"],
        },
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list"]},
    ]
    assert _rules(roles[f"{RELEASE}-train"]) == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": [RELEASE],
            "verbs": ["get", "patch"],
        },
        # the training lease (training/lease.py); create cannot be limited to a name
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [f"{RELEASE}-train"],
            "verbs": ["get", "update"],
        },
    ]
    bindings = {b["metadata"]["name"]: b for b in by_kind(objs, "RoleBinding")}
    for component in ("monitor", "train"):
        binding = bindings[f"{RELEASE}-{component}"]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"{RELEASE}-{component}",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "namespace": NAMESPACE, "name": f"{RELEASE}-{component}"}
        ]
        cron = one(objs, "CronJob", f"{RELEASE}-{component}")
        assert pod_spec(cron)["serviceAccountName"] == f"{RELEASE}-{component}"
    # The serving account is bound to nothing and mounts no token.
    bound = {s["name"] for b in bindings.values() for s in b["subjects"]}
    serving_sa = pod_spec(one(objs, "Deployment", RELEASE))["serviceAccountName"]
    assert serving_sa not in bound
    sa = [s for s in by_kind(objs, "ServiceAccount") if s["metadata"]["name"] == serving_sa]
    assert not sa or sa[0]["automountServiceAccountToken"] is False


def test_helm_test_pod_posts_the_original_song(rendered):
    pod = one(_objects(rendered, "defaults"), "Pod", f"{RELEASE}-test-predict")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    script = container["args"][0]
    for fragment in (
        '"danceability": 0.826',
        '"instrumentalness": 4.8e-05',
        '"tempo": 94.013',
        '"duration": 205000',
        '"id_new": 1',
    ):
        assert fragment in script
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PREDICT_URL"] == f"http://{RELEASE}.{NAMESPACE}.svc:3000/predict-song"
    assert env["EXPECTED_LABEL"] == "reggaeton"
    compile(script, "test-predict", "exec")  # the embedded checker is valid Python


def test_only_pods_with_a_role_mount_a_service_account_token(rendered):
    defaults = _objects(rendered, "defaults")
    for component in ("monitor", "train"):  # the monitor creates Jobs, train patches
        cron = one(defaults, "CronJob", f"{RELEASE}-{component}")
        assert pod_spec(cron)["automountServiceAccountToken"] is True, component
    baked = _objects(rendered, "baked")  # train disabled: the monitor has no Role to use
    assert not [r for r in by_kind(baked, "Role") if r["metadata"]["name"].endswith("monitor")]
    monitor = one(baked, "CronJob", f"{RELEASE}-monitor")
    assert pod_spec(monitor)["automountServiceAccountToken"] is False
