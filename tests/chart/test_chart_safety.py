"""Issue 11, "Safe routes" and "Defaults that make the loop work", at render time.

- The public Ingress routes only the prediction endpoints and the API docs by default; an
  Ingress that routes /feedback or /admin/reload without an API token is refused.
- Each container gets only the Secret keys it reads (no SMTP password in the serving pods), by
  ``secretKeyRef``; keys an ``existingSecret`` may lack are optional.
- Rotating an ``existingSecret`` can roll the pods (``existingSecretOptions.checksum``; the
  ``lookup`` hash needs a cluster and is absent under ``helm template``).
- The default store is shared (the in-chart MongoDB); several replicas, or a monitor, on a
  per-pod SQLite file are refused with the reason; an absolute SQLite path on a shared volume
  (the container suite's choice) still renders.
"""

from __future__ import annotations

from typing import Any

import pytest
from chart_helpers import (
    KUBE_VERSIONS,
    RELEASE,
    all_containers,
    by_kind,
    helm_template,
    load_objects,
    one,
    pod_metadata,
    pod_spec,
    refused,
    render,
)
from fake_lookup_api import LookupApi
from pod_env import container_env

TOKEN_ROUTES = ("/feedback", "/admin/reload")
PRIVATE_ROUTES = TOKEN_ROUTES + ("/metrics", "/model", "/livez", "/readyz")
PUBLIC_ROUTES = (
    "/predict-song",
    "/predict-songs",
    "/",
    "/docs.json",
    "/static_content/swagger-ui.css",
)
"""The prediction endpoints and the docs BentoML serves (Swagger UI at /, its assets under
/static_content, the OpenAPI JSON at /docs.json: _bentoml_impl/server/app.py)."""
POD = {"metadata.namespace": "mlops", "metadata.name": "pod-0"}
SHARED_SQLITE = {
    "secret": {"predictionStoreUri": "sqlite:////home/bentoml/predlog/p.db"},
    "mongodb": {"enabled": False},
    "volumes": [{"name": "predlog", "persistentVolumeClaim": {"claimName": "p"}}],
    "volumeMounts": [{"name": "predlog", "mountPath": "/home/bentoml/predlog"}],
}


def routes(path: dict[str, str], route: str) -> bool:
    """Whether an Ingress path routes ``route`` (Kubernetes' Exact / element-wise Prefix;
    ImplementationSpecific counted as a prefix, as ingress-nginx treats it)."""
    if path["pathType"] == "Exact":
        return path["path"] == route
    prefix = path["path"].rstrip("/")
    return prefix == "" or route == prefix or route.startswith(prefix + "/")


