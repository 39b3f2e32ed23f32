"""Start retraining when the monitor alerts: locally, or as a Kubernetes Job.

Never twice while a triggered training still runs:

* local: a lock file (``<state_dir>/retrain.lock``, created with ``O_EXCL``) holds the pid
  and the condition; a live pid means "still running" and the trigger is skipped; a dead
  pid (crash) is a stale lock and is replaced;
* Kubernetes: while any Job of the train CronJob's template is active (one the monitor
  created, a ``make retrain``, a scheduled run: all carry the template's labels) no new Job
  is created. The check selects on the template's stable labels only (:data:`STABLE_LABELS`:
  name, instance, component), so a Job started from the previous chart version (other
  ``helm.sh/chart`` and ``app.kubernetes.io/version`` labels) still counts. Jobs created by
  the monitor also carry ``reggaeton.io/triggered-by=monitoring`` and
  ``reggaeton.io/condition=<hash>``.

And not again for the same condition within ``retrain.cooldown_hours`` of the last triggered
training for it (a change the retrained model cannot fix, e.g. a new catalogue, would otherwise
retrain on every run); a different condition may trigger at once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reggaeton.timeutil import now_iso, parse_utc, utcnow

TRIGGER_LABEL = "reggaeton.io/triggered-by"
CONDITION_LABEL = "reggaeton.io/condition"
STABLE_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
)
"""Labels of the train Jobs that do not change with the chart or app version."""
MAX_NAME = 63
"""Longest Job name: the Job controller copies it into the pods' ``job-name`` label."""


def condition_of(summary: Mapping[str, Any]) -> str:
    """A stable description of what triggered: drifted features and failing metrics."""
    parts = []
    version = summary.get("status_version")
    if version and version != summary.get("model_version"):  # another version alerted
        other = (summary.get("other_versions") or {}).get(version) or {}
        drifted = other.get("drifted_features") or []
        return f"version:{version}" + ("|drift:" + ",".join(sorted(drifted)) if drifted else "")
    if summary.get("drifted_features"):
        parts.append("drift:" + ",".join(sorted(summary["drifted_features"])))
    slow = (summary.get("long_window") or {}).get("drifted") or []
    if slow:
        parts.append("slow_drift:" + ",".join(sorted(slow)))
    perf = summary.get("performance_status")
    if perf == "alert":
        parts.append("performance")
    if summary.get("prediction_drift_status") == "alert":
        parts.append("prediction")
    return "|".join(parts) or "alert"


def condition_hash(condition: str) -> str:
    """Short hash of a condition (fits a label value)."""
    return hashlib.sha256(condition.encode()).hexdigest()[:12]


def job_name(prefix: str, stamp: str) -> str:
    """``<prefix>-<stamp>`` within :data:`MAX_NAME` characters, the stamp kept whole.

    The prefix (``<cronjob>-mon``) is shortened instead of the stamp: the stamp is what keeps
    two Jobs of one CronJob apart, and a cut one would make the next name collide.
    """
    room = MAX_NAME - len(stamp) - 1
    return f"{prefix[:room].rstrip('-.')}-{stamp}"


def stable_selector(labels: Mapping[str, str]) -> str:
    """Label selector of the train Jobs from a template's labels: :data:`STABLE_LABELS` only."""
    return ",".join(f"{k}={labels[k]}" for k in STABLE_LABELS if k in labels)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _not_triggered(condition: str, reason: str) -> dict[str, Any]:
    """A local trigger's outcome when it does not train, with the reason."""
    return {"mode": "local", "triggered": False, "condition": condition, "reason": reason}


