"""The container suite's fake API serves the training lease as the real client uses it.

``training.lease.KubernetesLease`` through ``kubernetes.client.CoordinationV1Api`` over TLS
with the bearer token, against ``fake_cluster_api.FakeClusterApi``: GET 404 then POST,
PUT with the read resourceVersion (409 when stale), release.
"""

from __future__ import annotations

import pytest
from fake_cluster_api import FakeClusterApi

from training.lease import KubernetesLease


def _client(api: FakeClusterApi):
    from kubernetes import client

    config = client.Configuration()
    config.host = f"https://{api.access.host}:{api.access.port}"
    config.ssl_ca_cert = str(api.access.secrets_dir / "ca.crt")
    config.api_key = {"authorization": api.token}
    config.api_key_prefix = {"authorization": "Bearer"}
    return client.CoordinationV1Api(client.ApiClient(config))


def test_fake_cluster_api_serves_the_training_lease(tmp_path):
    with FakeClusterApi([], "mlops", tmp_path / "sa") as api:
        coordination = _client(api)
        first = KubernetesLease(coordination, "reggaeton-train", "mlops", "train-pod-a")
        assert first.acquire(0) and first.renew()
        other = KubernetesLease(coordination, "reggaeton-train", "mlops", "train-pod-b")
        assert not other.acquire(0) and other.describe_holder() == "train-pod-a"
        stale = coordination.read_namespaced_lease("reggaeton-train", "mlops")
        assert first.renew()
        from kubernetes.client import ApiException

        with pytest.raises(ApiException) as err:
            coordination.replace_namespaced_lease("reggaeton-train", "mlops", stale)
        assert err.value.status == 409
        first.release()
        assert other.acquire(0)
        assert api.leases["reggaeton-train"]["spec"]["holderIdentity"] == "train-pod-b"
    lease_path = "/apis/coordination.k8s.io/v1/namespaces/mlops/leases"
    assert api.requests[:2] == [("GET", f"{lease_path}/reggaeton-train"), ("POST", lease_path)]
    assert ("PUT", f"{lease_path}/reggaeton-train") in api.requests