def ingress_paths(objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    ingress = one(objects, "Ingress", RELEASE)
    return [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]


# -- safe routes ------------------------------------------------------------------------------
def test_default_ingress_routes_only_predictions_and_docs(helm, tmp_path):
    paths = ingress_paths(render(helm, tmp_path, {"ingress": {"enabled": True}}))
    for route in PUBLIC_ROUTES:
        assert any(routes(p, route) for p in paths), f"{route} not routed"
    for route in PRIVATE_ROUTES:
        assert not any(routes(p, route) for p in paths), f"{route} is public: {paths}"


def test_values_prod_ingress_routes_no_private_route(rendered):
    paths = ingress_paths(rendered[("values-prod", KUBE_VERSIONS[-1])])
    assert any(routes(p, "/predict-song") for p in paths)
    assert not [r for r in PRIVATE_ROUTES if any(routes(p, r) for p in paths)]


def test_a_host_may_list_its_own_paths(helm, tmp_path):
    hosts = [
        {"host": "a.example", "paths": [{"path": "/predict-song", "pathType": "Exact"}]},
        {"host": "b.example"},
    ]
    ingress = one(
        render(helm, tmp_path, {"ingress": {"enabled": True, "hosts": hosts}}), "Ingress", RELEASE
    )
    rules = {r["host"]: [p["path"] for p in r["http"]["paths"]] for r in ingress["spec"]["rules"]}
    assert rules["a.example"] == ["/predict-song"]
    assert "/predict-songs" in rules["b.example"]


@pytest.mark.parametrize(
    ("path", "path_type", "route"),
    [
        ("/", "Prefix", "/feedback"),
        ("/feedback", "Exact", "/feedback"),
        ("/admin", "Prefix", "/admin/reload"),
        ("/admin/reload", "ImplementationSpecific", "/admin/reload"),
    ],
)
def test_ingress_exposing_token_routes_without_a_token_is_refused(
    helm, tmp_path, path, path_type, route
):
    hosts = [{"host": "r.example", "paths": [{"path": path, "pathType": path_type}]}]
    ingress = {"enabled": True, "hosts": hosts}
    stderr = refused(helm, tmp_path, {"ingress": ingress})
    assert f"routes {route} to the public" in stderr and "API_TOKEN" in stderr, stderr
    # an existingSecret is not assumed to hold a token
    stderr = refused(helm, tmp_path, {"ingress": ingress, "existingSecret": "env"})
    assert "existingSecretOptions.hasApiToken" in stderr
    # a token, an asserted token in the existingSecret, or an explicit opt-out renders
    render(helm, tmp_path, {"ingress": ingress, "secret": {"apiToken": "t0k3n"}})
    render(
        helm,
        tmp_path,
        {
            "ingress": ingress,
            "existingSecret": "env",
            "existingSecretOptions": {"hasApiToken": True},
        },
    )
    render(helm, tmp_path, {"ingress": {**ingress, "allowUnauthenticated": True}})


def test_a_path_that_only_shares_letters_is_not_refused(helm, tmp_path):
    hosts = [
        {
            "host": "r.example",
            "paths": [
                {"path": "/adm", "pathType": "Prefix"},
                {"path": "/feedbacks", "pathType": "Exact"},
            ],
        }
    ]
    render(helm, tmp_path, {"ingress": {"enabled": True, "hosts": hosts}})


# -- Secret keys per container ------------------------------------------------------------------
def _secret_keys(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env") or []
        if "secretKeyRef" in (e.get("valueFrom") or {})
    }


def _containers(objects):
    for obj in objects:
        spec = pod_spec(obj)
        for container in all_containers(spec) if spec else []:
            yield f"{obj['kind']}/{obj['metadata']['name']}:{container['name']}", container


ALL_SECRETS = {
    "apiToken": "t0k3n",
    "alertWebhookUrl": "https://hooks.example/x",
    "smtpUser": "alerts",
    "smtpPassword": "s3cret",
    "extra": {"EXTRA_KEY": "v"},
}


def test_each_container_gets_only_the_secret_keys_it_reads(helm, tmp_path):
    objects = render(helm, tmp_path, {"secret": ALL_SECRETS})
    for where, container in _containers(objects):
        assert not [r for r in container.get("envFrom") or [] if "secretRef" in r], where
    serving = pod_spec(one(objects, "Deployment", RELEASE))["containers"][0]
    assert set(_secret_keys(serving)) == {"PREDICTION_STORE_URI", "API_TOKEN", "EXTRA_KEY"}
    monitor = pod_spec(one(objects, "CronJob", f"{RELEASE}-monitor"))["containers"][0]
    assert set(_secret_keys(monitor)) == {
        "PREDICTION_STORE_URI",
        "ALERT_WEBHOOK_URL",
        "SMTP_USER",
        "SMTP_PASSWORD",
        "EXTRA_KEY",
    }
    train = pod_spec(one(objects, "CronJob", f"{RELEASE}-train"))["containers"][0]
    assert set(_secret_keys(train)) == {"PREDICTION_STORE_URI", "EXTRA_KEY"}
    env = container_env(serving, objects, POD)
    assert "SMTP_PASSWORD" not in env and "ALERT_WEBHOOK_URL" not in env
    assert env["API_TOKEN"] == "t0k3n"
    assert container_env(monitor, objects, POD)["SMTP_PASSWORD"] == "s3cret"
    for where, container in _containers(objects):  # rendered keys are all present: required
        assert not [r for r in _secret_keys(container).values() if r.get("optional")], where


def test_existing_secret_keys_are_optional_except_the_store_and_an_asserted_token(helm, tmp_path):
    objects = render(helm, tmp_path, {"existingSecret": "env"})
    serving = pod_spec(one(objects, "Deployment", RELEASE))["containers"][0]
    refs = _secret_keys(serving)
    assert refs["PREDICTION_STORE_URI"] == {"name": "env", "key": "PREDICTION_STORE_URI"}
    assert refs["API_TOKEN"] == {"name": "env", "key": "API_TOKEN", "optional": True}
    monitor = pod_spec(one(objects, "CronJob", f"{RELEASE}-monitor"))["containers"][0]
    assert all(
        _secret_keys(monitor)[k]["optional"] is True
        for k in ("ALERT_WEBHOOK_URL", "SMTP_USER", "SMTP_PASSWORD")
    )
    # a Secret with the store only: the optional keys stay unset, as the kubelet leaves them
    provided = {
        "kind": "Secret",
        "metadata": {"name": "env"},
        "stringData": {"PREDICTION_STORE_URI": "mongodb://m/reggaeton"},
    }
    env = container_env(serving, objects + [provided], POD)
    assert env["PREDICTION_STORE_URI"] == "mongodb://m/reggaeton" and "API_TOKEN" not in env
    asserted = render(
        helm, tmp_path, {"existingSecret": "env", "existingSecretOptions": {"hasApiToken": True}}
    )
    serving = pod_spec(one(asserted, "Deployment", RELEASE))["containers"][0]
    assert _secret_keys(serving)["API_TOKEN"] == {"name": "env", "key": "API_TOKEN"}
    with pytest.raises(KeyError, match="API_TOKEN"):  # the kubelet would not start it
        container_env(serving, asserted + [provided], POD)


def test_pod_env_optional_references_follow_the_kubelet():
    objects = [
        {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"A": "1"}},
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"B": "from-cm"}},
    ]

    def ref(name, key, optional=None, kind="secretKeyRef"):
        body = {"name": name, "key": key, **({} if optional is None else {"optional": optional})}
        return {"name": key, "valueFrom": {kind: body}}

    container = {
        "envFrom": [
            {"configMapRef": {"name": "c"}},
            {"secretRef": {"name": "absent", "optional": True}},
        ],
        "env": [
            ref("s", "A"),
            ref("s", "B", True),
            ref("absent", "C", True),
            ref("c", "D", True, "configMapKeyRef"),
        ],
    }
    # B keeps the ConfigMap's value: an optional missing key sets nothing
    assert container_env(container, objects, POD) == {"A": "1", "B": "from-cm"}
    for strict in (ref("s", "B"), ref("s", "B", False), ref("absent", "A")):
        with pytest.raises(KeyError):
            container_env({"env": [strict]}, objects, POD)
    with pytest.raises(KeyError):
        container_env({"envFrom": [{"secretRef": {"name": "absent"}}]}, objects, POD)
    with pytest.raises(NotImplementedError):
        container_env({"env": [ref("s", "A", "yes")]}, objects, POD)


