"""The Job bodies created from the train CronJob: by `make retrain` (kubectl create job
--from=cronjob/<release>-train) and by the monitor's trigger (monitoring.trigger)."""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml
from chart_helpers import (
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    ROOT,
    drop_nulls,
    job_from_cronjob_like_kubectl,
    one,
    validate_strict,
)
from fake_apiserver import FakeApiServer

UID = "0b8f5c4e-1d2a-4a7e-9a51-3c2f7a9d1e00"


@pytest.fixture(scope="module")
def train_cronjob(rendered):
    """The rendered train CronJob as the API server would return it (with a uid)."""
    cron = copy.deepcopy(
        one(rendered[("defaults", KUBE_VERSIONS[-1])], "CronJob", f"{RELEASE}-train")
    )
    cron["metadata"]["uid"] = UID
    return cron


def _assert_job_matches(job, cron, name):
    template = cron["spec"]["jobTemplate"]
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["name"] == name
    assert job["spec"] == template["spec"]
    assert job["metadata"]["labels"] == template["metadata"]["labels"]
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "CronJob",
        cron["metadata"]["name"],
        UID,
        True,
    )
    for version in KUBE_VERSIONS:
        validate_strict(job, version)


def test_retrain_job_body_equals_the_cronjob_template(train_cronjob):
    name = f"{RELEASE}-retrain-20260101000000"
    job = job_from_cronjob_like_kubectl(train_cronjob, name)
    _assert_job_matches(job, train_cronjob, name)


def test_real_kubectl_builds_the_same_job(kubectl, train_cronjob, tmp_path):
    """`make retrain` runs `kubectl create job --from=cronjob/...`: run that very kubectl
    against a fake API server on 127.0.0.1 serving the rendered CronJob (client dry run)."""
    name = f"{RELEASE}-retrain-20260101000000"
    with FakeApiServer(train_cronjob) as server:
        result = subprocess.run(
            [
                kubectl,
                "--kubeconfig",
                str(server.kubeconfig(tmp_path / "kubeconfig")),
                "--cache-dir",
                str(tmp_path / "cache"),
                "-n",
                NAMESPACE,
                "create",
                "job",
                name,
                f"--from=cronjob/{RELEASE}-train",
                "--dry-run=client",
                "-o",
                "yaml",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"/apis/batch/v1/namespaces/{NAMESPACE}/cronjobs/{RELEASE}-train" in server.paths
    job = drop_nulls(yaml.safe_load(result.stdout))
    _assert_job_matches(job, train_cronjob, name)
    assert job == job_from_cronjob_like_kubectl(train_cronjob, name)


def test_monitor_trigger_builds_the_same_job(train_cronjob):
    trigger = pytest.importorskip("monitoring.trigger", reason="monitoring.trigger not there yet")
    name = f"{RELEASE}-train-mon-20260101000000"
    job = trigger.job_from_cronjob(train_cronjob, name)
    _assert_job_matches(job, train_cronjob, name)
    assert job["metadata"]["namespace"] == NAMESPACE
    # Field for field what kubectl builds (checked against the real one above): in particular
    # no blockOwnerDeletion, which needs update on cronjobs/finalizers under OpenShift.
    assert job == job_from_cronjob_like_kubectl(train_cronjob, name)

    # With the trigger's own labels, only labels differ: the rest is the template.
    labelled = trigger.job_from_cronjob(train_cronjob, name, {"reggaeton/trigger": "monitoring"})
    for version in KUBE_VERSIONS:
        validate_strict(labelled, version)
    pod_labels = labelled["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["reggaeton/trigger"] == "monitoring"
    template = copy.deepcopy(train_cronjob["spec"]["jobTemplate"]["spec"])
    template["template"]["metadata"]["labels"]["reggaeton/trigger"] = "monitoring"
    assert labelled["spec"] == template


def test_makefile_retrain_targets_the_rendered_names():
    makefile = (ROOT / "Makefile").read_text()
    assert "create job --from=cronjob/$(RELEASE)-train" in makefile
    assert "rollout undo deployment/$(RELEASE)" in makefile


@pytest.mark.parametrize("release", ["reggaeton", "r" * 39 + "-" + "y" * 13])
def test_makefile_retrain_job_name_fits_63_characters(release):
    """`make retrain` names the Job <release>-retrain-<14-digit timestamp>: for the longest
    release name Helm allows (53), the release part is shortened, never the timestamp."""
    import re

    dry = subprocess.run(
        ["make", "-s", "-n", "retrain", f"RELEASE={release}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assign = next(line for line in dry.splitlines() if line.startswith("job="))
    assign = assign.split("; \\")[0]
    name = subprocess.run(
        ["sh", "-c", f'{assign}; printf %s "$job"'],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
    assert re.fullmatch(r".+-retrain-20\d{12}", name), name
    assert name.startswith(release[:39]) and "--" not in name
    assert len(release) > 40 or name.startswith(f"{release}-retrain-")
