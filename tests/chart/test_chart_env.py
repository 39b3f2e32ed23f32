"""Fast guard: every value the chart renders into a ConfigMap or container env parses.

Each application container's environment (ConfigMap and Secret resolved, as the kubelet
builds it) is read by the same readers the programs run at start: ``ServiceConfig.from_env``
(every serving worker's ``__init__``), the monitoring job's ``load_config`` and the settings
classes of the training lease, the rollout and the scoring Job. A number that Helm printed as
``8.388608e+06`` fails here, without a container engine.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from chart_helpers import KUBE_VERSIONS, NAMESPACE, VALUE_SETS, all_containers, pod_spec
from pod_env import container_env

from monitoring.config import load_config
from reggaeton.registry import home_from_env
from reggaeton.settings import load_env
from service.config import ServiceConfig
from service.score.__main__ import ScoreSettings
from training.lease import LeaseSettings
from training.rollout import RolloutSettings

EXPONENT = re.compile(r"^-?\d+(\.\d+)?[eE][+-]?\d+$")


def existing_secrets(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Secrets a value set references but does not render (``existingSecret``), as an operator
    would create them (k8s/values-prod.yaml's comment)."""
    rendered = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    names = set()
    for obj in objects:
        spec = pod_spec(obj)
        for container in all_containers(spec) if spec else []:
            names |= {
                ref["secretRef"]["name"]
                for ref in container.get("envFrom") or []
                if "secretRef" in ref
            }
            names |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in container.get("env") or []
                if "secretKeyRef" in (e.get("valueFrom") or {})
            }
    return [
        {
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {
                "PREDICTION_STORE_URI": "mongodb://mongo.example.com/reggaeton",
                "API_TOKEN": "t" * 32,
            },
        }
        for name in sorted(names - rendered)
    ]


def app_containers(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(where, container) of every container that loads the chart's ConfigMap."""
    found = []
    for obj in objects:
        spec = pod_spec(obj)
        for container in all_containers(spec) if spec else []:
            if any("configMapRef" in ref for ref in container.get("envFrom") or []):
                found.append(
                    (f"{obj['kind']}/{obj['metadata']['name']}:{container['name']}", container)
                )
    return found


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_rendered_env_value_parses_with_the_programs_readers(
    rendered: dict[tuple[str, str], list[dict[str, Any]]], value_set: str
) -> None:
    objects = rendered[(value_set, KUBE_VERSIONS[-1])]
    objects = objects + existing_secrets(objects)
    containers = app_containers(objects)
    assert containers, f"{value_set}: no application container rendered"
    pod = {"metadata.namespace": NAMESPACE, "metadata.name": "pod-0"}
    for where, container in containers:
        env = container_env(container, objects, pod)
        try:
            service = ServiceConfig.from_env(env)
            monitoring = load_config(environ=env)
            lease = load_env(LeaseSettings, env)
            rollout = load_env(RolloutSettings, env)
            score = load_env(ScoreSettings, env)
        except ValueError as exc:
            pytest.fail(f"{value_set} {where}: {exc}")
        assert service.max_body_bytes == int(env["MAX_BODY_BYTES"])
        assert str(home_from_env(env)) == env["BENTOML_HOME"]
        assert monitoring.alerts.smtp_port == int(env["SMTP_PORT"])
        assert monitoring.alerts.possible_drift == env["ALERT_POSSIBLE_DRIFT"]
        if "TRAINING_LEASE_DURATION_SECONDS" in env:
            assert lease.duration == float(env["TRAINING_LEASE_DURATION_SECONDS"])
        if "ROLLOUT_DEPLOYMENT" in env:
            assert rollout.deployment == env["ROLLOUT_DEPLOYMENT"]
        if "SCORE_SHARD_COUNT" in env:
            assert score.shard_count == int(env["SCORE_SHARD_COUNT"])


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_no_number_is_rendered_in_exponent_form(
    rendered: dict[tuple[str, str], list[dict[str, Any]]], value_set: str
) -> None:
    objects = rendered[(value_set, KUBE_VERSIONS[-1])]
    bad = [s for obj in objects for s in _strings(obj) if EXPONENT.match(s.strip())]
    assert not bad, f"{value_set}: numbers in exponent form: {bad}"


def test_large_numbers_render_as_integers(helm: str, tmp_path) -> None:
    """Values files hold float64s for Helm: big ones still render as plain integers."""
    from chart_helpers import helm_template, load_objects

    values = {
        "config": {"maxBodyBytes": 16777216, "maxBatchRows": 20000000},
        "scratch": {"sizeLimit": 1073741824},
        "monitor": {"retrainCooldownHours": 0.5},
    }
    result = helm_template(helm, values, tmp_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    objects = load_objects(result.stdout)
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    assert (config["MAX_BODY_BYTES"], config["MAX_BATCH_ROWS"]) == ("16777216", "20000000")
    sizes = {
        v["emptyDir"]["sizeLimit"]
        for o in objects
        if o["kind"] == "Deployment"
        for v in o["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "scratch-var"
    }
    assert sizes == {1073741824}
    monitor = next(
        o for o in objects if o["kind"] == "CronJob" and "monitor" in o["metadata"]["name"]
    )
    env = {e["name"]: e.get("value") for e in pod_spec(monitor)["containers"][0]["env"]}
    assert env["RETRAIN_COOLDOWN_HOURS"] == "0.5"
