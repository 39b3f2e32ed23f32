"""The training lease: two concurrent trainings, only one trains, promotes and rolls out."""

from __future__ import annotations

import copy
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from training import lease as leasemod
from training.lease import FileLease, KubernetesLease, run


class FakeCoordinationApi:
    """The three ``CoordinationV1Api`` methods the lease uses, with the API server's rules.

    Stores Leases in API form; ``replace`` of a stale ``resourceVersion`` answers 409, as does
    ``create`` of an existing name; reads of a missing name answer 404. Thread-safe.
    """

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], dict] = {}
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._version = 0

    @staticmethod
    def _error(status: int):
        from kubernetes.client import ApiException

        return ApiException(status=status, reason={404: "Not Found", 409: "Conflict"}[status])

    def _store(self, key: tuple[str, str], body) -> object:
        from kubernetes.client import ApiClient, V1Lease

        data = ApiClient().sanitize_for_serialization(body)
        self._version += 1
        data["metadata"]["resourceVersion"] = str(self._version)
        self.leases[key] = data
        return V1Lease.from_dict(copy.deepcopy(data))

    def read_namespaced_lease(self, name: str, namespace: str):
        from kubernetes.client import V1Lease

        with self._lock:
            self.calls.append(("GET", name))
            if (namespace, name) not in self.leases:
                raise self._error(404)
            return V1Lease.from_dict(copy.deepcopy(self.leases[(namespace, name)]))

    def create_namespaced_lease(self, namespace: str, body):
        with self._lock:
            self.calls.append(("POST", body.metadata.name))
            key = (namespace, body.metadata.name)
            if key in self.leases:
                raise self._error(409)
            return self._store(key, body)

    def replace_namespaced_lease(self, name: str, namespace: str, body):
        with self._lock:
            self.calls.append(("PUT", name))
            stored = self.leases.get((namespace, name))
            if stored is None:
                raise self._error(404)
            if body.metadata.resource_version != stored["metadata"]["resourceVersion"]:
                raise self._error(409)
            return self._store((namespace, name), body)

    def holder(self, name: str = "rel-train", namespace: str = "ml") -> str | None:
        return self.leases[(namespace, name)]["spec"].get("holderIdentity")


def _training(log: Path, seconds: float) -> list[str]:
    """A stand-in training Job command: 'promotes and rolls out' (a line in ``log``)."""
    code = (
        "import sys, time; time.sleep(float(sys.argv[2]));"
        "open(sys.argv[1], 'a').write('promoted and rolled out\\n')"
    )
    return [sys.executable, "-c", code, str(log), str(seconds)]


