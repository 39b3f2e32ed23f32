"""Secrets: the API token guards feedback and admin routes, is never logged, never shipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import yaml
from e2e import support

SECRET_KEY = re.compile(r"token|password|passwd|secret|webhook|credential|apikey|api_key", re.I)
NOT_SECRETS = {
    "existingSecret",
    "imagePullSecrets",
    "automountServiceAccountToken",
    "secretName",
    "existingClaim",
}


@pytest.mark.slow
@pytest.mark.integration
def test_token_is_required_checked_and_never_logged(shared):
    dep = shared
    assert dep.token
    song = requests.post(f"{dep.url}/predict-song", json={"data": support.SONG}, timeout=10)
    assert song.status_code == 200  # predictions stay open
    rid = song.json()["request_id"]
    body = {"request_id": rid, "label": 1}
    wrong = "tok-" + "0" * 32
    for path, payload in (("/feedback", body), ("/admin/reload", None)):
        for headers in (
            {},
            {"Authorization": f"Bearer {wrong}"},
            {"Authorization": f"Basic {dep.token}"},
            {"Authorization": f"Bearer {dep.token}x"},
        ):
            resp = requests.post(f"{dep.url}{path}", json=payload, headers=headers, timeout=10)
            assert resp.status_code in (401, 403), (path, headers, resp.text)
            assert resp.json()["field"] == "Authorization"
            assert dep.token not in resp.text
        ok = requests.post(f"{dep.url}{path}", json=payload, headers=dep.auth(), timeout=30)
        assert ok.status_code == 200, (path, ok.text)
    # GET /model shows configuration but never the token
    assert dep.token not in requests.get(f"{dep.url}/model", timeout=10).text
    assert dep.token not in requests.get(f"{dep.url}/metrics", timeout=10).text
    log = dep.service.log_text()
    assert log, "the server printed nothing: the log capture is broken"
    assert dep.token not in log
    assert wrong not in log


def _secret_values(node, path=""):
    """(path, value) of every non-empty string under a key that looks like a secret."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and SECRET_KEY.search(str(key)) and key not in NOT_SECRETS:
                if value.strip():
                    yield here, value
            else:
                yield from _secret_values(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _secret_values(item, f"{path}[{i}]")


def test_no_secret_in_chart_defaults_or_bentofile():
    values_file = support.ROOT / "charts" / "reggaeton" / "values.yaml"
    if not values_file.exists():
        pytest.skip("charts/reggaeton/values.yaml is missing (Kubernetes part not landed)")
    values = yaml.safe_load(values_file.read_text())
    assert list(_secret_values(values)) == []
    for bentofile in (support.ROOT / "bentofile.yaml", support.ROOT / "k8s/bentofile.jobs.yaml"):
        assert bentofile.exists(), bentofile
        spec = yaml.safe_load(bentofile.read_text()) or {}
        names = {e.get("name", "") for e in spec.get("envs") or []}
        assert not {n for n in names if SECRET_KEY.search(n)}, (bentofile, names)
        # the images hold code, not state: no var/ (stores, spill), no .env files
        included = " ".join(spec.get("include") or [])
        assert "var/" not in included and ".env" not in included, (bentofile, included)


def test_the_token_check_itself_uses_a_constant_time_comparison(monkeypatch):
    """Call the real check (service.routes): hmac.compare_digest decides, for right and wrong
    tokens."""
    import hmac

    from service import routes

    seen = []
    real = hmac.compare_digest
    monkeypatch.setattr(
        routes.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b)
    )

    class Req:
        def __init__(self, header: str) -> None:
            self.headers = {"authorization": header}

    routes._authorize(Req("Bearer s3cret-token"), "s3cret-token")
    with pytest.raises(routes.ApiError) as wrong:
        routes._authorize(Req("Bearer s3cret-tokex"), "s3cret-token")
    assert wrong.value.status == 401
    assert seen == [(b"s3cret-token", b"s3cret-token"), (b"s3cret-tokex", b"s3cret-token")]


def test_no_token_literal_in_service_code_and_constant_time_comparison():
    uses_compare_digest = False
    for path in (support.ROOT / "service").rglob("*.py"):
        text = Path(path).read_text()
        assert not re.search(r"API_TOKEN\s*=\s*['\"][^'\"]+['\"]", text), path
        uses_compare_digest |= "hmac.compare_digest" in text
    assert uses_compare_digest, "the token must be compared in constant time"
