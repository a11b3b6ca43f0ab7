"""Test support (e2e node agent): one Node of the test cluster, in place of kubelet.

Registers a Ready Node with capacity, keeps its Lease fresh, watches the Pods bound to it and
runs each with a PodRunner; a pod's deletion stops its processes within the pod's grace
period and then removes the pod object, as kubelet does.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import os
import random
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp

from tests.e2e.nodeagent.api import ApiStatusError, KubeApi
from tests.e2e.nodeagent.pods import PodRunner, now

log = logging.getLogger("nodeagent")

KUBELET_VERSION = "v1.36.3"
LEASE_SECONDS = 40
HEARTBEAT_SECONDS = 10


# Pod IPs: 127.N.0.1, 127.N.0.2, ... with N drawn per agent from 2..254, so that clusters
# running side by side on one machine rarely share addresses (all of 127.0.0.0/8 reaches
# the loopback interface). SLUICE_E2E_POD_OCTET pins N.
def first_pod_ip() -> ipaddress.IPv4Address:
    octet = int(os.environ.get("SLUICE_E2E_POD_OCTET") or random.randint(2, 254))
    return ipaddress.IPv4Address(f"127.{octet}.0.1")


class NodeAgent:
    def __init__(self, api: KubeApi, node_name: str, root: Path) -> None:
        self.api = api
        self.node_name = node_name
        self.root = root
        self.pods: dict[str, PodRunner] = {}
        self._next_ip = 0
        self._first_ip = first_pod_ip()
        self._free_ips: list[str] = []
        self._api_port = urlparse(api.credentials.server).port or 443

    # ----- the Node ------------------------------------------------------------------------

    def _node_status(self) -> dict[str, Any]:
        resources = {"cpu": "16", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        stamp = now()
        conditions = [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "sluice e2e node agent is posting ready status",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        ]
        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            conditions.append(
                {
                    "type": kind,
                    "status": "False",
                    "reason": f"KubeletHasNo{kind}",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            )
        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node_name},
            ],
            "nodeInfo": {
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "sluice-process://1",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "osImage": "local processes",
                "kernelVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }

    async def register(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
        }
        try:
            await self.api.request("POST", "/api/v1/nodes", node)
        except ApiStatusError as error:
            if error.status != 409:
                raise
        await self._post_status()

    async def _post_status(self) -> None:
        await self.api.merge_patch(
            f"/api/v1/nodes/{self.node_name}/status", {"status": self._node_status()}
        )

    async def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}"
        renew = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": renew,
        }
        try:
            await self.api.merge_patch(path, {"spec": spec})
        except ApiStatusError as error:
            if error.status != 404:
                raise
            await self.api.request(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.node_name},
                    "spec": spec,
                },
            )

    async def heartbeat(self) -> None:
        while True:
            try:
                await self._renew_lease()
                await self._post_status()
            except (ApiStatusError, aiohttp.ClientError) as error:
                log.warning("heartbeat failed: %s", error)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    # ----- pods ----------------------------------------------------------------------------

    def _allocate_ip(self) -> str:
        if self._free_ips:
            return self._free_ips.pop(0)
        address = self._first_ip + self._next_ip
        self._next_ip += 1
        # Skip .0 and .255 of each /24: some tools refuse network/broadcast-looking addresses.
        while str(address).endswith((".0", ".255")):
            address += 1
            self._next_ip += 1
        return str(address)

    async def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        runner = self.pods.get(uid)
        if kind == "DELETED":
            if runner is not None:
                await self._finish(uid, grace=0, delete_object=False)
            return
        if pod["metadata"].get("deletionTimestamp"):
            if runner is not None:
                grace = pod["metadata"].get("deletionGracePeriodSeconds", 30)
                asyncio.create_task(self._finish(uid, grace=grace, delete_object=True))  # noqa: RUF006
            else:
                await self._delete_object(pod)
            return
        if runner is None and pod["status"].get("phase") not in ("Succeeded", "Failed"):
            runner = PodRunner(self.api, pod, self._allocate_ip(), self.root, self._api_port)
            self.pods[uid] = runner
            log.info("starting pod %s on %s", runner.folder.name, runner.pod_ip)
            await runner.start()

    async def _finish(self, uid: str, grace: float, delete_object: bool) -> None:
        runner = self.pods.get(uid)
        if runner is None:
            return
        log.info("stopping pod %s (grace %ss)", runner.folder.name, grace)
        await runner.stop(grace)
        if self.pods.pop(uid, None) is None:
            return
        runner.remove_files()
        self._free_ips.append(runner.pod_ip)
        if delete_object:
            await self._delete_object(runner.pod)

    async def _delete_object(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        try:
            await self.api.request(
                "DELETE",
                f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}",
                {
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": metadata["uid"]},
                },
            )
        except ApiStatusError as error:
            if error.status not in (404, 409):
                raise

    async def watch_pods(self) -> None:
        path = "/api/v1/pods"
        selector = {"fieldSelector": f"spec.nodeName={self.node_name}"}
        while True:
            try:
                listing = await self.api.get(path, selector)
                seen = set()
                for pod in listing["items"]:
                    seen.add(pod["metadata"]["uid"])
                    await self._on_pod("ADDED", pod)
                for uid in set(self.pods) - seen:
                    await self._finish(uid, grace=0, delete_object=False)
                version = listing["metadata"]["resourceVersion"]
                while True:
                    async for event in self.api.watch(
                        path, {**selector, "resourceVersion": version}
                    ):
                        if event["type"] == "ERROR":
                            raise ApiStatusError(event["object"].get("code", 500), str(event))
                        version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            await self._on_pod(event["type"], event["object"])
            except (ApiStatusError, aiohttp.ClientError, TimeoutError) as error:
                log.info("pod watch restarts: %s", error)
                await asyncio.sleep(0.5)

    async def shutdown(self, grace: float = 5.0) -> None:
        await asyncio.gather(
            *(self._finish(uid, grace, delete_object=False) for uid in list(self.pods)),
            return_exceptions=True,
        )

    async def run(self) -> None:
        await self.register()
        await asyncio.gather(self.heartbeat(), self.watch_pods())
