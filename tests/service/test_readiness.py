"""/readyz is green only once a model is loaded; a later promotion makes the service ready."""

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
    with serve(home, f"sqlite:///{tmp_path / 'p.db'}", tmp_path, wait_ready=False) as server:
        wait_until(lambda: _status(server, "/livez") == 200, 120, "the service to be alive")
        assert _status(server, "/readyz") == 503
        status, body = server.request("POST", "/predict-song", {"data": SONG})
        assert status == 503 and body["error"] == "not_ready"
        registry.promotions.promote(tag, "test: first promotion")
        wait_until(lambda: _status(server, "/readyz") == 200, 60, "readiness after promotion")
        status, body = server.request("POST", "/predict-song", {"data": SONG})
        assert status == 200 and body["model_version"] == tag


def _status(server, path: str) -> int | None:
    try:
        return server.request("GET", path, timeout=2)[0]
    except OSError:
        return None
