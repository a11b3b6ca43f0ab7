"""E2e: the node agent runs plain Pods as local processes, the way kubelet would run them."""

from __future__ import annotations

import ipaddress
import json
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.kubectl import Kubectl
from tests.e2e.nodeagent.pods import PodRunner
from tests.e2e.polling import eventually

pytestmark = pytest.mark.e2e

SERVER_SCRIPT = Path(__file__).parent / "workloads" / "probe_server.py"

PodFactory = Callable[..., dict[str, Any]]


def http_json(url: str, timeout: float = 3) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def pod_doc(
    name: str,
    *,
    env: list[dict[str, Any]] | None = None,
    args: list[str] | None = None,
    restart_policy: str = "Always",
    grace: int = 5,
    probe_period: int = 1,
) -> dict[str, Any]:
    """A pod running the probe server from the `probe-server` ConfigMap, mounted at /app."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "probe"}},
        "spec": {
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": grace,
            "containers": [
                {
                    "name": "server",
                    "image": "python:3.11",
                    "command": ["python"],
                    "args": ["/app/probe_server.py", *(args or [])],
                    "env": [
                        {
                            "name": "POD_IP",
                            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                        },
                        *(env or []),
                    ],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {
                        "httpGet": {"path": "/ready", "port": "http"},
                        "periodSeconds": probe_period,
                        "failureThreshold": 1,
                    },
                    "volumeMounts": [{"name": "app", "mountPath": "/app", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "app", "configMap": {"name": "probe-server"}}],
        },
    }


@pytest.fixture
def ns(kubectl: Kubectl, node: str, namespace: str) -> Kubectl:
    """kubectl in a fresh namespace that holds the probe server's ConfigMap."""
    del node
    scoped = kubectl.in_namespace(namespace)
    scoped.run("create", "configmap", "probe-server", f"--from-file={SERVER_SCRIPT}")
    # Pods need the namespace's default ServiceAccount, made by kube-controller-manager.
    eventually(lambda: scoped.run("get", "sa", "default", check=False).returncode == 0, "the SA")
    return scoped


def run_pod(ns: Kubectl, document: dict[str, Any], ready: bool = True) -> dict[str, Any]:
    ns.apply(document)
    name = document["metadata"]["name"]
    if ready:
        ns.run("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=40s")
    pod: dict[str, Any] = ns.get_json("pod", name)
    return pod


