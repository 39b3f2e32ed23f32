"""One training at a time: a lease held around train, gate, promote and roll out.

``python -m training.lease -- CMD [ARG...]`` runs CMD while holding the training lease and
exits with CMD's exit code. The chart's train Job runs its whole command this way. Why: the
train CronJob's ``concurrencyPolicy: Forbid`` only counts the Jobs the CronJob controller
scheduled, not those ``make retrain`` or the monitor create from it, so without a lock two
trainings could gate against the same current version and both promote and roll out.

When another training holds the lease and keeps it for longer than the wait, CMD does not run
and the exit code is 0 ("skipped", logged with the holder): like ``Forbid``, a later training
is skipped, not queued, and a skipped run is not a failed Job.

Two kinds of lease, chosen by :func:`make_lease` from :class:`LeaseSettings`:

* Kubernetes (``TRAINING_LEASE_NAME`` set): a ``coordination.k8s.io/v1`` Lease of that name
  in ``POD_NAMESPACE``, held by ``POD_NAME``, created on first use (GET 404, then POST) and
  taken with a PUT carrying the read ``resourceVersion`` (a concurrent taker gets 409 and
  loses). The holder renews it every third of ``TRAINING_LEASE_DURATION_SECONDS`` and clears
  the holder when CMD ends. A holder that stopped renewing (its pod was killed) loses the lease
  once the record has not changed for that duration, measured on the waiting pod's own clock
  from when it first saw the record (as client-go's leader election does, so the nodes' clocks
  need not agree). A holder that cannot renew within two thirds of the duration stops CMD
  (SIGTERM) and exits 1, before anyone else may take over.
* local (otherwise): an exclusive ``flock`` on ``<BENTOML_HOME>/training.lock`` in the model
  store; the kernel drops it when the holding process dies.

Inside every training, :func:`gate_lock` (a blocking ``flock`` on ``<BENTOML_HOME>/gate.lock``)
also makes gate + promote atomic for trainings that are not wrapped (``make train``, the
monitor's local retraining): the later one is gated against the earlier one's promotion.

Environment: see :class:`LeaseSettings`, and ``BENTOML_HOME``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field

from reggaeton.settings import EnvSettings, load_env
from reggaeton.timeutil import utcnow

log = logging.getLogger("training.lease")

LOCK_FILE = "training.lock"
GATE_LOCK_FILE = "gate.lock"
DEFAULT_DURATION = 60.0
DEFAULT_WAIT = 120.0
POLL_SECONDS = 2.0


class Lease(Protocol):
    """What :func:`run` needs of a lease."""

    def acquire(self, wait: float) -> bool:
        """Take the lease, waiting up to ``wait`` seconds; False when someone else holds it."""

    def renew(self) -> bool:
        """Extend the lease; False when it could not be confirmed as still ours."""

    def release(self) -> None:
        """Give the lease up (never raises)."""

    def describe_holder(self) -> str:
        """Who held the lease at the last look (for the log)."""


class FileLease:
    """An exclusive ``flock`` on a file of the model store (local runs, no Kubernetes).

    Args:
        path: The lock file (created when missing).
        sleep: Waits between attempts (injectable for tests).
    """

    def __init__(self, path: str | Path, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(path)
        self.sleep = sleep
        self._handle: Any = None

    def acquire(self, wait: float) -> bool:
        """Lock the file, retrying every :data:`POLL_SECONDS` for up to ``wait`` seconds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    return False
                self.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._handle = handle
        return True

    def renew(self) -> bool:
        """A flock lasts as long as its holder: nothing to renew."""
        return self._handle is not None

    def release(self) -> None:
        """Unlock and close the file."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def describe_holder(self) -> str:
        """The holder's line in the lock file."""
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"


