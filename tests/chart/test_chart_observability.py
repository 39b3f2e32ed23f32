"""Observability for Kubernetes users: scrape annotations by default, optional ServiceMonitor
and PrometheusRule (alerts on real metric names), and a monitor exit-code policy under which
monitoring outcomes need not look like failed Jobs."""

from __future__ import annotations

import re

import pytest
from chart_helpers import (
    CRD_KINDS,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    by_kind,
    helm_template,
    one,
    pod_metadata,
    pod_spec,
    render,
    validate_strict,
)
from kubernetes_validate import utils as kv

from monitoring import job


def _render(helm, tmp_path, values=None):
    return render(helm, tmp_path, values, kube_version=KUBE_VERSIONS[-1])


def _monitor(objects):
    cronjob = one(objects, "CronJob", f"{RELEASE}-monitor")
    spec = cronjob["spec"]["jobTemplate"]["spec"]
    fail_codes = [
        code
        for rule in (spec.get("podFailurePolicy") or {}).get("rules", [])
        if rule["action"] == "FailJob"
        for code in rule["onExitCodes"]["values"]
    ]
    return pod_spec(cronjob)["containers"][0].get("args", []), fail_codes


def test_defaults_add_scrape_annotations_and_no_crds(rendered):
    objects = rendered[("defaults", KUBE_VERSIONS[-1])]
    annotations = pod_metadata(one(objects, "Deployment", RELEASE))["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "3000"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert not [o for o in objects if (o["apiVersion"], o["kind"]) in CRD_KINDS]


def test_scrape_annotations_can_be_turned_off(helm, tmp_path):
    objects = _render(helm, tmp_path, {"metrics": {"scrapeAnnotations": False}})
    annotations = pod_metadata(one(objects, "Deployment", RELEASE))["annotations"]
    assert not [k for k in annotations if k.startswith("prometheus.io/")]


def test_service_monitor_scrapes_the_serving_service(rendered):
    objects = rendered[("observability", KUBE_VERSIONS[-1])]
    monitor = one(objects, "ServiceMonitor", RELEASE)
    service = one(objects, "Service", RELEASE)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "kps"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert "http" in {p["name"] for p in service["spec"]["ports"]}
    # every Service the selector matches and that has an http port is the serving Service:
    # the headless one (grpc only) adds no second target per pod
    matched = [
        s
        for s in by_kind(objects, "Service")
        if selector.items() <= s["metadata"]["labels"].items()
        and "http" in {p["name"] for p in s["spec"]["ports"]}
    ]
    assert [s["metadata"]["name"] for s in matched] == [RELEASE]
    # one scrape per pod: no annotations beside the ServiceMonitor
    annotations = pod_metadata(one(objects, "Deployment", RELEASE))["annotations"]
    assert not [k for k in annotations if k.startswith("prometheus.io/")]


def _exposed_metric_names() -> set[str]:
    from prometheus_client import CollectorRegistry

    from service.metrics import ServiceMetrics

    registry = CollectorRegistry()
    ServiceMetrics(registry)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {
        family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]
    }


def _rules(objects):
    rule = one(objects, "PrometheusRule", RELEASE)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_prometheus_rule_alerts_on_metrics_the_service_exposes(rendered):
    rules = _rules(rendered[("observability", KUBE_VERSIONS[-1])])
    assert set(rules) == {
        "ReggaetonHighErrorRate",
        "ReggaetonHighLatency",
        "ReggaetonPredictionLogWriteFailures",
        "ReggaetonPredictionLogSpilling",
        "ReggaetonPredictionLogRecordsLost",
        "ReggaetonMonitorJobFailed",
    }
    exposed = _exposed_metric_names()
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        used = set(re.findall(r"\b(reggaeton_[a-z0-9_]+)\{", rule["expr"]))
        assert used <= exposed, (name, used - exposed)
        if name != "ReggaetonMonitorJobFailed":
            assert used, name
            assert f'namespace="{NAMESPACE}",service="{RELEASE}"' in rule["expr"], name
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
    assert rules["ReggaetonHighErrorRate"]["expr"].endswith("> 0.05")
    assert 'status=~"5.."' in rules["ReggaetonHighErrorRate"]["expr"]
    assert rules["ReggaetonHighLatency"]["expr"].endswith("> 1")
    # drift status from kube-state-metrics: failed Jobs owned by the monitor CronJob
    monitor = rules["ReggaetonMonitorJobFailed"]["expr"]
    assert 'kube_job_failed{namespace="mlops",condition="true"}' in monitor
    assert f'owner_kind="CronJob",owner_name="{RELEASE}-monitor"' in monitor
    assert "drift alert (exit 2)" in rules["ReggaetonMonitorJobFailed"]["annotations"]["summary"]


def test_crd_kinds_are_skipped_only_because_no_schema_exists(rendered):
    objects = [
        o
        for o in rendered[("observability", KUBE_VERSIONS[-1])]
        if (o["apiVersion"], o["kind"]) in CRD_KINDS
    ]
    assert {(o["apiVersion"], o["kind"]) for o in objects} == CRD_KINDS
    for obj in objects:
        for version in KUBE_VERSIONS:
            with pytest.raises(kv.SchemaNotFoundError):
                validate_strict(obj, version)


@pytest.mark.parametrize("policy", job.EXIT_POLICIES)
def test_exit_code_policy_reaches_the_monitor_and_its_pod_failure_policy(helm, tmp_path, policy):
    args, fail_codes = _monitor(_render(helm, tmp_path, {"monitor": {"exitCodes": policy}}))
    assert args[args.index("--exit-codes") + 1] == policy
    assert job.build_parser().parse_args(args).exit_codes == policy
    # exactly the codes the policy gives statuses fail the Job at once (never retried)
    status_codes = {job.exit_code(status, policy) for status in job.EXIT_CODES} - {0}
    assert sorted(fail_codes) == sorted(status_codes)
    assert job.EXIT_ERROR not in fail_codes  # errors stay retryable up to backoffLimit


def test_by_default_no_monitoring_outcome_fails_the_job(rendered):
    args, fail_codes = _monitor(rendered[("defaults", KUBE_VERSIONS[-1])])
    policy = job.build_parser().parse_args(args).exit_codes
    assert policy == "zero" and fail_codes == []
    assert {job.exit_code(status, policy) for status in job.EXIT_CODES} == {0}


@pytest.mark.parametrize(
    "values",
    [
        {"monitor": {"exitCodes": "never"}},
        {"metrics": {"serviceMonitor": {"enabled": True, "interval": "often"}}},
        {"metrics": {"prometheusRule": {"errorRateThreshold": 5}}},
        {"metrics": {"scrapeAnnotation": True}},
    ],
)
def test_schema_refuses_bad_observability_values(helm, tmp_path, values):
    result = helm_template(helm, values, tmp_dir=tmp_path)
    assert result.returncode != 0 and "schema" in result.stderr