def pod_pid(pod: dict[str, Any]) -> int:
    container_id: str = pod["status"]["containerStatuses"][0]["containerID"]
    return int(container_id.removeprefix("sluice-node://"))


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not running; the agent reaps its children, so this is rare and brief.
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_a_pod_runs_with_its_env_volumes_and_own_loopback_ip(ns: Kubectl) -> None:
    ns.run("create", "configmap", "greeting", "--from-literal=hello.txt=hello from a configmap")
    ns.run("create", "secret", "generic", "password", "--from-literal=password=s3cret")
    document = pod_doc(
        "info",
        args=[
            "/etc/greeting/hello.txt",
            "/etc/secret/password",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
        ],
        env=[
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {
                "name": "FROM_CM",
                "valueFrom": {"configMapKeyRef": {"name": "greeting", "key": "hello.txt"}},
            },
            {"name": "EXPANDED", "value": "$(POD_NAME)-suffix"},
            {"name": "GREETING_FILE", "value": "/etc/greeting/hello.txt"},
            {"name": "BIND", "value": "http://0.0.0.0:8081/healthz"},
            {"name": "NETWORK", "value": "10.0.0.0/8"},
        ],
    )
    container = document["spec"]["containers"][0]
    container["volumeMounts"] += [
        {"name": "greeting", "mountPath": "/etc/greeting"},
        {"name": "password", "mountPath": "/etc/secret"},
    ]
    document["spec"]["volumes"] += [
        {"name": "greeting", "configMap": {"name": "greeting"}},
        {"name": "password", "secret": {"secretName": "password"}},
    ]
    pod = run_pod(ns, document)

    pod_ip = pod["status"]["podIP"]
    assert ipaddress.IPv4Address(pod_ip) in ipaddress.IPv4Network("127.0.0.0/8")
    assert pod_ip != "127.0.0.1"
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["nodeName"] == "node-1"
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] is True
    assert status["restartCount"] == 0
    assert "running" in status["state"]

    info = http_json(f"http://{pod_ip}:8080/info")
    env = info["env"]
    assert env["POD_IP"] == pod_ip
    assert env["POD_NAME"] == "info"
    assert env["POD_NS"] == ns.namespace
    assert env["APP"] == "probe"
    assert env["FROM_CM"] == "hello from a configmap"
    assert env["EXPANDED"] == "info-suffix"
    # 0.0.0.0 means the pod's own address (no network namespaces); other addresses stay.
    assert env["BIND"] == f"http://{pod_ip}:8081/healthz"
    assert env["NETWORK"] == "10.0.0.0/8"
    # Mount paths in args and env values point at the pod's materialised volumes.
    greeting_path, secret_path, token_path, namespace_path = info["argv"][1:]
    assert env["GREETING_FILE"] == greeting_path
    assert not greeting_path.startswith("/etc/greeting")
    files = info["files"]
    assert files[greeting_path] == "hello from a configmap"
    assert files[secret_path] == "s3cret"
    assert files[namespace_path] == ns.namespace
    # The projected service-account token is a real one: the API server knows who it is.
    token = files[token_path]
    whoami = ns.run("auth", "whoami", f"--token={token}", "-o", "json")
    user = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{ns.namespace}:default"
    # In-cluster clients get a kubeconfig over that same token (never the agent's own).
    kubeconfig = Path(env["KUBECONFIG"])
    assert kubeconfig != ns.kubeconfig
    pod_config = yaml.safe_load(kubeconfig.read_text())
    assert pod_config["users"][0]["user"] == {"tokenFile": token_path}
    assert pod_config["contexts"][0]["context"]["namespace"] == ns.namespace
    as_pod = Kubectl(ns.binary, kubeconfig).run("auth", "whoami", "-o", "json")
    pod_user = json.loads(as_pod.stdout)["status"]["userInfo"]["username"]
    assert pod_user == f"system:serviceaccount:{ns.namespace}:default"


def test_pods_get_distinct_addresses_and_may_use_the_same_port(ns: Kubectl) -> None:
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    ns.apply(pod_doc("one", env=env), pod_doc("two", env=env))
    ns.run("wait", "--for=condition=Ready", "pod/one", "pod/two", "--timeout=40s")
    ips = {name: ns.get_json("pod", name)["status"]["podIP"] for name in ("one", "two")}
    assert ips["one"] != ips["two"]
    for name, ip in ips.items():
        assert http_json(f"http://{ip}:8080/info")["env"]["POD_NAME"] == name


def test_readiness_follows_the_http_probe(ns: Kubectl) -> None:
    pod = run_pod(ns, pod_doc("flip"))
    url = f"http://{pod['status']['podIP']}:8080/toggle"

    def ready() -> str:
        conditions = ns.get_json("pod", "flip")["status"]["conditions"]
        return str(next(c["status"] for c in conditions if c["type"] == "Ready"))

    assert http_json(url) == {"ready": False}
    eventually(lambda: ready() == "False", "the pod to turn not-Ready")
    assert http_json(url) == {"ready": True}
    eventually(lambda: ready() == "True", "the pod to turn Ready again")


def test_a_crashed_container_is_restarted_and_counted(ns: Kubectl) -> None:
    pod = run_pod(ns, pod_doc("crash"))
    first_pid = pod_pid(pod)
    http_json(f"http://{pod['status']['podIP']}:8080/exit?code=3")

    def restarted() -> dict[str, Any] | None:
        status: dict[str, Any] = ns.get_json("pod", "crash")["status"]["containerStatuses"][0]
        return status if status["restartCount"] == 1 and status["ready"] else None

    status = eventually(restarted, "a restart")
    assert status["lastState"]["terminated"]["exitCode"] == 3
    again = ns.get_json("pod", "crash")
    assert again["status"]["podIP"] == pod["status"]["podIP"]
    assert pod_pid(again) != first_pid
    assert not process_exists(first_pid)


