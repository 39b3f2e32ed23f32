"""helm lint --strict, the values schema (bad values are refused) and values.yaml hygiene."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from chart_helpers import CHART, ROOT, helm_template

BAD_VALUES = {
    "unknown top-level key": {"replicas": 3},
    "unknown nested key": {"monitor": {"schedul": "* * * * *"}},
    "string for an integer": {"replicaCount": "two"},
    "string for a boolean": {"autoscaling": {"enabled": "yes"}},
    "object for a string": {"image": {"tag": {"v": 1}}},
    "latest image tag": {"image": {"tag": "latest"}},
    "port out of range": {"service": {"port": 70000}},
    "unknown concurrency policy": {"monitor": {"concurrencyPolicy": "Sometimes"}},
    "resources without limits": {"resources": {"limits": None}},  # null deletes the default
    "root allowed": {"securityContext": {"runAsNonRoot": False}},
    "privilege escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "bad store URI": {"secret": {"predictionStoreUri": "postgres://x"}},
    "bad MODEL_TAG": {"modelTag": "no tag here"},
    "list for a map": {"podAnnotations": ["a"]},
    "unpinned mongodb image": {"mongodb": {"image": {"repository": "mongo", "tag": ""}}},
}


@pytest.mark.parametrize("values_file", [None, "k8s/values-dev.yaml", "k8s/values-prod.yaml"])
def test_helm_lint_strict_passes(helm, values_file):
    cmd = [helm, "lint", "--strict", str(CHART)]
    if values_file:
        cmd += ["-f", str(ROOT / values_file)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_schema_refuses_bad_values(helm, tmp_path, case):
    result = helm_template(helm, BAD_VALUES[case], tmp_dir=tmp_path)
    assert result.returncode != 0, f"{case}: accepted"
    assert "schema" in result.stderr, result.stderr


def test_schema_lists_every_top_level_value_and_refuses_others():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(values)


def _keys_without_comment(lines: list[str]) -> list[str]:
    """values.yaml keys whose line is not directly preceded by a comment line."""
    missing = []
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "- ")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        previous = lines[number - 1] if number else ""
        inside_list_item = any(
            lines[k].strip().startswith("- ") and len(lines[k]) - len(lines[k].lstrip()) < indent
            for k in range(number - 1, max(-1, number - 6), -1)
            if lines[k].strip() and not lines[k].strip().startswith("#")
        )
        parent_is_passthrough = False
        for k in range(number - 1, -1, -1):
            candidate = lines[k]
            if (
                candidate.strip()
                and not candidate.strip().startswith("#")
                and len(candidate) - len(candidate.lstrip()) < indent
            ):
                parent_is_passthrough = candidate.strip().rstrip(":") in PASSTHROUGH
                break
        if previous.strip().startswith("#") or inside_list_item or parent_is_passthrough:
            continue
        missing.append(f"{number + 1}: {stripped}")
    return missing


# Kubernetes objects given verbatim (their fields are Kubernetes', documented upstream).
PASSTHROUGH = {
    "podSecurityContext",
    "securityContext",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "httpGet",
    "requests",
    "limits",
    "capabilities",
    "seccompProfile",
    "annotations",
}


def test_every_value_is_commented():
    lines = (CHART / "values.yaml").read_text().splitlines()
    missing = _keys_without_comment(lines)
    assert not missing, "values without a comment:\n" + "\n".join(missing)
