"""Which version pods serve, and the model store, on a multi-node cluster (issue: one rollout
path for models, storage that attaches, bootstrap once)."""

from __future__ import annotations

import pytest
from chart_helpers import (
    KUBE_VERSIONS,
    RELEASE,
    by_kind,
    helm_template,
    load_objects,
    one,
    pod_spec,
    refused,
    render,
)
from fake_lookup_api import LookupApi


def test_pods_do_not_follow_the_promotion_record_in_a_cluster(rendered):
    """Two mechanisms used to decide: the watcher swapped every replica at once on promotion,
    and undid every `rollout undo`. Now the Deployment's MODEL_TAG alone decides."""
    for value_set in ("defaults", "values-dev", "values-prod"):
        config = one(rendered[(value_set, KUBE_VERSIONS[-1])], "ConfigMap", RELEASE)["data"]
        assert config["MODEL_WATCH_INTERVAL"] == "0", value_set


def test_a_new_version_is_a_surge_readiness_gated_rollout(rendered):
    deploy = one(rendered[("values-prod", KUBE_VERSIONS[-1])], "Deployment", RELEASE)
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    service = pod_spec(deploy)["containers"][0]
    assert service["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e.get("value") for e in service["env"]}
    assert env["MODEL_TAG"] == ""  # first install: no live Deployment for lookup to find


def test_a_pinned_model_tag_reaches_the_service_and_its_wait(helm, tmp_path):
    objs = render(helm, tmp_path, {"modelTag": "reggaeton_clf:abc"})
    spec = pod_spec(one(objs, "Deployment", RELEASE))
    for container in spec["initContainers"] + spec["containers"]:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MODEL_TAG"] == "reggaeton_clf:abc", container["name"]


def test_rwx_without_a_storage_class_is_refused(helm, tmp_path):
    """Default classes (block disks) refuse RWX: every pod used to stay Pending."""
    stderr = refused(helm, tmp_path, {"modelStore": {"accessModes": ["ReadWriteMany"]}})
    assert "storageClass is empty" in stderr
    objs = render(
        helm,
        tmp_path,
        {"modelStore": {"accessModes": ["ReadWriteMany"], "storageClass": "nfs-client"}},
    )
    pvc = one(objs, "PersistentVolumeClaim", f"{RELEASE}-model-store")
    assert pvc["spec"]["storageClassName"] == "nfs-client"


def test_prod_values_ask_for_rwx_on_a_named_class(rendered):
    pvc = one(
        rendered[("values-prod", KUBE_VERSIONS[-1])],
        "PersistentVolumeClaim",
        f"{RELEASE}-model-store",
    )
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["storageClassName"] == "nfs-client"


@pytest.mark.parametrize("value_set", ["defaults", "values-prod"])
def test_the_store_is_bootstrapped_once_by_a_job_not_by_every_serving_pod(rendered, value_set):
    """prod's 3 replicas used to train 3 times at first install, and every scale-up again."""
    objs = rendered[(value_set, KUBE_VERSIONS[-1])]
    serving = pod_spec(one(objs, "Deployment", RELEASE))
    (init,) = serving["initContainers"]
    assert init["name"] == "wait-for-model"
    assert init["command"] == ["python", "-m", "service.wait_model"]
    assert "training" not in str(init)
    (job,) = by_kind(objs, "Job")
    assert job["metadata"]["name"].startswith(f"{RELEASE}-bootstrap-")
    (container,) = pod_spec(job)["containers"]
    assert "training.train --if-empty" in container["command"][-1]
    store = [m for m in container["volumeMounts"] if m["name"] == "model-store"]
    assert store and not store[0].get("readOnly")
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_a_changed_bootstrap_spec_is_a_new_job_name(helm, tmp_path):
    """A Job's pod template is immutable: the same name with a new spec would fail upgrades."""
    before = render(helm, tmp_path, {})
    after = render(helm, tmp_path, {"jobImage": {"tag": "0.2.0"}})
    names = [by_kind(objs, "Job")[0]["metadata"]["name"] for objs in (before, after)]
    assert names[0] != names[1]
    assert all(len(name) <= 63 for name in names)
    again = render(helm, tmp_path, {})
    assert by_kind(again, "Job")[0]["metadata"]["name"] == names[0]


def test_helm_upgrade_keeps_the_model_tag_the_trainer_or_a_rollback_set(helm, tmp_path):
    """`helm upgrade` used to render modelTag ("") back over the live MODEL_TAG: it reverted
    the model (or, under server-side apply, conflicted with the trainer's field ownership)."""
    objs = render(helm, tmp_path, {})
    live = one(objs, "Deployment", RELEASE)
    live["metadata"]["annotations"] = {
        "meta.helm.sh/release-name": RELEASE,  # helm's own
        "meta.helm.sh/release-namespace": "mlops",
    }
    env = pod_spec(live)["containers"][0]["env"]
    next(e for e in env if e["name"] == "MODEL_TAG")["value"] = "reggaeton_clf:live"
    kinds = {(o["apiVersion"], o["kind"]) for o in objs}
    path = f"/apis/apps/v1/namespaces/mlops/deployments/{RELEASE}"

    def rendered_tag(values):
        with LookupApi({}, kinds, {path: live}) as api:
            result = helm_template(
                helm,
                values,
                tmp_dir=tmp_path,
                extra_args=[
                    "--dry-run=server",
                    "--disable-openapi-validation",
                    "--kubeconfig",
                    api.kubeconfig(tmp_path / "kubeconfig"),
                ],
            )
        assert result.returncode == 0, result.stderr
        spec = pod_spec(one(load_objects(result.stdout), "Deployment", RELEASE))
        return {
            c["name"]: next(e["value"] for e in c["env"] if e["name"] == "MODEL_TAG")
            for c in spec["initContainers"] + spec["containers"]
        }

    assert rendered_tag({}) == {
        "wait-for-model": "reggaeton_clf:live",
        "service": "reggaeton_clf:live",
    }
    # A pin in values is an explicit decision: it wins.
    assert rendered_tag({"modelTag": "reggaeton_clf:pinned"})["service"] == "reggaeton_clf:pinned"
