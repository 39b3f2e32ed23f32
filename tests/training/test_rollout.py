"""training.rollout: patch MODEL_TAG of the serving Deployment only when it changes."""

from __future__ import annotations

import pytest
from kubernetes import client

from training.rollout import deployed_tag, model_tag_patch, rollout


def _deployment(tag: str | None) -> client.V1Deployment:
    env = [client.V1EnvVar(name="GRPC_PORT", value="50051")]
    if tag is not None:
        env.append(client.V1EnvVar(name="MODEL_TAG", value=tag))
    containers = [
        client.V1Container(name="sidecar", image="x:1"),
        client.V1Container(name="service", image="reggaeton:1", env=env),
    ]
    return client.V1Deployment(
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "r"}),
            template=client.V1PodTemplateSpec(spec=client.V1PodSpec(containers=containers)),
        )
    )


class FakeApps:
    def __init__(self, deployment: client.V1Deployment) -> None:
        self.deployment = deployment
        self.patches: list[tuple[str, str, dict]] = []

    def read_namespaced_deployment(self, name: str, namespace: str) -> client.V1Deployment:
        return self.deployment

    def patch_namespaced_deployment(self, name: str, namespace: str, body: dict) -> None:
        self.patches.append((name, namespace, body))


def test_patch_sets_model_tag_of_the_named_container():
    patch = model_tag_patch("service", "reggaeton_clf:v2")
    containers = patch["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {"name": "service", "env": [{"name": "MODEL_TAG", "value": "reggaeton_clf:v2"}]}
    ]


def test_rollout_patches_when_the_tag_changes():
    api = FakeApps(_deployment("reggaeton_clf:v1"))
    assert rollout(api, "reggaeton", "ml", "service", "reggaeton_clf:v2") is True
    assert api.patches == [("reggaeton", "ml", model_tag_patch("service", "reggaeton_clf:v2"))]


def test_rollout_does_nothing_when_already_current():
    api = FakeApps(_deployment("reggaeton_clf:v2"))
    assert rollout(api, "reggaeton", "ml", "service", "reggaeton_clf:v2") is False
    assert api.patches == []


def test_unset_tag_counts_as_different():
    dep = _deployment(None).to_dict()
    assert deployed_tag(dep, "service") is None
    with pytest.raises(KeyError, match="no container named 'web'"):
        deployed_tag(dep, "web")


def test_an_empty_tag_file_means_this_training_promoted_nothing(tmp_path, caplog):
    """A rejected candidate must not re-patch MODEL_TAG (that would undo a rollback): rollout
    returns before it even looks for a cluster."""
    import logging

    from training.rollout import main

    tag_file = tmp_path / "promoted-tag"
    tag_file.write_text("")
    with caplog.at_level(logging.INFO, logger="training.rollout"):
        assert main(["--deployment", "reggaeton", "--tag-file", str(tag_file)]) == 0
        assert main(["--deployment", "reggaeton", "--tag-file", str(tmp_path / "none")]) == 0
    assert "promoted no version" in caplog.text


def test_train_writes_the_tag_file_only_when_it_promotes(home_copy, monkeypatch, tmp_path):
    from reggaeton.registry import Registry
    from training.config import ORIGINAL_CONFIG
    from training.train import main as train_main

    monkeypatch.setenv("BENTOML_HOME", str(home_copy))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    tag_file = tmp_path / "promoted-tag"
    tag_file.write_text("reggaeton_clf:stale\n")  # left by an earlier run: must be emptied
    worse = ["--config", str(ORIGINAL_CONFIG), "--set", "model.params.n_estimators=1"]
    worse += ["--set", "cv.folds=2"]
    assert train_main([*worse, "--promoted-tag-file", str(tag_file)]) == 0
    assert tag_file.read_text() == ""
    assert train_main([*worse, "--force", "--promoted-tag-file", str(tag_file)]) == 0
    assert tag_file.read_text().strip() == Registry(home_copy).promotions.current()


def test_an_unpinned_deployment_is_pinned_to_the_served_version_first():
    """Rollback target: without the pin, `rollout undo` went back to MODEL_TAG="" and the pods
    loaded the promotion record's current version, which is the new one."""
    api = FakeApps(_deployment(None))
    assert (
        rollout(api, "reggaeton", "ml", "service", "reggaeton_clf:v2", served="reggaeton_clf:v1")
        is True
    )
    assert api.patches == [
        ("reggaeton", "ml", model_tag_patch("service", "reggaeton_clf:v1")),
        ("reggaeton", "ml", model_tag_patch("service", "reggaeton_clf:v2")),
    ]


def test_a_pinned_deployment_gets_one_patch():
    api = FakeApps(_deployment("reggaeton_clf:v1"))
    rollout(api, "reggaeton", "ml", "service", "reggaeton_clf:v2", served="reggaeton_clf:v0")
    assert api.patches == [("reggaeton", "ml", model_tag_patch("service", "reggaeton_clf:v2"))]


def test_promoted_before_reads_the_promotion_history():
    from training.rollout import promoted_before

    history = [
        {"action": "promote", "tag": "v1", "previous": None},
        {"action": "reject", "tag": "v2", "previous": "v1"},
        {"action": "promote", "tag": "v3", "previous": "v1"},
    ]
    assert promoted_before(history, "v3") == "v1"
    assert promoted_before(history, "v1") is None
    assert promoted_before(history, "v9") is None


def test_options_default_to_the_jobs_environment(monkeypatch, tmp_path, caplog):
    """ROLLOUT_DEPLOYMENT stands in for --deployment; without either, the CLI refuses."""
    import logging

    from reggaeton.settings import load_env
    from training.rollout import RolloutSettings, main

    env = load_env(RolloutSettings, {"ROLLOUT_DEPLOYMENT": "web", "POD_NAMESPACE": "ml"})
    assert (env.deployment, env.container, env.namespace) == ("web", "service", "ml")
    monkeypatch.delenv("ROLLOUT_DEPLOYMENT", raising=False)
    with pytest.raises(SystemExit):
        main(["--tag-file", str(tmp_path / "none")])
    monkeypatch.setenv("ROLLOUT_DEPLOYMENT", "web")
    with caplog.at_level(logging.INFO, logger="training.rollout"):
        assert main(["--tag-file", str(tmp_path / "none")]) == 0
    assert "promoted no version" in caplog.text
