"""/readyz is green only once a model is loaded; a later promotion makes the service ready.

The watcher's tick is set far beyond the test (300 s): only the check an unready worker makes
when it is asked (readiness or a prediction) can pick the promotion up in time.
"""

from __future__ import annotations

import json
import shutil

import pytest
from service_helpers import SONG, serve, wait_until

from reggaeton.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_not_ready_without_a_promoted_version_then_ready_after_promotion(trained_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    registry = Registry(home)
    tag = registry.promotions.current()
    registry.promotions.path.write_text(json.dumps({"current": None, "history": []}))
    with serve(
        home,
        f"sqlite:///{tmp_path / 'p.db'}",
        tmp_path,
        wait_ready=False,
        MODEL_WATCH_INTERVAL="300",
    ) as server:
        wait_until(lambda: _status(server, "/livez") == 200, 120, "the service to be alive")
        assert _status(server, "/readyz") == 503
        status, body = server.request("POST", "/predict-song", {"data": SONG})
        assert status == 503 and body["error"] == "not_ready"
        registry.promotions.promote(tag, "test: first promotion")
        wait_until(lambda: _status(server, "/readyz") == 200, 60, "readiness after promotion")
        # /readyz answers for the worker it reached; a sibling may still be loading the
        # version. Every worker must serve it within seconds: 20 answers in a row, each
        # either the promoted version or a clean not_ready.
        answers: list[tuple[int, str | None]] = []

        def twenty_in_a_row() -> bool:
            status, body = server.request("POST", "/predict-song", {"data": SONG})
            answers.append((status, body.get("model_version") or body.get("error")))
            return answers[-20:] == [(200, tag)] * 20

        wait_until(twenty_in_a_row, 20, "every worker serving the promoted version")
        assert set(answers) <= {(200, tag), (503, "not_ready")}, answers


def _status(server, path: str) -> int | None:
    try:
        return server.request("GET", path, timeout=2)[0]
    except OSError:
        return None
