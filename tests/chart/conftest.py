"""Fixtures of the chart tests: helm/kubectl binaries and the chart rendered per value set."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from chart_helpers import (
    KUBE_VERSIONS,
    VALUE_SETS,
    helm_template,
    load_objects,
    require_tool,
)


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of helm: fails under make/CI when absent, skips otherwise."""
    return require_tool("helm")


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of kubectl: fails under make/CI when absent, skips otherwise."""
    return require_tool("kubectl")


@pytest.fixture(scope="session")
def rendered(
    helm: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every value set rendered for every Kubernetes version: {(set, version): objects}."""
    tmp = tmp_path_factory.mktemp("values")
    jobs = [(name, version) for name in VALUE_SETS for version in KUBE_VERSIONS]

    def render(job: tuple[str, str]) -> list[dict[str, Any]]:
        name, version = job
        files, values = VALUE_SETS[name]
        result = helm_template(helm, values, files, kube_version=version, tmp_dir=tmp)
        assert result.returncode == 0, f"{name} @ {version}: {result.stderr}"
        return load_objects(result.stdout)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(jobs, pool.map(render, jobs), strict=True))