# -- rotation of an existing Secret -------------------------------------------------------------
def _pod_annotations(objects) -> dict[str, dict[str, str]]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": pod_metadata(o).get("annotations") or {}
        for o in objects
        if o["kind"] in ("Deployment", "CronJob")
        and o["metadata"]["name"].startswith(RELEASE)
        and not o["metadata"]["name"].endswith(("mlflow", "mongodb"))
    }


def test_existing_secret_checksum_rolls_the_pods_that_use_it(helm, tmp_path):
    values = {"existingSecret": "env"}
    before = _pod_annotations(render(helm, tmp_path, values))
    assert before and all("checksum/existing-secret" not in a for a in before.values())
    # `helm template` cannot read the cluster: lookup finds nothing, no hash is invented
    assert all("checksum/secret" not in a for a in before.values())
    rotated = {}
    for checksum in ("1" * 64, "2" * 64):
        objects = render(
            helm, tmp_path, {**values, "existingSecretOptions": {"checksum": checksum}}
        )
        rotated[checksum] = _pod_annotations(objects)
        for where, pod_annotations in rotated[checksum].items():
            assert pod_annotations["checksum/existing-secret"] == checksum, where
    assert rotated["1" * 64] != rotated["2" * 64]


def test_a_rendered_secret_change_rolls_the_pods(helm, tmp_path):
    before = _pod_annotations(render(helm, tmp_path, {}))
    after = _pod_annotations(render(helm, tmp_path, {"secret": {"smtpPassword": "new"}}))
    for where in before:
        assert before[where]["checksum/secret"] != after[where]["checksum/secret"], where


# -- one shared prediction store ---------------------------------------------------------------
def test_the_default_store_is_shared(rendered):
    objects = rendered[("defaults", KUBE_VERSIONS[-1])]
    assert one(objects, "Deployment", RELEASE)["spec"]["replicas"] >= 2
    one(objects, "StatefulSet", f"{RELEASE}-mongodb")
    uri = one(objects, "Secret", RELEASE)["stringData"]["PREDICTION_STORE_URI"]
    assert uri == f"mongodb://{RELEASE}-mongodb:27017/reggaeton"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"replicaCount": 2}, "replicaCount is 2"),
        ({"replicaCount": 1, "autoscaling": {"enabled": True}}, "autoscaling is enabled"),
        ({"replicaCount": 1}, "monitor.enabled is true"),
        (
            {"replicaCount": 3, "secret": {"predictionStoreUri": "sqlite:///var/p.db"}},
            "replicaCount is 3",
        ),
        (
            {
                "replicaCount": 2,
                "secret": {"predictionStoreUri": "sqlite:////home/bentoml/bento/src/var/p.db"},
            },
            "replicaCount",
        ),
        (
            {"replicaCount": 2, "secret": {"predictionStoreUri": "sqlite:////tmp/p.db"}},
            "replicaCount",
        ),
    ],
)
def test_several_pods_or_a_monitor_on_per_pod_sqlite_are_refused(helm, tmp_path, values, reason):
    stderr = refused(helm, tmp_path, {"mongodb": {"enabled": False}, **values})
    assert "SQLite file inside each serving pod" in stderr and reason in stderr, stderr
    assert "mongodb.enabled=true" in stderr


