"""Retraining triggers: the Kubernetes Job body (schema-validated) and local training."""

from __future__ import annotations

import copy
import json
import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.config import MonitoringConfig
from monitoring.local_training import training_runner
from monitoring.monitor import run
from monitoring.simulate import simulate
from monitoring.trigger import (
    TRIGGER_LABEL,
    KubernetesTrigger,
    LocalTrigger,
    condition_of,
    job_from_cronjob,
    job_is_active,
)
from reggaeton.registry import Registry
from training.promote import promote_version

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
K8S_VERSIONS = ("1.33.0", "1.35.0")

CRONJOB = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {
        "name": "reggaeton-train",
        "namespace": "ml",
        "uid": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "labels": {"app.kubernetes.io/component": "train"},
    },
    "spec": {
        "schedule": "0 3 * * *",
        "suspend": True,
        "concurrencyPolicy": "Forbid",
        "jobTemplate": {
            "metadata": {"labels": {"app.kubernetes.io/component": "train"}},
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": 3600,
                "ttlSecondsAfterFinished": 86400,
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/component": "train"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "serviceAccountName": "reggaeton-train",
                        "containers": [
                            {
                                "name": "train",
                                "image": "reggaeton:0.1.0",
                                "command": ["python", "-m", "training.train"],
                                "envFrom": [{"configMapRef": {"name": "reggaeton"}}],
                                "resources": {"limits": {"memory": "2Gi"}},
                                "volumeMounts": [{"name": "model-store", "mountPath": "/models"}],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "model-store",
                                "persistentVolumeClaim": {"claimName": "reggaeton"},
                            }
                        ],
                    },
                },
            },
        },
    },
    "status": {"lastScheduleTime": "2026-02-28T03:00:00Z"},
}


def test_job_from_cronjob_is_a_valid_job() -> None:
    import kubernetes_validate

    job = job_from_cronjob(CRONJOB, "reggaeton-train-mon-1", {TRIGGER_LABEL: "monitoring"})
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(job, version, strict=True)
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == "ml"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "training.train"
    assert job["metadata"]["labels"][TRIGGER_LABEL] == "monitoring"
    assert job["spec"]["template"]["metadata"]["labels"][TRIGGER_LABEL] == "monitoring"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert "status" not in job and "schedule" not in job["spec"]
    assert CRONJOB["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"] == {
        "app.kubernetes.io/component": "train"
    }  # input not mutated
    with pytest.raises(ValueError, match="jobTemplate"):
        job_from_cronjob({"spec": {}}, "x")


