"""Test support (e2e node agent): runs one Pod's containers as local processes.

Stands in for kubelet plus a container runtime. Each pod gets a loopback address of its own
(its pod IP) and a folder; ConfigMap, Secret, projected (service-account token, ConfigMap,
downward API) and emptyDir volumes are materialised in that folder, and every occurrence of a
volume's mountPath at the start of a path in the container's command, args and env values is
rewritten to the volume's folder. Each container runs in its own process group, is restarted
per restartPolicy, and is reported in the pod's status with readiness from its probe.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import datetime
import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.e2e.nodeagent.api import ApiStatusError, KubeApi

log = logging.getLogger("nodeagent")

VENV_BIN = Path(sys.executable).parent
# Commands that mean "this project's Python" inside a pod; the image would provide them.
COMMAND_MAP = {
    "sluice": str(VENV_BIN / "sluice"),
    "python": sys.executable,
    "python3": sys.executable,
}
PR_SET_PDEATHSIG = 1
RESTART_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0)
# Probes run at most this far apart so that tests do not wait for production periods.
MAX_PROBE_PERIOD_SECONDS = 1.0
# Where kubelet mounts the service-account token (the API server's ServiceAccount admission
# adds the projected volume); clients such as the `kubernetes` package read it from there.
SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# "Every interface" as a whole address (not 10.0.0.0 or 0.0.0.01).
_ANY_ADDRESS = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d.]*\d)")


def _die_with_agent() -> None:
    """In the child before exec: SIGKILL it if the agent itself dies without cleaning up."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    """What the agent knows about one container, rendered into containerStatuses."""

    spec: dict[str, Any]
    process: asyncio.subprocess.Process | None = None
    restart_count: int = 0
    ready: bool = False
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "Creating"}})
    last_state: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        name: str = self.spec["name"]
        return name

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "containerID": f"sluice-node://{self.process.pid}" if self.process else "",
            "ready": self.ready,
            "started": "running" in self.state,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }


class PodFailure(Exception):
    """The pod cannot be started as specified (a missing ConfigMap, no command, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _field_ref(pod: dict[str, Any], pod_ip: str, path: str) -> str:
    metadata, spec = pod["metadata"], pod["spec"]
    simple: dict[str, str] = {
        "metadata.name": metadata["name"],
        "metadata.namespace": metadata["namespace"],
        "metadata.uid": metadata["uid"],
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    if path in simple:
        return simple[path]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str(metadata.get(match.group(1), {}).get(match.group(2), ""))
    raise PodFailure("CreateContainerConfigError", f"unsupported fieldRef {path}")


_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: unknown references stay as written, $$ escapes."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VARIABLE.sub(replace, value)


class PodRunner:
    """Runs one pod until it is deleted; reports its status to the API server."""

    def __init__(
        self, api: KubeApi, pod: dict[str, Any], pod_ip: str, root: Path, api_port: int
    ) -> None:
        self.api = api
        self.pod = pod
        self.pod_ip = pod_ip
        metadata = pod["metadata"]
        self.folder = root / f"{metadata['namespace']}_{metadata['name']}_{metadata['uid'][:8]}"
        self.api_port = api_port
        self.containers = [ContainerState(spec) for spec in pod["spec"]["containers"]]
        self.start_time = now()
        self.phase = "Pending"
        self.failure: PodFailure | None = None
        self.stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._status_dirty = asyncio.Event()
        self._stopped = asyncio.Event()

    @property
    def path(self) -> str:
        metadata = self.pod["metadata"]
        return f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}"

    # ----- volumes -------------------------------------------------------------------------

    async def _config_map(self, name: str, optional: bool) -> dict[str, bytes]:
        namespace = self.pod["metadata"]["namespace"]
        try:
            document = await self.api.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        except ApiStatusError as error:
            if error.status == 404 and optional:
                return {}
            raise PodFailure(
                "CreateContainerConfigError", f'configmap "{name}" not found'
            ) from error
        data = {k: v.encode() for k, v in (document.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (document.get("binaryData") or {}).items()})
        return data

    async def _secret(self, name: str, optional: bool) -> dict[str, bytes]:
        namespace = self.pod["metadata"]["namespace"]
        try:
            document = await self.api.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except ApiStatusError as error:
            if error.status == 404 and optional:
                return {}
            raise PodFailure("CreateContainerConfigError", f'secret "{name}" not found') from error
        return {k: base64.b64decode(v) for k, v in (document.get("data") or {}).items()}

    async def _service_account_token(self, source: dict[str, Any]) -> bytes:
        metadata = self.pod["metadata"]
        account = self.pod["spec"].get("serviceAccountName", "default")
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [source["audience"]] if source.get("audience") else None,
                "expirationSeconds": source.get("expirationSeconds", 3607),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                },
            },
        }
        response = await self.api.request(
            "POST",
            f"/api/v1/namespaces/{metadata['namespace']}/serviceaccounts/{account}/token",
            request,
        )
        token: str = response["status"]["token"]
        return token.encode()

    @staticmethod
    def _select(data: dict[str, bytes], items: list[dict[str, Any]] | None) -> dict[str, bytes]:
        if not items:
            return data
        return {item["path"]: data[item["key"]] for item in items if item["key"] in data}

    async def _volume_files(self, volume: dict[str, Any]) -> dict[str, bytes] | None:
        """The files of one volume; None for a plain folder (emptyDir and the like)."""
        if "configMap" in volume:
            source = volume["configMap"]
            data = await self._config_map(source["name"], source.get("optional", False))
            return self._select(data, source.get("items"))
        if "secret" in volume:
            source = volume["secret"]
            data = await self._secret(source["secretName"], source.get("optional", False))
            return self._select(data, source.get("items"))
        if "projected" in volume:
            files: dict[str, bytes] = {}
            for source in volume["projected"].get("sources", []):
                if "serviceAccountToken" in source:
                    token_source = source["serviceAccountToken"]
                    files[token_source["path"]] = await self._service_account_token(token_source)
                elif "configMap" in source:
                    cm = source["configMap"]
                    data = await self._config_map(cm["name"], cm.get("optional", False))
                    files.update(self._select(data, cm.get("items")))
                elif "secret" in source:
                    secret = source["secret"]
                    data = await self._secret(secret["name"], secret.get("optional", False))
                    files.update(self._select(data, secret.get("items")))
                elif "downwardAPI" in source:
                    for item in source["downwardAPI"].get("items", []):
                        path = item["fieldRef"]["fieldPath"]
                        files[item["path"]] = _field_ref(self.pod, self.pod_ip, path).encode()
            return files
        if "emptyDir" in volume:
            return None
        raise PodFailure("UnsupportedVolume", f"volume {volume['name']} has an unsupported type")

    async def materialise_volumes(self) -> dict[str, Path]:
        """Writes every volume into the pod folder; returns the folder of each volume."""
        folders: dict[str, Path] = {}
        for volume in self.pod["spec"].get("volumes", []):
            folder = self.folder / "volumes" / volume["name"]
            folder.mkdir(parents=True, exist_ok=True)
            files = await self._volume_files(volume)
            for relative, content in (files or {}).items():
                target = folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            folders[volume["name"]] = folder
        return folders

    # ----- containers ----------------------------------------------------------------------

    def _service_account_kubeconfig(
        self, spec: dict[str, Any], folders: dict[str, Path]
    ) -> Path | None:
        """A kubeconfig over the container's mounted service-account token, if it has one.

        In-cluster clients read the token, CA and namespace from fixed paths under
        SERVICE_ACCOUNT_MOUNT, which no rewriting reaches. Their loaders fall back to the
        kubeconfig named by KUBECONFIG when those files are missing, so the agent writes one
        that names the same files in the pod's folder: the process authenticates with the
        token bound to its pod, as its ServiceAccount, exactly as in a real pod.
        """
        mount = next(
            (
                m
                for m in spec.get("volumeMounts", [])
                if m["mountPath"].rstrip("/") == SERVICE_ACCOUNT_MOUNT
            ),
            None,
        )
        if mount is None:
            return None
        folder = folders[mount["name"]]
        namespace = self.pod["metadata"]["namespace"]
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "cluster",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.api_port}",
                        "certificate-authority": str(folder / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": "pod", "user": {"tokenFile": str(folder / "token")}}],
            "contexts": [
                {
                    "name": "pod",
                    "context": {"cluster": "cluster", "user": "pod", "namespace": namespace},
                }
            ],
            "current-context": "pod",
        }
        path = self.folder / "kubeconfigs" / f"{spec['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document))
        return path

    def network_rewriter(self) -> Callable[[str], str]:
        """Rewrites the address 0.0.0.0 to the pod IP.

        Pods share the loopback interface here, with no network namespace each: a process
        binding every interface would take its port from every other pod. Binding its own
        pod IP is what 0.0.0.0 amounts to inside a real pod's network namespace.
        """
        return lambda value: _ANY_ADDRESS.sub(self.pod_ip, value)

    async def _environment(
        self, spec: dict[str, Any], rewrite: Callable[[str], str], folders: dict[str, Path]
    ) -> dict[str, str]:
        # A minimal environment, as in a container: nothing of the agent's own leaks in.
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.folder / "home"),
            "HOSTNAME": self.pod["metadata"]["name"],
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            # In-cluster clients reach the real API server on loopback, never a Service IP.
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.api_port),
        }
        kubeconfig = self._service_account_kubeconfig(spec, folders)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        # What the pod spec supplies has its mount paths rewritten; the agent's values not.
        for source in spec.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                ref = source["configMapRef"]
                data = await self._config_map(ref["name"], ref.get("optional", False))
            else:
                ref = source["secretRef"]
                data = await self._secret(ref["name"], ref.get("optional", False))
            env.update({prefix + k: rewrite(v.decode()) for k, v in data.items()})
        for variable in spec.get("env", []):
            name = variable["name"]
            if "value" in variable:
                env[name] = expand(rewrite(variable["value"]), env)
                continue
            source = variable.get("valueFrom", {})
            if "fieldRef" in source:
                env[name] = _field_ref(self.pod, self.pod_ip, source["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                data = await self._config_map(ref["name"], ref.get("optional", False))
                if ref["key"] in data:
                    env[name] = rewrite(data[ref["key"]].decode())
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                data = await self._secret(ref["name"], ref.get("optional", False))
                if ref["key"] in data:
                    env[name] = rewrite(data[ref["key"]].decode())
            elif "resourceFieldRef" in source:
                env[name] = "1"
            else:
                env[name] = ""
        return env

    @staticmethod
    def mount_rewriter(spec: dict[str, Any], folders: dict[str, Path]) -> Callable[[str], str]:
        """Rewrites each volumeMount's mountPath, where a path starts with it, to its folder.

        One pass over the value with every mount path in one pattern (longest first), so a
        folder written in place of one mount is never rewritten again by another (a mount at
        /tmp must not touch a pod folder that itself lives under /tmp). Only whole path
        components match: /etc/sluice leaves /etc/sluicex and /var/etc/sluice alone.
        """
        targets: dict[str, str] = {}
        for mount in spec.get("volumeMounts", []):
            folder = folders[mount["name"]]
            if mount.get("subPath"):
                folder = folder / mount["subPath"]
            targets[mount["mountPath"].rstrip("/") or "/"] = str(folder)
        if not targets:
            return lambda value: value
        alternatives = "|".join(re.escape(path) for path in sorted(targets, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w.\-/])({alternatives})(?=/|$|[^\w.\-])")
        return lambda value: pattern.sub(lambda match: targets[match.group(1)], value)

    async def _argv_and_env(
        self, spec: dict[str, Any], folders: dict[str, Path]
    ) -> tuple[list[str], dict[str, str]]:
        mounts = self.mount_rewriter(spec, folders)
        network = self.network_rewriter()

        def rewrite(value: str) -> str:
            return network(mounts(value))

        env = await self._environment(spec, rewrite, folders)
        command = [expand(rewrite(part), env) for part in spec.get("command", [])]
        args = [expand(rewrite(part), env) for part in spec.get("args", [])]
        if not command:
            raise PodFailure(
                "CreateContainerError",
                f"container {spec['name']} has no command: images are not run by this node",
            )
        command[0] = COMMAND_MAP.get(command[0], command[0])
        return [*command, *args], env

    async def _run_container(self, container: ContainerState, folders: dict[str, Path]) -> None:
        argv, env = await self._argv_and_env(container.spec, folders)
        policy = self.pod["spec"].get("restartPolicy", "Always")
        log_file = self.folder / "logs" / f"{container.name}.log"
        probe_task: asyncio.Task[None] | None = None
        while not self.stopping:
            with log_file.open("ab") as out:
                container.process = await asyncio.create_subprocess_exec(
                    *argv,
                    env=env,
                    cwd=self.folder / "work",
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_agent,
                )
            started = now()
            container.state = {"running": {"startedAt": started}}
            container.ready = "readinessProbe" not in container.spec
            self._mark_changed()
            probe_task = asyncio.create_task(self._probe_loop(container))
            code = await container.process.wait()
            probe_task.cancel()
            container.ready = False
            terminated = {
                "exitCode": code if code >= 0 else 128 - code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started,
                "finishedAt": now(),
            }
            if self.stopping:
                container.state = {"terminated": terminated}
                break
            restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            if not restart:
                container.state = {"terminated": terminated}
                self._mark_changed()
                break
            container.last_state = {"terminated": terminated}
            backoff = RESTART_BACKOFF_SECONDS[
                min(container.restart_count, len(RESTART_BACKOFF_SECONDS) - 1)
            ]
            container.restart_count += 1
            container.state = {
                "waiting": {"reason": "CrashLoopBackOff", "message": f"restarting in {backoff}s"}
            }
            self._mark_changed()
            log.info("%s/%s exited %s; restarting", self.folder.name, container.name, code)
            await asyncio.sleep(backoff)
        self._mark_changed()

    def _probe_port(self, container: ContainerState, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for declared in container.spec.get("ports", []):
            if declared.get("name") == port:
                number: int = declared["containerPort"]
                return number
        raise PodFailure("ProbeError", f"probe names unknown port {port}")

    async def _probe_once(self, container: ContainerState, probe: dict[str, Any]) -> bool:
        timeout = aiohttp.ClientTimeout(total=probe.get("timeoutSeconds", 1))
        try:
            if "httpGet" in probe:
                http = probe["httpGet"]
                port = self._probe_port(container, http["port"])
                url = f"http://{self.pod_ip}:{port}{http.get('path', '/')}"
                async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as r:
                    return 200 <= r.status < 400
            if "tcpSocket" in probe:
                port = self._probe_port(container, probe["tcpSocket"]["port"])
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.pod_ip, port), timeout.total
                )
                writer.close()
                return True
        except (OSError, aiohttp.ClientError, TimeoutError):
            return False
        return True

    async def _probe_loop(self, container: ContainerState) -> None:
        loops = []
        if "readinessProbe" in container.spec:
            loops.append(self._readiness_loop(container, container.spec["readinessProbe"]))
        if "livenessProbe" in container.spec:
            loops.append(self._liveness_loop(container, container.spec["livenessProbe"]))
        await asyncio.gather(*loops)

    async def _readiness_loop(self, container: ContainerState, probe: dict[str, Any]) -> None:
        # Readiness is probed faster than the spec asks so tests need not wait for production
        # periods; only how soon a change is seen differs, not what is reported.
        period = min(float(probe.get("periodSeconds", 10)), MAX_PROBE_PERIOD_SECONDS)
        await asyncio.sleep(probe.get("initialDelaySeconds", 0))
        failures = successes = 0
        while True:
            await asyncio.sleep(period)
            if await self._probe_once(container, probe):
                successes += 1
                failures = 0
                if successes >= probe.get("successThreshold", 1) and not container.ready:
                    container.ready = True
                    self._mark_changed()
            else:
                successes = 0
                failures += 1
                # Not ready until the first success; after that, only past the threshold.
                if container.ready and failures >= probe.get("failureThreshold", 3):
                    container.ready = False
                    self._mark_changed()

    async def _liveness_loop(self, container: ContainerState, probe: dict[str, Any]) -> None:
        # Liveness keeps the spec's own timing: probing faster would kill a process that is
        # slow to start on a loaded machine long before kubelet would.
        period = float(probe.get("periodSeconds", 10))
        await asyncio.sleep(probe.get("initialDelaySeconds", 0))
        failures = 0
        while True:
            await asyncio.sleep(period)
            if await self._probe_once(container, probe):
                failures = 0
                continue
            failures += 1
            if failures >= probe.get("failureThreshold", 3):
                log.info("%s/%s failed liveness; killing", self.folder.name, container.name)
                await self._signal(container, signal.SIGKILL)
                return

    async def _signal(self, container: ContainerState, signum: int) -> None:
        process = container.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signum)

    # ----- status --------------------------------------------------------------------------

    def _mark_changed(self) -> None:
        self._status_dirty.set()

    def _status(self) -> dict[str, Any]:
        states = [c.state for c in self.containers]
        if self.failure is not None:
            phase = "Pending"
        elif all("terminated" in s for s in states):
            codes = [s["terminated"]["exitCode"] for s in states]
            phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        elif any("running" in s or "terminated" in s for s in states) or any(
            c.restart_count for c in self.containers
        ):
            phase = "Running"
        else:
            phase = "Pending"
        self.phase = phase
        ready = phase == "Running" and all(c.ready for c in self.containers)
        transition = now()

        def condition(kind: str, status: bool, reason: str | None = None) -> dict[str, Any]:
            result = {
                "type": kind,
                "status": "True" if status else "False",
                "lastTransitionTime": transition,
            }
            if reason and not status:
                result["reason"] = reason
            return result

        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
            "conditions": [
                condition("PodScheduled", True),
                condition("Initialized", True),
                condition("ContainersReady", ready, "ContainersNotReady"),
                condition("Ready", ready, "ContainersNotReady"),
            ],
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.failure is not None:
            for container_status in status["containerStatuses"]:
                container_status["state"] = {
                    "waiting": {"reason": self.failure.reason, "message": str(self.failure)}
                }
        return status

    async def _report_loop(self) -> None:
        previous: dict[str, Any] | None = None
        while True:
            await self._status_dirty.wait()
            self._status_dirty.clear()
            status = self._status()
            comparable = {
                **status,
                "conditions": [{**c, "lastTransitionTime": ""} for c in status["conditions"]],
            }
            if comparable == previous:
                continue
            try:
                await self.api.merge_patch(self.path + "/status", {"status": status})
                previous = comparable
            except ApiStatusError as error:
                if error.status == 404:
                    return
                log.warning("status of %s: %s", self.folder.name, error)
                await asyncio.sleep(0.5)
                self._mark_changed()
            except aiohttp.ClientError as error:
                log.warning("status of %s: %s", self.folder.name, error)
                await asyncio.sleep(0.5)
                self._mark_changed()

    # ----- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        for sub in ("work", "logs", "home"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self._tasks.append(asyncio.create_task(self._report_loop()))
        self._mark_changed()
        try:
            folders = await self.materialise_volumes()
            for container in self.containers:
                # Fail fast on configuration errors before any process starts.
                await self._argv_and_env(container.spec, folders)
        except PodFailure as failure:
            log.warning("pod %s cannot start: %s", self.folder.name, failure)
            self.failure = failure
            self._mark_changed()
            return
        for container in self.containers:
            self._tasks.append(asyncio.create_task(self._run_container(container, folders)))

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM every container's process group; SIGKILL what is left after the grace."""
        if self.stopping:
            await self._stopped.wait()
            return
        self.stopping = True
        for container in self.containers:
            await self._signal(container, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + grace_seconds
        for container in self.containers:
            process = container.process
            if process is None:
                continue
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            try:
                await asyncio.wait_for(process.wait(), remaining)
            except TimeoutError:
                await self._signal(container, signal.SIGKILL)
                await process.wait()
            # Children the container left behind in its group go too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._stopped.set()

    def remove_files(self) -> None:
        # Keep the logs for debugging a failed test; drop volume contents (tokens, secrets).
        shutil.rmtree(self.folder / "volumes", ignore_errors=True)

    def process_ids(self) -> list[int]:
        return [
            c.process.pid for c in self.containers if c.process and c.process.returncode is None
        ]