@pytest.mark.parametrize(
    ("policy", "code", "phase"),
    [("Never", 3, "Failed"), ("OnFailure", 0, "Succeeded"), ("Never", 0, "Succeeded")],
)
def test_restart_policy_decides_the_final_phase(
    ns: Kubectl, policy: str, code: int, phase: str
) -> None:
    name = f"{policy.lower()}-{code}"
    pod = run_pod(ns, pod_doc(name, restart_policy=policy))
    http_json(f"http://{pod['status']['podIP']}:8080/exit?code={code}")
    final = eventually(
        lambda: (p := ns.get_json("pod", name))["status"]["phase"] in ("Succeeded", "Failed") and p,
        f"pod {name} to finish",
    )
    assert final["status"]["phase"] == phase
    status = final["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["exitCode"] == code
    assert status["restartCount"] == 0


def test_deletion_terminates_the_process_group_within_the_grace_period(ns: Kubectl) -> None:
    stubborn = run_pod(
        ns,
        pod_doc("stubborn", grace=3, env=[{"name": "IGNORE_SIGTERM", "value": "true"}]),
    )
    polite = run_pod(ns, pod_doc("polite", grace=20))
    started = time.monotonic()
    ns.run("delete", "pod", "polite", "--timeout=30s")
    polite_seconds = time.monotonic() - started
    started = time.monotonic()
    ns.run("delete", "pod", "stubborn", "--timeout=30s")
    stubborn_seconds = time.monotonic() - started
    # The polite server exits on SIGTERM at once; the stubborn one is killed after 3 s.
    assert polite_seconds < 3, polite_seconds
    assert 3 <= stubborn_seconds < 10, stubborn_seconds
    assert not process_exists(pod_pid(polite))
    assert not process_exists(pod_pid(stubborn))


def test_a_statefulset_pod_is_scheduled_run_and_garbage_collected(ns: Kubectl) -> None:
    template = pod_doc("ignored")
    template["metadata"] = {"labels": {"app": "probe-set"}}
    stateful_set = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "probe-set"},
        "spec": {
            "replicas": 1,
            "serviceName": "probe-set",
            "selector": {"matchLabels": {"app": "probe-set"}},
            "template": {"metadata": template["metadata"], "spec": template["spec"]},
        },
    }
    ns.apply(stateful_set)
    ns.run("rollout", "status", "statefulset/probe-set", "--timeout=40s")
    pod = ns.get_json("pod", "probe-set-0")
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    pid = pod_pid(pod)
    assert process_exists(pid)
    ns.run("delete", "statefulset", "probe-set", "--cascade=background")
    eventually(
        lambda: "NotFound" in ns.run("get", "pod", "probe-set-0", check=False).stderr,
        "the StatefulSet's pod to be garbage-collected",
    )
    eventually(lambda: not process_exists(pid), "the pod's process to end")


def test_mount_paths_are_rewritten_in_one_pass_on_whole_path_components() -> None:
    rewrite = PodRunner.mount_rewriter(
        {
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/sluice/config"},
                {"name": "tmp", "mountPath": "/tmp/"},
                {"name": "etc", "mountPath": "/etc/sluice", "subPath": "sub"},
            ]
        },
        {name: Path(f"/tmp/pod/volumes/{name}") for name in ("config", "tmp", "etc")},
    )
    assert (
        rewrite("--config=/etc/sluice/config/c.json") == "--config=/tmp/pod/volumes/config/c.json"
    )
    assert rewrite("/etc/sluice/x") == "/tmp/pod/volumes/etc/sub/x"
    # A folder written for one mount is not rewritten again by the /tmp mount.
    assert rewrite("/tmp") == "/tmp/pod/volumes/tmp"
    assert rewrite("/tmp/a:/var/tmp/b") == "/tmp/pod/volumes/tmp/a:/var/tmp/b"
    for untouched in ("/etc/sluicex/a", "a/tmp/b", "/tmpx", "/var/etc/sluice"):
        assert rewrite(untouched) == untouched
