"""The benchmark's own virtualenv for MLServer, created on demand so the project lock stays clean.

MLServer 1.7.1 pins its own web stack (FastAPI, Starlette 0.46, protobuf 6) that conflicts with
BentoML's, so it cannot share ``.venv``. The baseline (Flask + gunicorn) runs from ``.venv``:
both are already in the project's lock (MLflow depends on them).
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

MLSERVER_PINS = (
    "mlserver==1.7.1",
    "mlserver-sklearn==1.7.1",
    "uvloop==0.21.0",  # newer uvloop kills MLServer's inference worker at start
)
SHARED_WITH_PROJECT = ("scikit-learn", "numpy", "scipy", "joblib")
"""Same versions as ``.venv``, so the pickled pipeline loads identically on both sides."""


def mlserver_requirements() -> list[str]:
    """Pinned requirement lines for the MLServer venv."""
    return [*MLSERVER_PINS, *(f"{name}=={version(name)}" for name in SHARED_WITH_PROJECT)]


def _venv_ok(venv: Path) -> bool:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "mlserver").exists() or not python.exists():
        return False
    probe = "import mlserver_sklearn, sklearn; print(sklearn.__version__)"
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return out.returncode == 0 and out.stdout.strip() == version("scikit-learn")


def ensure_mlserver_venv(venv: Path) -> Path:
    """Create (once) a venv with MLServer + mlserver-sklearn; return its ``mlserver`` binary."""
    if not _venv_ok(venv):
        print(f"[bench] creating {venv} with {' '.join(mlserver_requirements())}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, *mlserver_requirements()], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], check=True)
    return venv / "bin" / "mlserver"
