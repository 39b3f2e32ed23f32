"""Build the service and jobs images for the container tests, the way ``make image`` does.

Both Bentos are built into a temporary BentoML home from this checkout, then containerized by
``scripts/image.sh`` (the script ``make image`` runs). The base image is ``BASE_IMAGE`` when
set, else ``python:3.11-slim`` when the engine has it, else the Debian base that
``make base-image`` builds from packages (for machines that cannot reach Docker Hub). The
system CA bundle (or ``CA_BUNDLE``) is trusted in the build, for TLS-intercepting proxies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from chart_helpers import ROOT

PUBLIC_BASE = "python:3.11-slim"
DEBIAN_BASE = "reggaeton-base:bookworm"
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def app_version() -> str:
    """The chart's appVersion: the tag ``make image`` gives both images."""
    for line in (ROOT / "charts" / "reggaeton" / "Chart.yaml").read_text().splitlines():
        if line.startswith("appVersion:"):
            return line.split(":", 1)[1].strip().strip('"')
    raise AssertionError("Chart.yaml has no appVersion")


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> None:
    result = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, f"{' '.join(cmd)}:\n{output}"


def _has_image(name: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", name], capture_output=True, check=False
        ).returncode
        == 0
    )


def docker_answers() -> str | None:
    """None when a Docker daemon answers, else why not."""
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if result.returncode == 0 else (result.stderr.strip() or "docker info failed")


def build_images(bento_home: Path) -> dict[str, str]:
    """Build both images; returns ``{"service": ref, "jobs": ref, "sizes": ...}``.

    Skips the calling tests when no Docker daemon answers.
    """
    why = docker_answers()
    if why:
        pytest.skip(f"container tests need a Docker daemon: {why}")
    env = dict(
        os.environ,
        BENTOML_HOME=str(bento_home),
        BENTOML_DO_NOT_TRACK="true",
        BENTOML=str(Path(sys.executable).parent / "bentoml"),
    )
    base = os.environ.get("BASE_IMAGE") or (PUBLIC_BASE if _has_image(PUBLIC_BASE) else "")
    if not base:
        _run(["bash", "scripts/base_image.sh", DEBIAN_BASE], env, timeout=900)
        base = DEBIAN_BASE
    env["BASE_IMAGE"] = base
    if not os.environ.get("CA_BUNDLE") and SYSTEM_CA.is_file():
        env["CA_BUNDLE"] = str(SYSTEM_CA)
    _run([env["BENTOML"], "build", "."], env, timeout=600)
    _run([env["BENTOML"], "build", "-f", "k8s/bentofile.jobs.yaml", "."], env, timeout=600)
    tag = app_version()
    _run(["bash", "scripts/image.sh", tag], env, timeout=1800)
    images = {"service": f"reggaeton_service:{tag}", "jobs": f"reggaeton_jobs:{tag}"}
    sizes = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", *images.values()],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    images["sizes"] = ", ".join(
        f"{ref} {int(size) / 1e6:.0f} MB" for ref, size in zip(images.values(), sizes, strict=True)
    )
    return images