def test_two_concurrent_trainings_only_one_promotes_and_rolls_out(tmp_path) -> None:
    api = FakeCoordinationApi()
    log = tmp_path / "rollouts.log"
    codes: dict[str, int] = {}
    start = threading.Barrier(2)

    def job(pod: str) -> None:
        lease = KubernetesLease(api, "rel-train", "ml", pod, duration=30)
        start.wait()
        codes[pod] = run(lease, _training(log, 1.5), wait=0.5, renew_every=0.2, renew_deadline=10)

    threads = [threading.Thread(target=job, args=(pod,)) for pod in ("pod-a", "pod-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert codes == {"pod-a": 0, "pod-b": 0}  # the skipped one is not a failed Job
    assert log.read_text().splitlines() == ["promoted and rolled out"]  # once, not twice
    assert api.calls[0] == ("GET", "rel-train") and ("POST", "rel-train") in api.calls
    assert api.holder() is None  # released at the end
    spec = api.leases[("ml", "rel-train")]["spec"]
    assert spec["leaseTransitions"] == 0 and "renewTime" in spec
    # released: the next training takes it at once
    later = KubernetesLease(api, "rel-train", "ml", "pod-c", duration=30)
    assert run(later, _training(log, 0), wait=0) == 0
    assert log.read_text().splitlines() == ["promoted and rolled out"] * 2


def test_a_dead_holders_lease_is_taken_over_after_its_duration() -> None:
    """A drained pod's lease (no more renewals) is free once unchanged for its duration, on
    the waiting pod's own clock; a live holder's renewals keep it."""
    api = FakeCoordinationApi()
    now = [1000.0]
    dead = KubernetesLease(api, "rel-train", "ml", "pod-old", duration=60)
    assert dead.acquire(0)
    waiting = KubernetesLease(
        api,
        "rel-train",
        "ml",
        "pod-new",
        duration=60,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert not waiting.acquire(30) and waiting.describe_holder() == "pod-old"
    assert dead.renew()  # still alive: the record changed, the wait starts again
    assert not waiting.acquire(50)
    assert waiting.acquire(30)  # no renewal for 60 s of its clock
    assert api.holder() == "pod-new"
    assert api.leases[("ml", "rel-train")]["spec"]["leaseTransitions"] == 1
    assert not dead.renew()  # the old holder sees it lost the lease
    dead.release()  # and does not clear the new holder's lease
    assert api.holder() == "pod-new"


def test_a_concurrent_take_over_loses_on_the_resource_version() -> None:
    api = FakeCoordinationApi()
    first = KubernetesLease(api, "rel-train", "ml", "pod-a")
    assert first.acquire(0)
    first.release()
    stale = api.read_namespaced_lease("rel-train", "ml")
    assert KubernetesLease(api, "rel-train", "ml", "pod-b").acquire(0)
    from kubernetes.client import ApiException

    with pytest.raises(ApiException) as err:
        api.replace_namespaced_lease("rel-train", "ml", stale)
    assert err.value.status == 409
    assert not KubernetesLease(api, "rel-train", "ml", "pod-c").acquire(0)


def test_a_lost_lease_stops_the_training(tmp_path) -> None:
    class Flaky(FakeCoordinationApi):
        def replace_namespaced_lease(self, name, namespace, body):
            if threading.current_thread() is not threading.main_thread():
                raise self._error(409)  # every renewal (the renewer thread's writes) fails
            return super().replace_namespaced_lease(name, namespace, body)

    lease = KubernetesLease(Flaky(), "rel-train", "ml", "pod-a", duration=3)
    started = time.monotonic()
    code = run(lease, _training(tmp_path / "log", 20), wait=0, renew_every=0.1, renew_deadline=0.5)
    assert code == 1 and time.monotonic() - started < 10
    assert not (tmp_path / "log").exists()


def test_local_file_lease_two_processes(tmp_path, monkeypatch) -> None:
    """Without Kubernetes: a flock in the model store; two real ``python -m training.lease``
    processes at once, one runs its command, the other skips with exit 0."""
    home = tmp_path / "store"
    log = tmp_path / "rollouts.log"
    env = {"BENTOML_HOME": str(home), "TRAINING_LEASE_WAIT_SECONDS": "0.5", "PATH": "/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "training.lease", "--", *_training(log, 2)],
            cwd=root,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert log.read_text().splitlines() == ["promoted and rolled out"]
    assert sum("skipped" in err for _, err in outs) == 1, outs
    assert (home / leasemod.LOCK_FILE).exists()
    again = FileLease(home / leasemod.LOCK_FILE)
    assert again.acquire(0) and again.renew()  # the kernel dropped both locks
    again.release()


def test_the_command_s_exit_code_is_passed_on(tmp_path) -> None:
    lease = FileLease(tmp_path / "training.lock")
    assert run(lease, [sys.executable, "-c", "raise SystemExit(3)"], wait=0) == 3
    assert lease.acquire(0)  # released after the command
    lease.release()


def test_concurrent_trainings_gate_and_promote_one_after_the_other(
    registry_copy, fast_config, repo_root, monkeypatch
):
    """Two run_training calls on one store at once (make train beside the monitor's local
    retrain): gate + promote never overlap, so the later gate compares with the earlier
    training's promotion, not with the version both started from."""
    from training import gate
    from training.train import run_training

    real_apply, spans, seen = gate.apply, [], []
    real_decide = gate.decide

    def slow_apply(registry, tag, decision):
        start = time.monotonic()
        time.sleep(0.5)
        out = real_apply(registry, tag, decision)
        spans.append((start, time.monotonic(), tag, decision.promote))
        return out

    def recording_decide(*args, **kwargs):
        seen.append(kwargs.get("current_tag"))
        return real_decide(*args, **kwargs)

    monkeypatch.setattr(gate, "apply", slow_apply)
    monkeypatch.setattr(gate, "decide", recording_decide)
    before = registry_copy.promotions.current()
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                run_training(fast_config, registry_copy, root=repo_root, force=True)
            )
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(results) == 2 and len(spans) == 2
    (s1, e1, first_tag, _), (s2, _, _, _) = sorted(spans)
    assert s2 >= e1, spans  # no overlap
    assert seen[0] == before and seen[1] == first_tag, (seen, before, first_tag)


def test_sigterm_stops_the_training_and_frees_the_lease(tmp_path) -> None:
    """A drained pod gets SIGTERM: the wrapper passes it on to the training's process group
    and releases the lease, so the Job's replacement pod need not wait for expiry."""
    import signal

    home = tmp_path / "store"
    env = {"BENTOML_HOME": str(home), "PATH": "/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.lease", "--", "sh", "-c", "echo started; sleep 60"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "started"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 10
    free = FileLease(home / leasemod.LOCK_FILE)
    assert free.acquire(0)
    free.release()


def test_the_cli_needs_a_command() -> None:
    with pytest.raises(SystemExit) as exit_:
        leasemod.main(["--"])
    assert exit_.value.code == 2


def test_lease_settings_from_the_environment(tmp_path) -> None:
    """Defaults, the variables the chart sets, and a bad value named; no name: a file lease."""
    from reggaeton.settings import ConfigError, load_env

    default = load_env(leasemod.LeaseSettings, {})
    assert (default.name, default.duration, default.wait, default.namespace) == (
        None,
        leasemod.DEFAULT_DURATION,
        leasemod.DEFAULT_WAIT,
        "default",
    )
    env = {
        "TRAINING_LEASE_NAME": "train",
        "TRAINING_LEASE_DURATION_SECONDS": "30",
        "TRAINING_LEASE_WAIT_SECONDS": "0.5",
        "POD_NAME": "p-1",
        "POD_NAMESPACE": "ml",
    }
    settings = load_env(leasemod.LeaseSettings, env)
    assert (settings.name, settings.duration, settings.wait) == ("train", 30.0, 0.5)
    assert (settings.holder, settings.namespace) == ("p-1", "ml")
    with pytest.raises(ConfigError, match="TRAINING_LEASE_DURATION_SECONDS: input should be"):
        load_env(leasemod.LeaseSettings, {"TRAINING_LEASE_DURATION_SECONDS": "0"})
    lease = leasemod.make_lease(default, tmp_path)
    assert isinstance(lease, FileLease) and lease.path == tmp_path / leasemod.LOCK_FILE
    assert lease.acquire(0)
    lease.release()