class LocalTrigger:
    """Run the training pipeline in this process, guarded by a lock file.

    Args:
        state_dir: Folder of ``retrain.lock`` and ``retrain_state.json``.
        train: Callable doing the training and returning a JSON-able result
            (see :func:`training_runner`).
    """

    def __init__(
        self,
        state_dir: str | Path,
        train: Callable[[], Any],
        cooldown_hours: float = 0.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.lock = self.state_dir / "retrain.lock"
        self.state = self.state_dir / "retrain_state.json"
        self.train = train
        self.cooldown = timedelta(hours=cooldown_hours)
        self.clock = clock

    def _cooling(self, condition: str) -> str | None:
        """Why the same condition must wait (the last training for it was recent), or None."""
        if self.cooldown <= timedelta(0):
            return None
        try:
            last = json.loads(self.state.read_text())
            when = parse_utc(last["finished_at"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        age = self.clock() - when
        if last.get("condition") == condition and age < self.cooldown:
            return _cooldown_reason(
                "a training for the same condition finished", age, self.cooldown
            )
        return None

    def running(self) -> dict[str, Any] | None:
        """The lock's content when a triggered training is still running, else None."""
        try:
            info = json.loads(self.lock.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if _pid_alive(int(info.get("pid", -1))):
            return info
        self.lock.unlink(missing_ok=True)  # stale: the process that held it is gone
        return None

    def trigger(self, condition: str) -> dict[str, Any]:
        """Train unless a triggered training is running. Never raises."""
        busy = self.running()
        if busy:
            reason = (
                f"training already running (pid {busy['pid']}, condition {busy.get('condition')})"
            )
            return _not_triggered(condition, reason)
        cooling = self._cooling(condition)
        if cooling:
            return _not_triggered(condition, cooling)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        info = {"pid": os.getpid(), "condition": condition, "started_at": now_iso()}
        try:
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return _not_triggered(condition, "training already running (lock taken meanwhile)")
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
        outcome: dict[str, Any] = {"mode": "local", "triggered": True, "condition": condition}
        try:
            outcome["result"] = self.train()
        except Exception as exc:  # a failed training is reported, not raised
            outcome.update(error=f"{type(exc).__name__}: {exc}")
        finally:
            self.lock.unlink(missing_ok=True)
        outcome["finished_at"] = self.clock().isoformat()
        self.state.write_text(json.dumps(outcome, indent=2, default=str))
        return outcome


def job_from_cronjob(
    cronjob: Mapping[str, Any], name: str, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Build a Job body from a CronJob, like ``kubectl create job --from=cronjob/...``.

    Args:
        cronjob: The CronJob as a dict in API form (camelCase keys).
        name: Name of the new Job.
        labels: Extra labels for the Job and its pods.

    Returns:
        A ``batch/v1`` Job manifest (dict) owned by the CronJob.

    Raises:
        ValueError: when the CronJob has no ``spec.jobTemplate.spec``.
    """
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    if not template.get("spec"):
        raise ValueError("cronjob.spec.jobTemplate.spec: missing")
    meta = cronjob.get("metadata") or {}
    tmeta = template.get("metadata") or {}
    extra = dict(labels or {})
    spec = copy.deepcopy(template["spec"])
    pod_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **extra}
    job_meta: dict[str, Any] = {
        "name": name,
        "labels": {**(tmeta.get("labels") or {}), **extra},
        "annotations": {
            **(tmeta.get("annotations") or {}),
            "cronjob.kubernetes.io/instantiate": "manual",
        },
    }
    if meta.get("namespace"):
        job_meta["namespace"] = meta["namespace"]
    if meta.get("uid") and meta.get("name"):
        # No blockOwnerDeletion, as kubectl: setting it needs `update` on cronjobs/finalizers
        # where OwnerReferencesPermissionEnforcement is on (OpenShift), which the monitor lacks.
        job_meta["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
            }
        ]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": spec}


def job_is_active(job: Mapping[str, Any]) -> bool:
    """True while a Job (API dict) has not completed or failed."""
    status = job.get("status") or {}
    if status.get("active"):
        return True
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return False
    return not status.get("completionTime")


class KubernetesTrigger:
    """Create a training Job from the chart's train CronJob.

    Args:
        namespace: Namespace of the CronJob.
        cronjob: Its name (``<release>-train``).
        api: A ``kubernetes.client.BatchV1Api`` (default: in-cluster config, else kubeconfig).
    """

    def __init__(
        self,
        namespace: str,
        cronjob: str,
        api: Any = None,
        cooldown_hours: float = 0.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.namespace = namespace
        self.cronjob = cronjob
        self._api = api
        self.cooldown = timedelta(hours=cooldown_hours)
        self.clock = clock

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            self._api = client.BatchV1Api()
        return self._api

    @staticmethod
    def _plain(obj: Any) -> dict[str, Any]:
        from kubernetes.client import ApiClient

        return ApiClient().sanitize_for_serialization(obj)

    def trigger(self, condition: str) -> dict[str, Any]:
        """Create the Job unless a monitor-triggered Job is active. Never raises."""
        out: dict[str, Any] = {
            "mode": "kubernetes",
            "triggered": False,
            "condition": condition,
            "namespace": self.namespace,
            "cronjob": self.cronjob,
        }
        try:
            cronjob = self._plain(self.api.read_namespaced_cron_job(self.cronjob, self.namespace))
            labels = (cronjob.get("spec", {}).get("jobTemplate", {}).get("metadata") or {}).get(
                "labels"
            ) or {}
            selector = stable_selector(labels) or f"{TRIGGER_LABEL}=monitoring"
            jobs = self._plain(
                self.api.list_namespaced_job(self.namespace, label_selector=selector)
            ).get("items", [])
            active = [j["metadata"]["name"] for j in jobs if job_is_active(j)]
            if active:
                out["reason"] = f"training already running: {', '.join(active)}"
                return out
            cooling = self._cooling(jobs, condition)
            if cooling:
                out["reason"] = cooling
                return out
            stamp = utcnow().strftime("%Y%m%d%H%M%S")
            body = job_from_cronjob(
                cronjob,
                job_name(f"{self.cronjob}-mon", stamp),
                {TRIGGER_LABEL: "monitoring", CONDITION_LABEL: condition_hash(condition)},
            )
            from kubernetes.client import V1Job

            self.api.create_namespaced_job(self.namespace, V1Job.from_dict(body))
            out.update(triggered=True, job=body["metadata"]["name"])
        except Exception as exc:  # API unreachable, RBAC, ... : reported, not raised
            out["error"] = f"{type(exc).__name__}: {exc}"
        return out

    def _cooling(self, jobs: list[dict[str, Any]], condition: str) -> str | None:
        """Why the same condition must wait (a monitor Job for it started recently), or None."""
        if self.cooldown <= timedelta(0):
            return None
        wanted = condition_hash(condition)
        for job in jobs:
            meta = job.get("metadata") or {}
            job_labels = meta.get("labels") or {}
            created = meta.get("creationTimestamp")
            if job_labels.get(CONDITION_LABEL) != wanted or not created:
                continue
            age = self.clock() - parse_utc(str(created))
            if age < self.cooldown:
                return _cooldown_reason(
                    f"Job {meta.get('name')} trained for the same condition", age, self.cooldown
                )
        return None


def _cooldown_reason(what: str, age: timedelta, cooldown: timedelta) -> str:
    minutes = max(0, int(age.total_seconds() // 60))
    return (
        f"cooldown: {what} {minutes // 60} h {minutes % 60} min ago "
        f"(retrain.cooldown_hours={cooldown.total_seconds() / 3600:g})"
    )
