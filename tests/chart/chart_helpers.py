"""Helpers of the chart tests: find helm/kubectl, render the chart, validate objects.

Named ``chart_helpers`` (not ``helpers``) because test directories have no ``__init__.py``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kv

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "reggaeton"
TOOLS = ROOT / ".tools"
RELEASE = "reggaeton"
NAMESPACE = "mlops"
KUBE_VERSIONS = ("1.33.0", "1.35.0")
"""Kubernetes versions to validate against (kubernetes-validate ships both schema sets)."""

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "CronJob", "Job", "Pod")
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
"""The only kinds the chart renders that kubernetes-validate has no schema for (Prometheus
Operator CRDs): test_chart_render skips them by this list, test_chart_observability checks
them instead."""

# kubernetes-validate re-reads and re-parses the schema JSON files on every call; cache the
# (read-only) parsed files so hundreds of validations take seconds, not minutes.
if not hasattr(kv.schema_contents, "cache_info"):
    kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)


def tools_required() -> bool:
    """Whether a missing helm must fail the tests instead of skipping them.

    True under CI (``CI`` set), under make (GNU make exports ``MAKELEVEL`` to recipes, so
    ``make test`` fails without helm) or with ``REGGAETON_REQUIRE_TOOLS=1``.
    """
    return (
        bool(os.environ.get("CI"))
        or "MAKELEVEL" in os.environ
        or os.environ.get("REGGAETON_REQUIRE_TOOLS") == "1"
    )


def tools_dir() -> Path:
    """Where ``make tools`` caches helm and kubectl (``REGGAETON_TOOLS_DIR`` overrides)."""
    return Path(os.environ.get("REGGAETON_TOOLS_DIR") or TOOLS)


def find_tool(name: str) -> str | None:
    """Path of ``name`` on PATH or in ``.tools/`` (filled by ``make tools``), else None."""
    found = shutil.which(name)
    if found:
        return found
    cached = tools_dir() / name
    return str(cached) if cached.is_file() and os.access(cached, os.X_OK) else None


def require_tool(name: str) -> str:
    """Path of a tool; a missing one fails the test under make/CI and skips it otherwise."""
    path = find_tool(name)
    if path is None:
        message = f"{name} not found on PATH or in .tools/ (run `make tools`)"
        if tools_required():
            pytest.fail(message + " -- required under make/CI")
        pytest.skip(message)
    return path


def helm_template(
    helm: str,
    values: Mapping[str, Any] | None = None,
    files: Sequence[Path] = (),
    kube_version: str | None = None,
    extra_args: Sequence[str] = (),
    tmp_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``helm template`` on the chart with values files and/or a values dict."""
    cmd = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in files:
        cmd += ["-f", str(path)]
    if kube_version:
        cmd += ["--kube-version", kube_version]
    cmd += list(extra_args)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=tmp_dir) as handle:
        if values:
            yaml.safe_dump(dict(values), handle)
            handle.flush()
            cmd += ["-f", handle.name]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def load_objects(text: str) -> list[dict[str, Any]]:
    """Parse a multi-document YAML stream into its non-empty objects."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(
    helm: str,
    tmp_path: Path | None,
    values: Mapping[str, Any] | None = None,
    files: Sequence[Path] = (),
    kube_version: str | None = None,
) -> list[dict[str, Any]]:
    """The chart's objects for ``values``; a failed render fails the test with helm's error."""
    result = helm_template(helm, values, files, kube_version=kube_version, tmp_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    return load_objects(result.stdout)


def refused(helm: str, tmp_path: Path | None, values: Mapping[str, Any]) -> str:
    """helm's error for ``values``, which the chart must refuse to render."""
    result = helm_template(helm, values, tmp_dir=tmp_path)
    assert result.returncode != 0, f"rendered: {values}"
    return result.stderr


