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


def _check_ref(ref: Mapping[str, Any], allowed: set[str]) -> bool:
    """Whether ``ref`` is optional; raises for a field the resolver does not implement."""
    unknown = set(ref) - allowed
    if unknown:
        raise NotImplementedError(f"reference {dict(ref)}: field(s) {sorted(unknown)} unsupported")
    optional = ref.get("optional", False)
    if not isinstance(optional, bool):
        raise NotImplementedError(f"reference {dict(ref)}: optional must be a boolean")
    return optional


def _key_value(
    objects: Sequence[Mapping[str, Any]], kind: str, ref: Mapping[str, Any], optional: bool
) -> str | None:
    """The value of ``ref``'s key; None when an optional ConfigMap/Secret or key is missing
    (the kubelet then leaves the variable unset). A required one raises ``KeyError``."""
    try:
        data = object_data(objects, kind, ref["name"])
    except KeyError:
        if optional:
            return None
        raise
    if ref["key"] not in data:
        if optional:
            return None
        raise KeyError(
            f"{kind}/{ref['name']} has no key {ref['key']!r} (and the reference is "
            "not optional: the container would not start)"
        )
    return data[ref["key"]]


def container_env(
    container: Mapping[str, Any], objects: Sequence[Mapping[str, Any]], pod: Mapping[str, str]
) -> dict[str, str]:
    """The environment of ``container``.

    Args:
        container: A container of a rendered pod spec.
        objects: Rendered (and provided) objects holding the referenced ConfigMaps/Secrets.
        pod: ``{"metadata.namespace": ..., "metadata.name": ...}`` for ``fieldRef``.

    An ``optional`` reference to a missing ConfigMap, Secret or key sets nothing, as the
    kubelet does; a required one raises (the kubelet would not start the container).

    Raises:
        NotImplementedError: for a reference kind or option the resolver does not implement.
        KeyError: for a missing ConfigMap, Secret or key of a required reference.
    """
    env: dict[str, str] = {}
    for ref in container.get("envFrom") or []:
        kind, source = _source(ref)
        optional = _check_ref(source, {"name", "optional"})
        try:
            env.update(object_data(objects, kind, source["name"]))
        except KeyError:
            if not optional:
                raise
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
            value = _key_value(objects, kind, ref, _check_ref(ref, {"name", "key", "optional"}))
            if value is not None:  # an optional missing key sets nothing (an earlier value stays)
                env[entry["name"]] = value
        elif not value_from:
            env[entry["name"]] = ""
        else:
            raise NotImplementedError(f"env {entry['name']}: valueFrom {value_from} unsupported")
    return env
