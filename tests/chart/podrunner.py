"""Run rendered pod specs as Docker containers, the way a kubelet on one node would.

Test code, small and strict: every pod-spec, container and volume field it meets must be one it
implements (or one that has no effect on a single node, listed in ``NO_OP_*``); anything else
raises ``NotImplementedError`` so a chart change cannot be silently ignored.

- Image, command (entrypoint) and args (cmd) with Kubernetes' override rules; ``workingDir``;
  env from ConfigMaps and Secrets (:mod:`pod_env`).
- runAsUser/runAsGroup, runAsNonRoot, fsGroup (supplementary group, and volumes chgrp'ed and
  setgid, as the kubelet does), readOnlyRootFilesystem, dropped capabilities,
  allowPrivilegeEscalation=false, CPU and memory limits.
- A PVC is one named volume shared by every pod that mounts the claim; an emptyDir is a fresh
  volume per pod, mode 0777 like the kubelet's, shared by the pod's containers.
- Host networking: Services resolve to 127.0.0.1 (``--add-host``), which needs a Service's port
  to equal its target container port (the tests render the chart so).
- automountServiceAccountToken mounts a token and CA of a fake API server (``api``).
- Probes (httpGet), preStop exec hooks, terminationGracePeriodSeconds.
- Jobs (:meth:`PodRunner.run_job`): ``completions`` pods, ``parallelism`` at a time; with
  ``completionMode: Indexed`` each pod gets env ``JOB_COMPLETION_INDEX``, as Kubernetes sets it.
  No retries: a failed pod fails the run (the tests expect success).
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pod_env import container_env

NO_OP_POD = {
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "affinity",
    "topologySpreadConstraints",
    "imagePullSecrets",
}
"""Scheduling and registry fields: trivially satisfied by one node with local images."""
POD_FIELDS = NO_OP_POD | {
    "restartPolicy",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "terminationGracePeriodSeconds",
    "securityContext",
    "initContainers",
    "containers",
    "volumes",
}
CONTAINER_FIELDS = {
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "env",
    "envFrom",
    "ports",
    "securityContext",
    "resources",
    "startupProbe",
    "livenessProbe",
    "readinessProbe",
    "lifecycle",
    "volumeMounts",
}
SECURITY_FIELDS = {
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "privileged",
    "capabilities",
    "seccompProfile",
}
POD_SECURITY_FIELDS = {
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "fsGroupChangePolicy",
    "seccompProfile",
}
JOB_FIELDS = {
    "completionMode",
    "completions",
    "parallelism",
    "backoffLimit",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "template",
}
"""Job spec fields :meth:`PodRunner.run_job` implements (ttl and backoff: no effect here)."""
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _strict(kind: str, obj: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise NotImplementedError(f"podrunner does not implement {kind} field(s) {sorted(unknown)}")


def _memory(quantity: str) -> str:
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    for suffix, unit in units.items():
        if str(quantity).endswith(suffix):
            return str(quantity)[: -len(suffix)] + unit
    raise NotImplementedError(f"memory quantity {quantity!r}")


def _cpus(quantity: str) -> str:
    text = str(quantity)
    return str(int(text[:-1]) / 1000) if text.endswith("m") else text


@dataclass
class ApiAccess:
    """What automountServiceAccountToken gives a container: a fake API server's address and a
    directory holding ``token``, ``ca.crt`` and ``namespace``."""

    host: str
    port: int
    secrets_dir: Path


@dataclass
class PodRun:
    """A pod started by :class:`PodRunner`: its containers and resolved ports."""

    name: str
    spec: dict[str, Any]
    containers: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    """Variables the control plane adds (a Job's ``JOB_COMPLETION_INDEX``)."""


class PodRunner:
    """Starts pods of one rendered release as containers.

    Args:
        objects: The rendered objects (ConfigMaps, Secrets, Services) plus provided ones.
        run_id: Prefix of every container and volume name (cleanup removes them all).
        namespace: The release namespace (``fieldRef`` and Service DNS names).
        api: The fake API server that automounted tokens point at (None: automount fails).
    """

    def __init__(
        self,
        objects: Sequence[Mapping[str, Any]],
        run_id: str,
        namespace: str,
        api: ApiAccess | None = None,
    ) -> None:
        self.objects = list(objects)
        self.run_id = run_id
        self.namespace = namespace
        self.api = api
        self.volumes: set[str] = set()
        self.names: list[str] = []
        self.hosts = [
            f"{o['metadata']['name']}.{namespace}.svc"
            for o in self.objects
            if o["kind"] == "Service"
        ]

    # -- docker -----------------------------------------------------------------------------
    def docker(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run one docker command."""
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])}...: {result.stderr.strip()}")
        return result

    def _volume(self, name: str, image: str, mode: str, group: int | None) -> str:
        """Create a named volume once, owned by ``group`` (fsGroup) or mode 0777 (emptyDir)."""
        if name not in self.volumes:
            self.docker("volume", "create", "--label", f"podrunner={self.run_id}", name)
            chgrp = f"chgrp {group} /v && " if group is not None else ""
            self.docker(
                "run",
                "--rm",
                "--network",
                "none",
                "--user",
                "0",
                "--entrypoint",
                "sh",
                "-v",
                f"{name}:/v",
                image,
                "-c",
                f"{chgrp}chmod {mode} /v",
            )
            self.volumes.add(name)
        return name

    # -- pod spec -> docker run ---------------------------------------------------------------
    def _mounts(self, pod: PodRun, container: Mapping[str, Any], image: str) -> list[str]:
        volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
        group = (pod.spec.get("securityContext") or {}).get("fsGroup")
        args: list[str] = []
        for mount in container.get("volumeMounts") or []:
            _strict("volumeMount", mount, {"name", "mountPath", "readOnly"})
            volume = volumes[mount["name"]]
            if "persistentVolumeClaim" in volume:
                _strict("volume", volume, {"name", "persistentVolumeClaim"})
                claim = volume["persistentVolumeClaim"]
                _strict("persistentVolumeClaim", claim, {"claimName", "readOnly"})
                source = self._volume(
                    f"{self.run_id}-pvc-{claim['claimName']}",
                    image,
                    "2775" if group is not None else "0777",
                    group,
                )
            elif "emptyDir" in volume:
                _strict("volume", volume, {"name", "emptyDir"})
                # sizeLimit is an eviction threshold in Kubernetes, not a mount option.
                _strict("emptyDir", volume["emptyDir"], {"sizeLimit"})
                source = self._volume(f"{pod.name}-{mount['name']}", image, "0777", None)
            else:
                raise NotImplementedError(f"volume {volume['name']}: {sorted(volume)}")
            spec = f"type=volume,src={source},dst={mount['mountPath']}"
            args += ["--mount", spec + (",readonly" if mount.get("readOnly") else "")]
        return args

    def _security(self, pod_sc: Mapping[str, Any], sc: Mapping[str, Any]) -> list[str]:
        _strict("pod securityContext", pod_sc, POD_SECURITY_FIELDS)
        _strict("container securityContext", sc, SECURITY_FIELDS)
        merged = {**pod_sc, **sc}
        if merged.get("seccompProfile", {}).get("type", "RuntimeDefault") != "RuntimeDefault":
            raise NotImplementedError(f"seccompProfile {merged['seccompProfile']}")
        if merged.get("privileged"):
            raise NotImplementedError("privileged containers")
        user, group = merged.get("runAsUser"), merged.get("runAsGroup")
        if merged.get("runAsNonRoot") and not user:
            raise AssertionError("runAsNonRoot without a non-zero runAsUser")
        args = ["--user", f"{user}:{group}" if group is not None else str(user)] if user else []
        if "fsGroup" in pod_sc:
            args += ["--group-add", str(pod_sc["fsGroup"])]
        if merged.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        if merged.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        caps = merged.get("capabilities") or {}
        _strict("capabilities", caps, {"drop"})
        args += [a for cap in caps.get("drop", []) for a in ("--cap-drop", cap)]
        return args

    def _resources(self, resources: Mapping[str, Any]) -> list[str]:
        _strict("resources", resources, {"requests", "limits"})
        limits = resources.get("limits") or {}
        _strict("limits", limits, {"cpu", "memory"})
        args = ["--memory", _memory(limits["memory"])] if "memory" in limits else []
        return args + (["--cpus", _cpus(limits["cpu"])] if "cpu" in limits else [])

    def _run_args(self, pod: PodRun, container: Mapping[str, Any]) -> list[str]:
        _strict("container", container, CONTAINER_FIELDS)
        image = container["image"]
        if container.get("imagePullPolicy", "IfNotPresent") == "Always":
            raise NotImplementedError("imagePullPolicy Always (no registry here)")
        self.docker("image", "inspect", image)  # IfNotPresent: the image must be local
        command, args = list(container.get("command") or []), list(container.get("args") or [])
        if any("$(" in part for part in command + args):
            raise NotImplementedError("$(VAR) expansion in command/args")
        env = container_env(
            container,
            self.objects,
            {"metadata.namespace": self.namespace, "metadata.name": pod.name},
        )
        env.update(pod.env)
        run = ["--network", "host", "--label", f"podrunner={self.run_id}"]
        run += [f"--add-host={host}:127.0.0.1" for host in self.hosts]
        run += self._security(
            pod.spec.get("securityContext") or {}, container.get("securityContext") or {}
        )
        run += self._resources(container.get("resources") or {})
        run += self._mounts(pod, container, image)
        if pod.spec.get("automountServiceAccountToken"):
            if self.api is None:
                raise NotImplementedError("automountServiceAccountToken without a fake API")
            env.update(
                KUBERNETES_SERVICE_HOST=self.api.host, KUBERNETES_SERVICE_PORT=str(self.api.port)
            )
            run += ["-v", f"{self.api.secrets_dir}:{SA_DIR}:ro"]
        if pod.spec.get("enableServiceLinks", True):
            raise NotImplementedError("enableServiceLinks (service env vars)")
        for key, value in env.items():
            run += ["-e", f"{key}={value}"]
        if "workingDir" in container:
            run += ["-w", container["workingDir"]]
        for port in container.get("ports") or []:
            _strict("port", port, {"name", "containerPort", "protocol"})
            pod.ports[port.get("name") or str(port["containerPort"])] = port["containerPort"]
        _strict("lifecycle", container.get("lifecycle") or {}, {"preStop"})
        if command:
            run += ["--entrypoint", command[0], image, *command[1:], *args]
        else:
            run += [image, *args]
        return run

    @staticmethod
    def tag(source: str, target: str) -> None:
        """Make ``source`` available as ``target`` (what a push and a pull would do)."""
        if source != target:
            subprocess.run(["docker", "tag", source, target], check=True, timeout=60)

    @staticmethod
    def image_of(spec: Mapping[str, Any]) -> str:
        """The image of a pod's (single) container."""
        (container,) = spec["containers"]
        return container["image"]

    # -- pods -----------------------------------------------------------------------------------
    def start(
        self,
        name: str,
        spec: Mapping[str, Any],
        init_timeout: float = 600,
        env: Mapping[str, str] | None = None,
    ) -> PodRun:
        """Run a pod's init containers to completion, then start its containers detached.

        Raises:
            AssertionError: when an init container exits non-zero (its logs in the message).
        """
        _strict("pod spec", spec, POD_FIELDS)
        pod = PodRun(f"{self.run_id}-{name}", dict(spec), env=dict(env or {}))
        for container in spec.get("initContainers") or []:
            cname = f"{pod.name}-{container['name']}"
            self.names.append(cname)
            self.docker(
                "run",
                "--name",
                cname,
                *self._run_args(pod, container),
                timeout=init_timeout,
                check=False,
            )
            code = self.exit_code(cname)
            assert code == 0, f"init container {cname} exited {code}:\n{self.logs(cname)}"
        for container in spec["containers"]:
            cname = f"{pod.name}-{container['name']}"
            self.names.append(cname)
            self.docker("run", "-d", "--name", cname, *self._run_args(pod, container))
            pod.containers[container["name"]] = cname
        return pod

    def run_to_completion(
        self,
        name: str,
        spec: Mapping[str, Any],
        timeout: float = 900,
    ) -> tuple[int, str]:
        """Run a Job's pod (``restartPolicy: Never``): (exit code, logs) of its container."""
        assert spec.get("restartPolicy") == "Never", "a Job pod must not restart"
        pod = self.start(name, spec)
        (cname,) = pod.containers.values()
        self.docker("wait", cname, timeout=timeout)
        return self.exit_code(cname), self.logs(cname)

    def run_job(self, name: str, job: Mapping[str, Any]) -> list[tuple[int, str]]:
        """Run a Job like the Job controller: ``completions`` pods, ``parallelism`` at once;
        Indexed: pod ``i`` gets ``JOB_COMPLETION_INDEX=i``. Returns (exit code, logs) per pod,
        in index order; ``activeDeadlineSeconds`` bounds each wait."""
        spec = job["spec"]
        _strict("Job spec", spec, JOB_FIELDS)
        _strict("pod template", spec["template"], {"metadata", "spec"})
        pod_spec = spec["template"]["spec"]
        assert pod_spec.get("restartPolicy") == "Never", "a Job pod must not restart"
        indexed = spec.get("completionMode", "NonIndexed") == "Indexed"
        if spec.get("completionMode", "NonIndexed") not in ("Indexed", "NonIndexed"):
            raise NotImplementedError(f"completionMode {spec['completionMode']}")
        completions, parallelism = int(spec.get("completions", 1)), int(spec.get("parallelism", 1))
        deadline = float(spec.get("activeDeadlineSeconds", 900))
        waiting, running, results = list(range(completions)), [], {}
        while waiting or running:
            while waiting and len(running) < parallelism:
                index = waiting.pop(0)
                env = {"JOB_COMPLETION_INDEX": str(index)} if indexed else {}
                running.append((index, self.start(f"{name}-{index}", pod_spec, env=env)))
            index, pod = running.pop(0)
            (cname,) = pod.containers.values()
            self.docker("wait", cname, timeout=deadline)
            results[index] = (self.exit_code(cname), self.logs(cname))
        return [results[i] for i in range(completions)]

    def exit_code(self, cname: str) -> int:
        """Exit code of a finished container."""
        return int(self.docker("inspect", "-f", "{{.State.ExitCode}}", cname).stdout.strip())

    def running(self, cname: str) -> bool:
        """Whether the container is still running."""
        return self.docker("inspect", "-f", "{{.State.Running}}", cname).stdout.strip() == "true"

    def logs(self, cname: str, tail: int = 60) -> str:
        """The container's last log lines (stdout and stderr)."""
        result = self.docker("logs", "--tail", str(tail), cname, check=False)
        return result.stdout + result.stderr

    def probe(self, pod: PodRun, container: Mapping[str, Any], kind: str) -> float:
        """Poll a container's ``kind`` probe (httpGet) like the kubelet; seconds to success.

        Raises:
            AssertionError: after failureThreshold failures or when the container exits.
        """
        spec = container[kind]
        _strict(
            kind,
            spec,
            {
                "httpGet",
                "periodSeconds",
                "timeoutSeconds",
                "failureThreshold",
                "initialDelaySeconds",
                "successThreshold",
            },
        )
        get = spec["httpGet"]
        _strict("httpGet", get, {"path", "port", "scheme"})
        port = get["port"] if isinstance(get["port"], int) else pod.ports[get["port"]]
        url = f"http://127.0.0.1:{port}{get['path']}"
        cname = pod.containers[container["name"]]
        start = time.monotonic()
        time.sleep(spec.get("initialDelaySeconds", 0))
        last = ""
        for _ in range(spec.get("failureThreshold", 3)):
            assert self.running(cname), f"{cname} exited:\n{self.logs(cname)}"
            try:
                with urllib.request.urlopen(url, timeout=spec.get("timeoutSeconds", 1)) as r:
                    if 200 <= r.status < 400:
                        return time.monotonic() - start
            except OSError as exc:
                last = str(exc)
            time.sleep(spec.get("periodSeconds", 10))
        raise AssertionError(f"{kind} {url} failed ({last}):\n{self.logs(cname)}")

    def stop(self, pod: PodRun) -> None:
        """Terminate a pod: preStop exec hooks, then SIGTERM with the grace period."""
        grace = int(pod.spec.get("terminationGracePeriodSeconds", 30))
        for container in pod.spec["containers"]:
            cname = pod.containers[container["name"]]
            hook = (container.get("lifecycle") or {}).get("preStop")
            if hook:
                _strict("preStop", hook, {"exec"})
                self.docker("exec", cname, *hook["exec"]["command"], check=False)
            self.docker("stop", "-t", str(grace), cname, check=False)

    def cleanup(self) -> None:
        """Remove every container and volume of this run."""
        if self.names:
            self.docker("rm", "-f", *self.names, check=False)
        if self.volumes:
            self.docker("volume", "rm", "-f", *sorted(self.volumes), check=False)