def validate_strict(obj: Mapping[str, Any], version: str) -> str:
    """Validate one object with kubernetes-validate in strict mode; returns the schema version.

    Raises:
        kv.ValidationError: the object does not match the schema.
        kv.SchemaNotFoundError: kubernetes-validate has no schema for its kind/apiVersion.
    """
    return kv.validate(dict(obj), version, strict=True)


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload object (None for other kinds)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]
    if kind in ("Deployment", "StatefulSet", "Job"):
        return obj["spec"]["template"]["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def pod_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template metadata of a workload object."""
    kind = obj["kind"]
    if kind == "Pod":
        return obj["metadata"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    return obj["spec"]["template"]["metadata"]


def all_containers(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Init containers then containers of a pod spec."""
    yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


def by_kind(objects: Sequence[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    """Objects of one kind."""
    return [o for o in objects if o["kind"] == kind]


def one(objects: Sequence[Mapping[str, Any]], kind: str, name: str) -> Mapping[str, Any]:
    """The single object of ``kind`` named ``name``."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def job_from_cronjob_like_kubectl(cronjob: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Pure-Python equivalent of ``kubectl create job NAME --from=cronjob/...``.

    Mirrors kubectl's createJobFromCronJob: the Job takes the jobTemplate's labels, its
    annotations plus ``cronjob.kubernetes.io/instantiate: manual``, the namespace, a controller
    owner reference to the CronJob, and the jobTemplate spec unchanged. Checked field for
    field against the real kubectl by ``test_real_kubectl_builds_the_same_job``.
    """
    template = cronjob["spec"]["jobTemplate"]
    tmeta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "name": name,
        "namespace": cronjob["metadata"]["namespace"],
        "annotations": {
            "cronjob.kubernetes.io/instantiate": "manual",
            **(tmeta.get("annotations") or {}),
        },
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": cronjob["metadata"]["name"],
                "uid": cronjob["metadata"].get("uid", ""),
                "controller": True,
            }
        ],
    }
    if not meta["labels"]:
        del meta["labels"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": json.loads(json.dumps(template["spec"])),
    }


def drop_nulls(value: Any) -> Any:
    """Remove None values and empty ``status`` maps (kubectl prints creationTimestamp: null)."""
    if isinstance(value, dict):
        return {
            k: drop_nulls(v)
            for k, v in value.items()
            if v is not None and not (k == "status" and v == {})
        }
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


# Value sets rendered and validated: name -> (values files, values overrides).
VALUE_SETS: dict[str, tuple[tuple[Path, ...], dict[str, Any]]] = {
    "defaults": ((), {}),
    "autoscaling": (
        (),
        {
            "autoscaling": {
                "enabled": True,
                "minReplicas": 3,
                "targetMemoryUtilizationPercentage": 80,
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "bentoml_requests_per_second"},
                            "target": {"type": "AverageValue", "averageValue": "100"},
                        },
                    }
                ],
            }
        },
    ),
    "ingress": (
        (),
        {
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "tls": [{"secretName": "tls", "hosts": ["reggaeton.local"]}],
                "grpc": {"enabled": True},
            }
        },
    ),
    "mongodb": (
        (),
        {"mongodb": {"enabled": True, "auth": {"enabled": True, "rootPassword": "p@ss/word"}}},
    ),
    "mlflow": ((), {"mlflow": {"enabled": True}}),
    "existing": (
        (),
        {
            "existingSecret": "my-env",
            "mongodb": {"enabled": False},
            "modelStore": {"existingClaim": "my-store"},
            "mlflow": {"enabled": True, "persistence": {"existingClaim": "my-mlflow"}},
        },
    ),
    "train-schedule": (
        (),
        {"train": {"suspend": False, "schedule": "15 4 * * 1", "timeZone": "Europe/Madrid"}},
    ),
    "network-policy": (
        (),
        {
            "networkPolicy": {"enabled": True},
            "mongodb": {"enabled": True},
            "mlflow": {"enabled": True},
        },
    ),
    "minimal": (
        (),
        {
            "replicaCount": 1,
            "monitor": {"enabled": False},
            "train": {"enabled": False},
            "rbac": {"create": False},
            "serviceAccount": {"create": False},
            "modelStore": {"bootstrap": {"enabled": False}},
            "topologySpread": {"enabled": False},
            "preStopSleepSeconds": 0,
        },
    ),
    "baked": (
        (),
        {
            "modelStore": {"enabled": False, "mountPath": "/home/bentoml/bento"},
            "modelTag": "reggaeton_clf:abc123",
            "train": {"enabled": False},
            "monitor": {"autoRetrain": False},
        },
    ),
    "observability": (
        (),
        {
            "metrics": {
                "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}},
                "prometheusRule": {"enabled": True},
            },
            "service": {"headless": {"enabled": True}},
            "monitor": {"exitCodes": "alerts"},
        },
    ),
    "values-dev": ((ROOT / "k8s" / "values-dev.yaml",), {}),
    "values-prod": ((ROOT / "k8s" / "values-prod.yaml",), {}),
}
