"""service.wait_model: the serving pods' init container waits for the bootstrapped version."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time


def _wait(home, timeout, tag=""):
    env = {"BENTOML_HOME": str(home), "MODEL_TAG": tag, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "service.wait_model",
            "--timeout",
            str(timeout),
            "--interval",
            "0.2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_empty_store_times_out_with_exit_1(tmp_path):
    result = _wait(tmp_path / "empty", 1)
    assert result.returncode == 1
    assert "is the bootstrap Job done?" in result.stderr


def test_it_returns_once_the_bootstrap_has_promoted_a_version(tmp_path, trained_home):
    home = tmp_path / "store"
    home.mkdir()

    def bootstrap_later() -> None:
        time.sleep(1.5)
        shutil.copytree(trained_home, home, dirs_exist_ok=True)

    thread = threading.Thread(target=bootstrap_later)
    thread.start()
    result = _wait(home, 60)
    thread.join()
    assert result.returncode == 0, result.stderr
    assert "waiting for a promoted version" in result.stderr
    assert "serves reggaeton_clf:" in result.stderr


def test_a_pinned_tag_that_is_not_in_the_store_keeps_it_waiting(tmp_path, trained_home):
    home = tmp_path / "store"
    shutil.copytree(trained_home, home)
    assert _wait(home, 1, tag="reggaeton_clf:doesnotexist").returncode == 1
    assert _wait(home, 5).returncode == 0
