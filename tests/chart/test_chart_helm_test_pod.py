"""The `helm test` pod's checker, run against a real `bentoml serve` whose BENTOML_HOME is a
read-only bind mount (as the serving pods mount the model-store PVC)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from chart_helpers import ROOT, helm_template, load_objects

pytestmark = pytest.mark.integration


def _read_only_mounts_work() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def checker(helm, tmp_path_factory) -> Path:
    """The Python script of the rendered test pod, as a file."""
    result = helm_template(helm, extra_args=["--show-only", "templates/tests/test-predict.yaml"])
    assert result.returncode == 0, result.stderr
    (pod,) = load_objects(result.stdout)
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "-c"]
    path = tmp_path_factory.mktemp("checker") / "check.py"
    path.write_text(container["args"][0])
    return path


@pytest.fixture(scope="module")
def read_only_service(trained_home, tmp_path_factory):
    if not _read_only_mounts_work():
        pytest.skip("needs root and `unshare -m` for a read-only bind mount")
    tmp = tmp_path_factory.mktemp("ro-serve")
    store, work = tmp / "store", tmp / "work"
    shutil.copytree(trained_home, store)
    for name in ("bentos", "envs", "tmp", "models"):  # what the bootstrap init container creates
        (store / name).mkdir(exist_ok=True)
    port = _free_port()
    work.mkdir()
    env = {
        **os.environ,
        "HOME": str(work),
        "BENTOML_HOME": str(store),
        "BENTOML_DO_NOT_TRACK": "true",
        "GRPC_PORT": "0",
        "PREDICTION_STORE_URI": f"sqlite:///{work / 'predictions.db'}",
        "PREDICTION_SPILL_DIR": str(work / "spill"),
        "MPLCONFIGDIR": str(work / "mpl"),
    }
    script = (
        f"mount --bind {store} {store} && mount -o remount,bind,ro {store} || exit 97\n"
        f"exec {Path(sys.executable).parent / 'bentoml'} serve "
        f"service.service:ReggaetonService --host 127.0.0.1 --port {port}\n"
    )
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", script],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _ready(f"{url}/readyz"):
            tail = (tmp / "serve.log").read_text()[-3000:]
            assert proc.poll() is None, tail
            assert time.monotonic() < deadline, "not ready: " + tail
            time.sleep(0.5)
        yield url, store
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _run_checker(checker: Path, url: str, expected: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREDICT_URL": f"{url}/predict-song", "EXPECTED_LABEL": expected}
    return subprocess.run(
        [sys.executable, str(checker)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_test_pod_passes_against_the_service_on_a_read_only_store(checker, read_only_service):
    url, _ = read_only_service
    result = _run_checker(checker, url, "reggaeton")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: the example song is reggaeton" in result.stdout


def test_the_test_pod_fails_on_a_wrong_answer(checker, read_only_service):
    url, _ = read_only_service
    result = _run_checker(checker, url, "other")
    assert result.returncode != 0
    assert "expected 'other'" in result.stderr
