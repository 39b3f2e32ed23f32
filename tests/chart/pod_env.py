"""A container's environment as the kubelet builds it from rendered objects.

Shared by the fast env guard (``test_chart_env.py``) and the pod runner (``podrunner.py``):
``envFrom`` sources in order, then ``env`` entries (later wins), with ConfigMap and Secret
references resolved from the rendered objects plus any extra objects a test provides (an
``existingSecret`` created out of band). Anything it does not implement raises.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

FIELD_REFS = ("metadata.namespace", "metadata.name")
"""``fieldRef`` paths supported; any other one raises ``NotImplementedError``."""


def object_data(objects: Sequence[Mapping[str, Any]], kind: str, name: str) -> dict[str, str]:
    """The key/value pairs of the ConfigMap or Secret ``name`` (Secret data base64-decoded).

    Raises:
        KeyError: when no such object is among ``objects``.
    """
    for obj in objects:
        if obj.get("kind") == kind and obj["metadata"]["name"] == name:
            data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
            if kind == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in data.items()}
                data.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
            return data
    raise KeyError(f"{kind}/{name} is referenced but neither rendered nor provided")


def _source(ref: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    if set(ref) - {"configMapRef", "secretRef", "prefix"} or "prefix" in ref:
        raise NotImplementedError(f"envFrom entry {dict(ref)} is not supported")
    if "configMapRef" in ref:
        return "ConfigMap", ref["configMapRef"]
    return "Secret", ref["secretRef"]


def _check_ref(ref: Mapping[str, Any]) -> None:
    if ref.get("optional"):
        raise NotImplementedError(f"optional reference {dict(ref)} is not supported")


def container_env(container: Mapping[str, Any], objects: Sequence[Mapping[str, Any]],
                  pod: Mapping[str, str]) -> dict[str, str]:
    """The environment of ``container``.

    Args:
        container: A container of a rendered pod spec.
        objects: Rendered (and provided) objects holding the referenced ConfigMaps/Secrets.
        pod: ``{"metadata.namespace": ..., "metadata.name": ...}`` for ``fieldRef``.

    Raises:
        NotImplementedError: for a reference kind or option the resolver does not implement.
        KeyError: for a missing ConfigMap, Secret or key.
    """
    env: dict[str, str] = {}
    for ref in container.get("envFrom") or []:
        kind, source = _source(ref)
        _check_ref(source)
        env.update(object_data(objects, kind, source["name"]))
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
            continue
        value_from = entry.get("valueFrom") or {}
        if "fieldRef" in value_from:
            path = value_from["fieldRef"]["fieldPath"]
            if path not in FIELD_REFS:
                raise NotImplementedError(f"fieldRef {path} is not supported")
            env[entry["name"]] = pod[path]
        elif "configMapKeyRef" in value_from or "secretKeyRef" in value_from:
            kind = "ConfigMap" if "configMapKeyRef" in value_from else "Secret"
            ref = value_from.get("configMapKeyRef") or value_from["secretKeyRef"]
            _check_ref(ref)
            env[entry["name"]] = object_data(objects, kind, ref["name"])[ref["key"]]
        elif not value_from:
            env[entry["name"]] = ""
        else:
            raise NotImplementedError(f"env {entry['name']}: valueFrom {value_from} unsupported")
    return env
