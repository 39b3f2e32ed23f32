"""gRPC in the cluster: the server ages connections out (clients reconnect and spread) and an
optional headless Service gives clients every pod for client-side balancing."""

from __future__ import annotations

import pytest
from chart_helpers import (
    KUBE_VERSIONS,
    RELEASE,
    by_kind,
    helm_template,
    one,
    render,
    validate_strict,
)

from service.config import ServiceConfig


def _render(helm, tmp_path, values=None):
    return render(helm, tmp_path, values, kube_version=KUBE_VERSIONS[-1])


def test_pods_age_grpc_connections_out_by_default(helm, tmp_path):
    data = one(_render(helm, tmp_path), "ConfigMap", RELEASE)["data"]
    assert data["GRPC_MAX_CONNECTION_AGE_S"] == "60"
    assert data["GRPC_MAX_CONNECTION_AGE_GRACE_S"] == "30"
    config = ServiceConfig.from_env(data)
    assert (config.grpc_max_connection_age, config.grpc_max_connection_age_grace) == (60, 30)
    custom = _render(
        helm,
        tmp_path,
        {"config": {"grpcMaxConnectionAgeSeconds": 300, "grpcMaxConnectionAgeGraceSeconds": 5}},
    )
    data = one(custom, "ConfigMap", RELEASE)["data"]
    assert (data["GRPC_MAX_CONNECTION_AGE_S"], data["GRPC_MAX_CONNECTION_AGE_GRACE_S"]) == (
        "300",
        "5",
    )


def test_no_headless_service_by_default(helm, tmp_path):
    names = [s["metadata"]["name"] for s in by_kind(_render(helm, tmp_path), "Service")]
    assert RELEASE in names and f"{RELEASE}-headless" not in names


def test_headless_service_for_client_side_balancing(helm, tmp_path):
    objects = _render(helm, tmp_path, {"service": {"headless": {"enabled": True}}})
    service = one(objects, "Service", RELEASE)
    headless = one(objects, "Service", f"{RELEASE}-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == service["spec"]["selector"]
    assert headless["spec"]["ports"] == [
        {
            "name": "grpc",
            "port": 50051,
            "targetPort": "grpc",
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
        }
    ]
    assert "publishNotReadyAddresses" not in headless["spec"]  # only Ready pods resolve
    for version in KUBE_VERSIONS:
        validate_strict(headless, version)


@pytest.mark.parametrize(
    "values",
    [
        {"service": {"headless": {"enabled": "yes"}}},
        {"service": {"headless": {"enabled": True, "clusterIP": "None"}}},
        {"config": {"grpcMaxConnectionAgeSeconds": -1}},
    ],
)
def test_schema_refuses_bad_grpc_values(helm, tmp_path, values):
    result = helm_template(helm, values, tmp_dir=tmp_path)
    assert result.returncode != 0 and "schema" in result.stderr