class KubernetesLease:
    """A ``coordination.k8s.io/v1`` Lease through ``CoordinationV1Api``'s public methods.

    Args:
        api: A ``kubernetes.client.CoordinationV1Api`` (or an object with its
            ``read_namespaced_lease``, ``create_namespaced_lease`` and
            ``replace_namespaced_lease``).
        name: Lease name.
        namespace: Its namespace.
        holder: This holder's identity (the pod name).
        duration: ``leaseDurationSeconds`` written into the Lease.
        clock: Monotonic clock measuring how long a foreign record stayed unchanged.
        sleep: Waits between attempts.
    """

    def __init__(
        self,
        api: Any,
        name: str,
        namespace: str,
        holder: str,
        duration: float = DEFAULT_DURATION,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api, self.name, self.namespace, self.holder = api, name, namespace, holder
        self.duration = max(1, int(duration))
        self.clock, self.sleep = clock, sleep
        self._seen: tuple[Any, ...] | None = None
        self._seen_at = 0.0
        self._last_holder: str | None = None

    @staticmethod
    def _now() -> datetime:
        """Now, never on a whole second: the client writes ``isoformat()``, which then drops
        the fraction, and the API server parses MicroTime with exactly six digits."""
        now = utcnow()
        return now.replace(microsecond=now.microsecond or 1)

    def _read(self) -> Any | None:
        from kubernetes.client import ApiException

        try:
            return self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _spec(self, acquired: datetime, transitions: int) -> Any:
        from kubernetes.client import V1LeaseSpec

        return V1LeaseSpec(
            holder_identity=self.holder,
            lease_duration_seconds=self.duration,
            acquire_time=acquired,
            renew_time=self._now(),
            lease_transitions=transitions,
        )

    def _expired(self, spec: Any) -> bool:
        """Whether a foreign record has stayed unchanged for its whole duration (our clock)."""
        record = (spec.holder_identity, spec.renew_time, spec.lease_duration_seconds)
        if record != self._seen:
            self._seen, self._seen_at = record, self.clock()
        return self.clock() - self._seen_at >= (spec.lease_duration_seconds or self.duration)

    def _attempt(self) -> bool:
        """One read-then-write attempt; False when held by another or a writer raced us."""
        from kubernetes.client import ApiException, V1Lease, V1ObjectMeta

        current = self._read()
        try:
            if current is None:
                body = V1Lease(
                    metadata=V1ObjectMeta(name=self.name, namespace=self.namespace),
                    spec=self._spec(self._now(), 0),
                )
                self.api.create_namespaced_lease(self.namespace, body)
                return True
            spec = current.spec
            holder = spec.holder_identity if spec else None
            self._last_holder = holder
            if spec is not None and holder and holder != self.holder and not self._expired(spec):
                return False
            ours = holder == self.holder
            transitions = (spec.lease_transitions or 0) if spec else 0
            current.spec = self._spec(
                spec.acquire_time if ours and spec else self._now(),
                transitions if ours else transitions + 1,
            )
            # current.metadata keeps the read resourceVersion: a concurrent write makes it 409.
            self.api.replace_namespaced_lease(self.name, self.namespace, current)
            return True
        except ApiException as exc:
            if exc.status == 409:  # created or taken by another holder meanwhile
                return False
            raise

    def acquire(self, wait: float) -> bool:
        """Take the lease, retrying every :data:`POLL_SECONDS` for up to ``wait`` seconds."""
        deadline = self.clock() + wait
        while True:
            if self._attempt():
                log.info("lease %s/%s taken by %s", self.namespace, self.name, self.holder)
                return True
            if self.clock() >= deadline:
                return False
            self.sleep(min(POLL_SECONDS, max(0.0, deadline - self.clock())))

    def _held(self, current: Any) -> bool:
        """Whether the lease object read from the API is held by this process."""
        return (
            current is not None
            and current.spec is not None
            and current.spec.holder_identity == self.holder
        )

    def renew(self) -> bool:
        """Write a new ``renewTime`` if the lease is still ours."""
        from kubernetes.client import ApiException

        try:
            current = self._read()
            if not self._held(current):
                return False
            current.spec.renew_time = self._now()
            self.api.replace_namespaced_lease(self.name, self.namespace, current)
            return True
        except (ApiException, OSError) as exc:
            log.warning("lease %s/%s: renewal failed: %s", self.namespace, self.name, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - urllib3 errors: retried on the next tick
            log.warning(
                "lease %s/%s: renewal failed: %s: %s",
                self.namespace,
                self.name,
                type(exc).__name__,
                exc,
            )
            return False

    def release(self) -> None:
        """Clear the holder (so the next training need not wait for expiry)."""
        try:
            current = self._read()
            if not self._held(current):
                return
            current.spec.holder_identity = None
            current.spec.lease_duration_seconds = 1
            current.spec.renew_time = self._now()
            self.api.replace_namespaced_lease(self.name, self.namespace, current)
            log.info("lease %s/%s released", self.namespace, self.name)
        except Exception as exc:  # noqa: BLE001 - it expires on its own
            log.warning(
                "lease %s/%s: release failed (%s: %s); it expires after %d s",
                self.namespace,
                self.name,
                type(exc).__name__,
                exc,
                self.duration,
            )

    def describe_holder(self) -> str:
        """The holder seen at the last attempt."""
        return self._last_holder or "unknown"


@contextlib.contextmanager
def gate_lock(home: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<home>/gate.lock`` around one gate and promotion.

    Every training that shares a model store (``make train``, the monitor's local retraining,
    the train Job) gates and promotes under it, so the later of two concurrent trainings is
    compared with the version the earlier one promoted, not with the one both started from.
    Blocking: gating and promoting take seconds. A file of its own, not :data:`LOCK_FILE`,
    which the ``training.lease`` wrapper of the same training may hold.
    """
    path = Path(home) / GATE_LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(
    lease: Lease,
    command: Sequence[str],
    *,
    wait: float = DEFAULT_WAIT,
    renew_every: float = DEFAULT_DURATION / 3,
    renew_deadline: float = DEFAULT_DURATION * 2 / 3,
    forward_signals: bool = False,
) -> int:
    """Run ``command`` while holding ``lease``.

    Args:
        lease: The lease.
        command: Program and arguments.
        wait: Seconds to wait for a held lease before skipping.
        renew_every: Seconds between renewals.
        renew_deadline: Stop the command when no renewal succeeded for this long.
        forward_signals: Pass SIGTERM/SIGINT on to the command (the CLI, main thread only).

    Returns:
        The command's exit code (128 + signal when killed); 0 when skipped; 1 when the lease
        was lost while the command ran.
    """
    if not lease.acquire(wait):
        log.warning(
            "another training holds the lease (%s): skipped, nothing trained, "
            "promoted or rolled out",
            lease.describe_holder(),
        )
        return 0
    lost = threading.Event()
    stop = threading.Event()
    child: subprocess.Popen[bytes] | None = None
    try:
        child = subprocess.Popen(list(command), start_new_session=True)
        if forward_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda s, _f, pid=child.pid: _signal_group(pid, s))
        renewer = threading.Thread(
            target=_keep_renewing,
            daemon=True,
            args=(lease, child.pid, renew_every, renew_deadline, stop, lost),
        )
        renewer.start()
        code = child.wait()
        stop.set()
        renewer.join()
    finally:
        stop.set()
        if child is not None and child.poll() is None:
            _signal_group(child.pid, signal.SIGTERM)
            child.wait()
        lease.release()
    if lost.is_set():
        log.error("the lease was lost while training ran: the training was stopped")
        return 1
    return 128 - code if code < 0 else code


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def _keep_renewing(
    lease: Lease,
    pid: int,
    every: float,
    deadline: float,
    stop: threading.Event,
    lost: threading.Event,
) -> None:
    """Renew until ``stop``; past ``deadline`` without a renewal, stop the command."""
    last_ok = time.monotonic()
    while not stop.wait(every):
        if lease.renew():
            last_ok = time.monotonic()
        elif time.monotonic() - last_ok >= deadline:
            log.error(
                "lease not renewed for %.0f s: stopping the training before another may take over",
                time.monotonic() - last_ok,
            )
            lost.set()
            _signal_group(pid, signal.SIGTERM)
            return


class LeaseSettings(EnvSettings):
    """What the environment asks of the training lease (read by :func:`main`).

    Attributes:
        name: Kubernetes Lease name (``TRAINING_LEASE_NAME``); None: the local file lease.
        duration: Seconds a holder's lease lasts unrenewed (``TRAINING_LEASE_DURATION_SECONDS``).
        wait: Seconds to wait for a held lease before skipping (``TRAINING_LEASE_WAIT_SECONDS``):
            longer than the duration, so the replacement pod of a drained training takes over
            its predecessor's lease.
        holder: This holder's identity (``POD_NAME``); None: ``<hostname>-<pid>``.
        namespace: Namespace of the Lease (``POD_NAMESPACE``).
    """

    name: str | None = Field(None, validation_alias="TRAINING_LEASE_NAME")
    duration: float = Field(
        DEFAULT_DURATION, validation_alias="TRAINING_LEASE_DURATION_SECONDS", gt=0
    )
    wait: float = Field(DEFAULT_WAIT, validation_alias="TRAINING_LEASE_WAIT_SECONDS", ge=0)
    holder: str | None = Field(None, validation_alias="POD_NAME")
    namespace: str = Field("default", validation_alias="POD_NAMESPACE")


def make_lease(settings: LeaseSettings, home: Path) -> Lease:
    """The lease ``settings`` ask for: a Kubernetes Lease when named, else a file in ``home``."""
    if not settings.name:
        return FileLease(Path(home) / LOCK_FILE)
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    holder = settings.holder or f"{socket.gethostname()}-{os.getpid()}"
    return KubernetesLease(
        client.CoordinationV1Api(), settings.name, settings.namespace, holder, settings.duration
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``python -m training.lease -- CMD [ARG...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.lease", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, help="the command to run under the lease (after --)"
    )
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command is required: python -m training.lease -- CMD [ARG...]")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from reggaeton.registry import home_from_env

    settings = load_env(LeaseSettings, os.environ)
    lease = make_lease(settings, home_from_env(os.environ))
    duration = settings.duration
    return run(
        lease,
        command,
        wait=settings.wait,
        renew_every=duration / 3,
        renew_deadline=duration * 2 / 3,
        forward_signals=True,
    )


if __name__ == "__main__":
    sys.exit(main())