def test_explicit_shared_or_single_pod_stores_render(helm, tmp_path):
    objects = render(helm, tmp_path, {**SHARED_SQLITE, "replicaCount": 3})
    assert not by_kind(objects, "StatefulSet")
    render(helm, tmp_path, {**SHARED_SQLITE, "autoscaling": {"enabled": True}})
    render(
        helm,
        tmp_path,
        {"mongodb": {"enabled": False}, "replicaCount": 1, "monitor": {"enabled": False}},
    )
    render(helm, tmp_path, {"mongodb": {"enabled": False}, "existingSecret": "env"})
    render(
        helm,
        tmp_path,
        {"mongodb": {"enabled": False}, "secret": {"predictionStoreUri": "mongodb://m/reggaeton"}},
    )


# -- the spill is drained on shutdown ----------------------------------------------------------
def test_the_grace_period_holds_the_spill_drain(helm, tmp_path):
    objects = render(helm, tmp_path, {})
    config = one(objects, "ConfigMap", RELEASE)["data"]
    spec = pod_spec(one(objects, "Deployment", RELEASE))
    drain = int(config["PREDICTION_SPILL_DRAIN_S"])
    sleep = int(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    assert drain >= 10 and spec["terminationGracePeriodSeconds"] >= sleep + drain + 15
    stderr = refused(helm, tmp_path, {"terminationGracePeriodSeconds": 30})
    assert "spillDrainSeconds" in stderr and "Raise terminationGracePeriodSeconds to 40" in stderr
    render(
        helm,
        tmp_path,
        {
            "terminationGracePeriodSeconds": 30,
            "config": {"predictionLog": {"spillDrainSeconds": 10}},
        },
    )


def test_the_spill_files_fit_the_scratch_volume(helm, tmp_path):
    """2 workers x (spill + rejects) x the cap + 128 MiB within the var/ emptyDir's sizeLimit:
    past it the kubelet evicts the pod and deletes the spill with it. Before: 4 x 256 MiB
    = exactly the 1 GiB limit, with the rest of var/ on top."""
    import re

    from chart_helpers import ROOT

    source = (ROOT / "service" / "service.py").read_text()
    assert re.search(r"^WORKERS = 2$", source, re.M), "the chart's check assumes 2 workers"
    objects = render(helm, tmp_path, {})
    cap = int(one(objects, "ConfigMap", RELEASE)["data"]["PREDICTION_SPILL_MAX_BYTES"])
    volumes = {v["name"]: v for v in pod_spec(one(objects, "Deployment", RELEASE))["volumes"]}
    limit = volumes["scratch-var"]["emptyDir"]["sizeLimit"]
    assert limit == "1Gi" and 2 * 2 * cap + 128 * 2**20 <= 2**30
    for values in (
        {"config": {"predictionLog": {"spillMaxBytes": 268435456}}},
        {"config": {"predictionLog": {"spillMaxBytes": 0}}},
        {"scratch": {"sizeLimit": "512Mi"}},
    ):
        assert "does not fit scratch.sizeLimit" in refused(helm, tmp_path, values)
    render(
        helm,
        tmp_path,
        {
            "scratch": {"sizeLimit": "2Gi"},
            "config": {"predictionLog": {"spillMaxBytes": 268435456}},
        },
    )


def test_a_rotated_existing_secret_rolls_the_pods_through_lookup(helm, tmp_path):
    """At install/upgrade (a cluster to read) the live Secret's data is hashed."""
    values = {"existingSecret": "env", "mongodb": {"enabled": False}}

    kinds = {(o["apiVersion"], o["kind"]) for o in render(helm, tmp_path, values)}

    def annotations(uri: str) -> dict[str, dict[str, str]]:
        with LookupApi({"PREDICTION_STORE_URI": uri}, kinds) as api:
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
        return _pod_annotations(load_objects(result.stdout))

    before, after = annotations("mongodb://a/reggaeton"), annotations("mongodb://b/reggaeton")
    for where in before:
        assert before[where]["checksum/secret"] != after[where]["checksum/secret"], where
    assert annotations("mongodb://a/reggaeton") == before  # unchanged Secret: no rollout
    values["existingSecretOptions"] = {"lookup": False}
    assert all("checksum/secret" not in a for a in annotations("mongodb://b/x").values())
