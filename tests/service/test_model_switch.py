"""Promotions reach a running service without failed requests; bad versions are refused."""

from __future__ import annotations

import shutil
import threading

import pytest
from service_helpers import SONG, save_version, serve, wait_until

from reggaeton.registry import Registry
from reggaeton.schema import MODEL_FEATURES
from reggaeton.servable import SERVABLE_FILE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Traffic:
    """A client loop sending single and batch requests until stopped."""

    def __init__(self, server) -> None:
        self.server, self.statuses, self.versions = server, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            if i % 4:
                status, body = self.server.request("POST", "/predict-song", {"data": SONG})
                versions = [body.get("model_version")] if status == 200 else []
            else:
                status, body = self.server.request("POST", "/predict-songs", {"data": [SONG] * 3})
                versions = [r["model_version"] for r in body["results"]] if status == 200 else []
            self.statuses.append(status)
            self.versions.extend(versions)
            i += 1

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join(30)

    def recent(self, n: int) -> set:
        return set(self.versions[-n:]) if len(self.versions) >= n else set()


@pytest.fixture(scope="module")
def switch(trained_home, tmp_path_factory):
    work = tmp_path_factory.mktemp("switch")
    home = work / "home"
    shutil.copytree(trained_home, home)  # never promote in the shared session home
    with serve(home, f"sqlite:///{work / 'p.db'}", work) as server:
        yield server, home


def test_promoting_another_version_switches_without_failed_requests(switch):
    server, home = switch
    registry = Registry(home)
    old = registry.promotions.current()
    new = save_version(home, n_estimators=30, seed=1)
    with Traffic(server) as traffic:
        wait_until(lambda: len(traffic.versions) > 20, 60, "traffic on the old version")
        registry.promotions.promote(new, "test: switch under load")
        # Both workers must have switched: the last 40 answers all come from the new version.
        wait_until(lambda: traffic.recent(40) == {new}, 90, "every worker to serve the new one")
    assert traffic.statuses and set(traffic.statuses) == {200}
    assert set(traffic.versions) == {old, new}
    assert server.request("GET", "/model")[1]["model_version"] == new


def _corrupt(home, tag):
    (Registry(home).get(tag).path / SERVABLE_FILE).write_bytes(b"not a servable file")


def _incompatible(home, tag):
    import json

    from reggaeton.registry import METADATA_FILE

    path = Registry(home).get(tag).path / METADATA_FILE
    meta = json.loads(path.read_text())
    meta["features"] = list(reversed(MODEL_FEATURES))
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("spoil", [_corrupt, _incompatible], ids=["corrupted", "incompatible"])
def test_a_bad_version_is_refused_and_the_current_one_keeps_serving(switch, spoil):
    server, home = switch
    registry = Registry(home)
    serving = server.request("GET", "/model")[1]["model_version"]
    bad = save_version(home, n_estimators=5, seed=2)
    spoil(home, bad)
    with Traffic(server) as traffic:
        registry.promotions.promote(bad, "test: a bad version")

        def refused_everywhere():
            answers = [server.request("GET", "/model")[1] for _ in range(6)]
            return all(bad in a["reload"]["refused"] for a in answers) and answers

        answers = wait_until(refused_everywhere, 60, "both workers to refuse the version")
        wait_until(lambda: len(traffic.versions) > 40, 60, "traffic after the refusal")
    assert set(traffic.statuses) == {200}
    assert set(traffic.versions) == {serving}
    assert all(a["model_version"] == serving for a in answers)
    assert answers[0]["reload"]["last_error"]["tag"] == bad
    assert server.request("GET", "/readyz")[0] == 200
    assert "refused model version" in server.logs()
