"""Roll the serving Deployment to the promoted version (the Kubernetes train Job's last step).

The train CronJob runs ``python -m training.train --promoted-tag-file F ... && python -m
training.rollout --tag-file F``. When that training's gate promoted its version (the file holds
the tag), this patches the ``MODEL_TAG`` env var of the serving container, which starts a
rolling update; ``kubectl rollout undo`` (``make rollback``) is the way back. When the training
did not promote (the file is empty), nothing is patched, so a rejected candidate never undoes a
rollback; when the tag is already the one deployed, nothing is patched either.

In a cluster the Deployment's ``MODEL_TAG`` is the only thing that decides which version pods
serve (the chart turns the promotion-record watcher off), so every revision in the rollout
history must name its version: when the live Deployment has no ``MODEL_TAG`` yet (the first
install serves the bootstrap's version), the version it serves is pinned first, in its own
revision, and only then is the new one set. ``kubectl rollout undo`` then returns to it.

Environment (set by the chart): see :class:`RolloutSettings`, and ``BENTOML_HOME``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from reggaeton.registry import Registry, home_from_env
from reggaeton.settings import EnvSettings, load_env

log = logging.getLogger("training.rollout")


class RolloutSettings(EnvSettings):
    """Defaults of the command-line options, from the train Job's environment.

    Attributes:
        deployment: The serving Deployment (``ROLLOUT_DEPLOYMENT``); required, by flag or here.
        container: Its serving container (``ROLLOUT_CONTAINER``).
        namespace: Namespace of the Deployment (``POD_NAMESPACE``: the Job's own).
    """

    deployment: str | None = Field(None, validation_alias="ROLLOUT_DEPLOYMENT")
    container: str = Field("service", validation_alias="ROLLOUT_CONTAINER")
    namespace: str = Field("default", validation_alias="POD_NAMESPACE")


def deployed_tag(deployment: Mapping[str, Any], container: str) -> str | None:
    """The ``MODEL_TAG`` value of ``container`` in a Deployment (as a dict), or None.

    Raises:
        KeyError: when the Deployment has no container of that name.
    """
    for spec in deployment["spec"]["template"]["spec"]["containers"]:
        if spec["name"] == container:
            for env in spec.get("env") or []:
                if env.get("name") == "MODEL_TAG":
                    return env.get("value") or None
            return None
    raise KeyError(f"deployment has no container named {container!r}")


def model_tag_patch(container: str, tag: str) -> dict[str, Any]:
    """Strategic-merge patch that sets ``MODEL_TAG`` of one container (env merges by name)."""
    env = [{"name": "MODEL_TAG", "value": tag}]
    return {"spec": {"template": {"spec": {"containers": [{"name": container, "env": env}]}}}}


def rollout(
    apps_api: Any, name: str, namespace: str, container: str, tag: str, served: str | None = None
) -> bool:
    """Patch the Deployment to ``tag`` unless it already runs it.

    Args:
        apps_api: A ``kubernetes.client.AppsV1Api`` (or anything with the same two methods).
        name: Deployment name.
        namespace: Its namespace.
        container: Serving container name.
        tag: Model tag to deploy.
        served: The version pods serve while the Deployment has no ``MODEL_TAG`` (the one
            promoted before ``tag``); it is pinned in a revision of its own first, so that a
            rollback returns to it instead of to "whatever the promotion record says".

    Returns:
        True when a patch was sent.
    """
    current = apps_api.read_namespaced_deployment(name, namespace)
    as_dict = current.to_dict() if hasattr(current, "to_dict") else current
    # to_dict() uses snake_case keys; every key read here is spelled the same in both.
    deployed = deployed_tag(as_dict, container)
    if deployed == tag:
        log.info("deployment %s/%s already serves %s: nothing to do", namespace, name, tag)
        return False
    if deployed is None and served and served != tag:
        apps_api.patch_namespaced_deployment(name, namespace, model_tag_patch(container, served))
        log.info(
            "deployment %s/%s pinned to the served MODEL_TAG=%s (rollback target)",
            namespace,
            name,
            served,
        )
    apps_api.patch_namespaced_deployment(name, namespace, model_tag_patch(container, tag))
    log.info("deployment %s/%s patched to MODEL_TAG=%s", namespace, name, tag)
    return True


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: exit 0 when rolled out or already current, 1 on error."""
    parser = argparse.ArgumentParser(
        prog="python -m training.rollout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env = load_env(RolloutSettings, os.environ)
    parser.add_argument("--deployment", default=env.deployment)
    parser.add_argument("--container", default=env.container)
    parser.add_argument("--namespace", default=env.namespace)
    parser.add_argument("--tag", help="tag to deploy (default: the promoted version)")
    parser.add_argument(
        "--tag-file",
        type=Path,
        metavar="FILE",
        help="deploy the tag in FILE (training.train --promoted-tag-file); "
        "missing or empty: this training promoted nothing, do nothing",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.deployment:
        parser.error("--deployment or ROLLOUT_DEPLOYMENT is required")
    if args.tag_file is not None:
        text = args.tag_file.read_text().strip() if args.tag_file.exists() else ""
        if not text:
            log.info(
                "the training promoted no version (%s is empty): nothing to roll out", args.tag_file
            )
            return 0
        args.tag = text
    registry = Registry(home_from_env(os.environ))
    tag = args.tag or registry.promotions.current()
    if not tag:
        log.error("no promoted version to roll out")
        return 1
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    served = promoted_before(registry.promotions.history(), tag)
    rollout(client.AppsV1Api(), args.deployment, args.namespace, args.container, tag, served)
    return 0


def promoted_before(history: list[dict[str, Any]], tag: str) -> str | None:
    """The version that was current when ``tag`` was last promoted (None: none or unknown)."""
    for entry in reversed(history):
        if entry.get("action") == "promote" and entry.get("tag") == tag:
            return entry.get("previous")
    return None


if __name__ == "__main__":
    sys.exit(main())
