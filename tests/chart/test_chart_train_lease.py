"""The train Job: one training at a time (the training lease) and a node drain is not a failure.

``concurrencyPolicy: Forbid`` only counts the Jobs the CronJob controller scheduled; Jobs from
``make retrain`` and the monitor are not, so the train command runs under ``training.lease``
(tests/training/test_lease.py runs two at once). The container suite runs the wrapped command
against a fake API that serves the Lease.
"""

from __future__ import annotations

import pytest
import yaml
from chart_helpers import CHART, KUBE_VERSIONS, RELEASE, VALUE_SETS, by_kind, one, pod_spec

LEASE_PREFIX = ["python", "-m", "training.lease", "--"]


def _train(rendered, value_set):
    objects = rendered[(value_set, KUBE_VERSIONS[-1])]
    found = [c for c in by_kind(objects, "CronJob") if c["metadata"]["name"] == f"{RELEASE}-train"]
    return objects, (found[0] if found else None)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_train_job_survives_a_node_drain(rendered, value_set):
    """A pod killed by a drain, eviction or preemption carries DisruptionTarget: Ignore makes
    the Job start a new pod without counting it against backoffLimit (0: a crash is final)."""
    _, cron = _train(rendered, value_set)
    if cron is None:
        pytest.skip("no train CronJob in this value set")
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"  # required by podFailurePolicy
    rules = job["podFailurePolicy"]["rules"]
    assert {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    } in rules
    assert not [r for r in rules if r["action"] == "FailJob"]  # no status exit codes to train
    assert job["backoffLimit"] == 0


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_train_command_runs_under_the_training_lease(rendered, value_set):
    objects, cron = _train(rendered, value_set)
    if cron is None:
        pytest.skip("no train CronJob in this value set")
    values = yaml.safe_load((CHART / "values.yaml").read_text())["train"]
    (container,) = pod_spec(cron)["containers"]
    assert container["command"][:4] == LEASE_PREFIX
    assert container["command"][4:] == values["command"]  # the configured command, unchanged
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert float(env["TRAINING_LEASE_DURATION_SECONDS"]) == values["lease"]["durationSeconds"]
    assert float(env["TRAINING_LEASE_WAIT_SECONDS"]) > float(
        env["TRAINING_LEASE_DURATION_SECONDS"]
    )  # a drained pod's successor takes over
    roles = {r["metadata"]["name"]: r for r in by_kind(objects, "Role")}
    if f"{RELEASE}-train" in roles:  # rbac.create: a Lease named like the CronJob
        assert env["TRAINING_LEASE_NAME"] == f"{RELEASE}-train"
        assert {"POD_NAME", "POD_NAMESPACE"} <= set(env)
        assert pod_spec(cron)["automountServiceAccountToken"] is True
    else:  # no API access: the flock in the model store
        assert "TRAINING_LEASE_NAME" not in env


def test_train_role_may_hold_only_its_lease(rendered):
    objects = rendered[("defaults", KUBE_VERSIONS[-1])]
    role = one(objects, "Role", f"{RELEASE}-train")
    leases = [r for r in role["rules"] if r["apiGroups"] == ["coordination.k8s.io"]]
    # create cannot be restricted by name (RBAC sees no name yet); get/update can
    assert {
        "resources": ["leases"],
        "verbs": ["create"],
        "apiGroups": ["coordination.k8s.io"],
    } in leases
    named = [r for r in leases if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [f"{RELEASE}-train"],
            "verbs": ["get", "update"],
        }
    ]
    assert len(leases) == 2