def test_job_from_rendered_chart_cronjob_if_available() -> None:
    """The chart's own train CronJob (rendered with helm when available) gives a valid Job."""
    import subprocess

    import kubernetes_validate
    import yaml

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    helm = shutil.which("helm") or shutil.which("helm", path=os.path.join(root, ".tools"))
    chart = os.path.join(root, "charts", "reggaeton")
    if not helm or not os.path.isdir(chart):
        pytest.skip("helm or the chart is not available")
    out = subprocess.run(
        [helm, "template", "reggaeton", chart, "--show-only", "templates/cronjob-train.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        pytest.skip(f"chart does not render here: {out.stderr[:200]}")
    cronjob = yaml.safe_load(out.stdout)
    assert cronjob["metadata"]["name"] == "reggaeton-train"
    job = job_from_cronjob(cronjob, "reggaeton-train-mon-2", {TRIGGER_LABEL: "monitoring"})
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(job, version, strict=True)


def _model(data: dict, kind: str):
    """A real kubernetes client model object, as BatchV1Api returns it."""
    from kubernetes import client

    return getattr(client, kind).from_dict(data)


class FakeBatchApi:
    """Answers like kubernetes.client.BatchV1Api (client model objects) and records calls."""

    def __init__(self, jobs: list[dict]) -> None:
        self.jobs, self.created = jobs, []

    def list_namespaced_job(self, namespace: str, label_selector: str):
        # every Job of the CronJob's template, whoever created it
        assert label_selector == "app.kubernetes.io/component=train"
        return self._select(label_selector)

    def _select(self, label_selector: str):
        """The jobs whose labels hold every ``key=value`` of the selector, as a V1JobList."""
        wanted = dict(kv.split("=", 1) for kv in label_selector.split(","))
        items = [
            j
            for j in self.jobs
            if wanted.items() <= ((j.get("metadata") or {}).get("labels") or {}).items()
        ]
        return _model(
            {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": items},
            "V1JobList",
        )

    def read_namespaced_cron_job(self, name: str, namespace: str):
        assert (name, namespace) == ("reggaeton-train", "ml")
        return _model(CRONJOB, "V1CronJob")

    def create_namespaced_job(self, namespace: str, body):
        from kubernetes.client import ApiClient, V1Job

        assert isinstance(body, V1Job)  # what the typed client (kubernetes >= 35) expects
        body = ApiClient().sanitize_for_serialization(body)
        self.created.append(body)
        self.jobs.append(
            {
                "metadata": {
                    "name": body["metadata"]["name"],
                    "labels": body["metadata"]["labels"],
                    "creationTimestamp": "2026-03-01T12:00:00Z",
                },
                "status": {"active": 1},
            }
        )
        return body


TRAIN = {"app.kubernetes.io/component": "train"}


def test_kubernetes_trigger_never_twice_while_running() -> None:
    api = FakeBatchApi(
        [
            {
                "metadata": {"name": "old", "labels": TRAIN},
                "status": {"succeeded": 1, "completionTime": "2026-02-01T00:00:00Z"},
            }
        ]
    )
    trig = KubernetesTrigger("ml", "reggaeton-train", api=api)
    first = trig.trigger("drift:tempo")
    assert first["triggered"] and len(api.created) == 1, first
    import kubernetes_validate

    kubernetes_validate.validate(api.created[0], K8S_VERSIONS[-1], strict=True)
    assert api.created[0]["metadata"]["name"].startswith("reggaeton-train-mon-")
    second = trig.trigger("drift:tempo")
    assert not second["triggered"] and "already running" in second["reason"]
    assert len(api.created) == 1
    assert job_is_active({"status": {}}) and not job_is_active(
        {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    )


def test_a_make_retrain_job_blocks_and_the_same_condition_cools_down() -> None:
    # `make retrain` (kubectl create job --from=cronjob/...) carries the template's labels only
    manual = {
        "metadata": {"name": "reggaeton-retrain-20260301", "labels": TRAIN},
        "status": {"active": 1},
    }
    api = FakeBatchApi([manual])
    clock = [NOW]
    trig = KubernetesTrigger(
        "ml", "reggaeton-train", api=api, cooldown_hours=6, clock=lambda: clock[0]
    )
    busy = trig.trigger("drift:tempo")
    assert not busy["triggered"] and "reggaeton-retrain-20260301" in busy["reason"]
    manual["status"] = {"succeeded": 1, "completionTime": "2026-03-01T11:00:00Z"}
    assert trig.trigger("drift:tempo")["triggered"]  # the manual run set no condition
    api.jobs[-1]["status"] = {"succeeded": 1, "completionTime": "2026-03-01T12:30:00Z"}
    clock[0] = NOW + timedelta(hours=2)
    again = trig.trigger("drift:tempo")
    assert not again["triggered"] and again["reason"].startswith("cooldown: Job reggaeton-train")
    assert "2 h 0 min ago" in again["reason"]
    assert trig.trigger("performance")["triggered"]  # another condition: at once
    api.jobs[-1]["status"] = {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}
    clock[0] = NOW + timedelta(hours=7)
    assert trig.trigger("drift:tempo")["triggered"]  # cooled down
    assert len(api.created) == 3


def test_local_trigger_cools_down_per_condition(tmp_path) -> None:
    clock = [NOW]
    trig = LocalTrigger(tmp_path, lambda: {"tag": "t"}, cooldown_hours=6, clock=lambda: clock[0])
    assert trig.trigger("drift:tempo")["triggered"]
    clock[0] = NOW + timedelta(hours=1)
    cooling = trig.trigger("drift:tempo")
    assert not cooling["triggered"] and cooling["reason"].startswith("cooldown:")
    assert trig.trigger("performance")["triggered"]
    clock[0] = NOW + timedelta(hours=8)
    assert trig.trigger("performance")["triggered"]


def test_local_trigger_lock(tmp_path) -> None:
    calls = []
    trig = LocalTrigger(tmp_path, lambda: calls.append(1) or {"tag": "x"})
    (tmp_path / "retrain.lock").write_text(json.dumps({"pid": os.getpid(), "condition": "c"}))
    busy = trig.trigger("c")
    assert not busy["triggered"] and "already running" in busy["reason"] and calls == []
    (tmp_path / "retrain.lock").write_text(json.dumps({"pid": 2**22 + 12345}))  # dead pid
    done = trig.trigger("c")
    assert done["triggered"] and calls == [1] and not (tmp_path / "retrain.lock").exists()
    failing = LocalTrigger(tmp_path, lambda: 1 / 0).trigger("c")
    assert failing["triggered"] and "ZeroDivisionError" in failing["error"]


@pytest.mark.slow
def test_auto_retrain_calls_training_locally(
    make_log, trained_home, tmp_path, repo_root, monkeypatch
) -> None:
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    registry = Registry(home)
    before = {v.tag for v in registry.list()}
    config = MonitoringConfig(
        reports_dir=str(tmp_path / "r"), state_dir=str(tmp_path / "s"), bentoml_home=str(home)
    )
    config.retrain.enabled, config.retrain.mode = True, "local"
    config.retrain.include_feedback = False
    config.retrain.training_overrides = ("cv.folds=2",)  # any default estimator
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)  # config.mlflow_tracking_uri is None
    store, _ = make_log(n=800, seed=31, drift=("tempo=+20",))
    summary = run(
        config, store, registry, now=NOW, until=NOW, window=timedelta(hours=24), progress=None
    )
    retrain = summary["retrain"]
    assert retrain["mode"] == "local" and retrain["triggered"], retrain
    assert "error" not in retrain and retrain["condition"] == "drift:tempo"
    assert retrain["result"]["tag"] not in before
    assert {v.tag for v in registry.list()} == before | {retrain["result"]["tag"]}
    assert not (tmp_path / "s" / "retrain.lock").exists()
    # logged to MLflow like every training (the monitor config names no tracking URI)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.data.tags["bento_tag"] for r in runs] == [retrain["result"]["tag"]]
    assert training_runner(config)  # the same runner the job builds
    # Records of two versions in one window: each is compared with its own reference.
    new_tag = retrain["result"]["tag"]
    simulate(
        store,
        registry,
        n=400,
        seed=32,
        model_tag=new_tag,
        start=NOW - timedelta(hours=1),
        end=NOW,
        data_dir=repo_root / "data",
    )
    config.retrain.enabled = False
    # the new version serves (as after a promotion), the old one's traffic is still there;
    # the retrain's own gate may have promoted it already (it depends on the default estimator)
    if registry.promotions.current() != new_tag:
        promote_version(registry, new_tag, force=True)
    again = run(
        config, store, registry, now=NOW, until=NOW, window=timedelta(hours=24), progress=None
    )
    serving = registry.serving_version().tag
    assessed = {serving: again["drifted_features"]} | {
        tag: o["drifted_features"] for tag, o in again["other_versions"].items()
    }
    old_tag = next(iter(before))
    assert serving == new_tag
    assert assessed == {old_tag: ["tempo"], new_tag: []}
    # the older version's traffic still drifts: the run alerts on it, and says which version
    assert again["status"] == "alert" and again["status_version"] == old_tag
    assert f"other version {old_tag}" in " ".join(again["reasons"])
    assert "drift in tempo" in " ".join(again["reasons"])
    assert condition_of(again) == f"version:{old_tag}|drift:tempo"


class SelectingBatchApi(FakeBatchApi):
    """FakeBatchApi for any CronJob, matching label selectors as the API server does."""

    def __init__(self, jobs: list[dict], cronjob: dict) -> None:
        super().__init__(jobs)
        self.cronjob, self.selectors = cronjob, []

    def list_namespaced_job(self, namespace: str, label_selector: str):
        self.selectors.append(label_selector)
        return self._select(label_selector)

    def read_namespaced_cron_job(self, name: str, namespace: str):
        assert name == self.cronjob["metadata"]["name"]
        return _model(self.cronjob, "V1CronJob")


def _chart_cronjob(name: str, chart_version: str) -> dict:
    """CRONJOB with the chart's label set (helm.sh/chart and version change per release)."""
    cron = copy.deepcopy(CRONJOB)
    cron["metadata"]["name"] = name
    labels = {
        "app.kubernetes.io/name": "reggaeton",
        "app.kubernetes.io/instance": "rel",
        "app.kubernetes.io/component": "train",
        "app.kubernetes.io/part-of": "reggaeton",
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": f"reggaeton-{chart_version}",
        "app.kubernetes.io/version": chart_version,
    }
    cron["spec"]["jobTemplate"]["metadata"]["labels"] = labels
    cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"] = labels
    return cron


def test_a_job_of_the_previous_chart_version_still_blocks() -> None:
    """After `helm upgrade` (new helm.sh/chart, app.kubernetes.io/version labels), a training
    Job started from the old template is still "already running"."""
    old = _chart_cronjob("rel-train", "0.1.0")["spec"]["jobTemplate"]["metadata"]["labels"]
    running = {"metadata": {"name": "rel-retrain-20260301", "labels": old}, "status": {"active": 1}}
    api = SelectingBatchApi([running], _chart_cronjob("rel-train", "0.2.0"))
    out = KubernetesTrigger("ml", "rel-train", api=api).trigger("drift:tempo")
    assert not out["triggered"] and "rel-retrain-20260301" in out.get("reason", ""), out
    assert api.selectors == [
        "app.kubernetes.io/name=reggaeton,app.kubernetes.io/instance=rel,"
        "app.kubernetes.io/component=train"
    ]
    assert api.created == []


def test_job_names_fit_63_characters_with_the_whole_timestamp() -> None:
    """The chart's longest train CronJob name (fullname cut at 50, plus -train): the Job name
    keeps all 14 digits of the timestamp and stays a valid label value."""
    import re

    long_name = ("r" * 49 + "x") + "-train"
    api = SelectingBatchApi([], _chart_cronjob(long_name, "0.1.0"))
    out = KubernetesTrigger("ml", long_name, api=api).trigger("drift:tempo")
    assert out["triggered"], out
    name = api.created[0]["metadata"]["name"]
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
    assert re.search(rf"-{stamp}\d{{6}}$", name), name
    assert name.startswith("r" * 40)


def test_job_from_cronjob_sets_no_block_owner_deletion() -> None:
    """blockOwnerDeletion needs update on cronjobs/finalizers under OpenShift's
    OwnerReferencesPermissionEnforcement; kubectl create job --from does not set it either."""
    (owner,) = job_from_cronjob(CRONJOB, "x")["metadata"]["ownerReferences"]
    assert "blockOwnerDeletion" not in owner and owner["controller"] is True
