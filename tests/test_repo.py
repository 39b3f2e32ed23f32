"""Repository-wide contracts: lint, pinned dependencies, no import-path hacks, CI entry."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tracked_python_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / p for p in out]


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [
        d for group in project["optional-dependencies"].values() for d in group
    ]
    loose = [d for d in deps if not re.search(r"==\d", d)]
    assert not loose, f"unpinned dependencies: {loose}"


def test_lock_covers_the_pins():
    lock = (ROOT / "requirements.lock").read_text().lower()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        name, version = re.split(r"(?:\[[^\]]*\])?==", dep)
        normalized = name.lower().replace("_", "-")
        pattern = rf"^{re.escape(normalized)}=={re.escape(version)}$"
        assert re.search(pattern, lock.replace("_", "-"), re.M), f"{dep} is not in the lock"


def test_no_sys_path_hacks_outside_tests():
    offenders = [
        str(p.relative_to(ROOT))
        for p in _tracked_python_files()
        if "tests" not in p.relative_to(ROOT).parts
        and re.search(r"sys\.path\.(append|insert)", p.read_text())
    ]
    assert not offenders


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_starts_with_the_two_setup_commands():
    head = (ROOT / "README.md").read_text().splitlines()[:12]
    text = "\n".join(head)
    assert "make serve" in text and "make test" in text
