"""The bento definition ships what the service imports, with the locked versions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pathspec
import yaml

REPO = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            out[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return out


def test_service_requirements_are_pinned_to_the_lock():
    service, lock = _pins(REPO / "service" / "requirements.txt"), _pins(REPO / "requirements.lock")
    lines = [
        ln
        for ln in (REPO / "service" / "requirements.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert len(service) == len(lines), "every requirement line must be an exact pin"
    assert {name: lock.get(name) for name in service} == service
    for needed in (
        "bentoml",
        "scikit-learn",
        "numpy",
        "grpcio",
        "grpcio-health-checking",
        "protobuf",
        "orjson",
        "starlette",
        "fastapi",
        "pymongo",
        "prometheus-client",
    ):
        assert needed in service, needed


def _modules_the_service_imports() -> list[str]:
    """Project files imported by the service (in a fresh interpreter: no test imports)."""
    code = (
        "import sys, service.service, service.grpc.server, reggaeton.records.sqlite, "
        "reggaeton.records.mongo\n"
        "print('\\n'.join(m.__file__ for n, m in list(sys.modules.items())"
        " if n.split('.')[0] in ('service', 'reggaeton') and getattr(m, '__file__', None)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(Path(f).resolve().relative_to(REPO).as_posix() for f in out)


def test_bentofile_includes_every_module_the_service_imports():
    bentofile = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    assert bentofile["service"] == "service.service:ReggaetonService"
    assert bentofile["python"]["requirements_txt"] == "./service/requirements.txt"
    include = bentofile["include"]
    used = _modules_the_service_imports()
    assert "service/service.py" in used
    spec = pathspec.PathSpec.from_lines("gitwildmatch", include)  # BentoML's own matcher
    missing = [f for f in used if not spec.match_file(f)]
    assert not missing, f"bentofile.yaml does not include {missing}"
    assert "service/grpc/reggaeton/v1/reggaeton.proto" in include
    assert "models" not in bentofile  # the model comes from the store (see bentofile header)
