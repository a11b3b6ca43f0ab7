"""E2e: Sluice installed with `helm install` of charts/sluice, upgraded and uninstalled.

The node agent runs the operator and gateway pods from the chart's own manifests (the
container's command and args, env, ServiceAccount token), so this is the install path of a
user, minus the image: the chart's RBAC, auth settings and probes are what the pods get.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.gateway_client import Answer, call, create_api_key
from tests.e2e.kubectl import Kubectl
from tests.e2e.polling import eventually
from tests.e2e.quickstart import expected_revenue, net_output, quickstart_documents
from tests.e2e.sluice_processes import CHART, helm_environment
from tests.e2e.test_lifecycle import POD, condition, wait_ready

# Installs, upgrades and uninstalls a release whose pods are processes on a shared machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

RELEASE = "sluice"
RELEASE_NAMESPACE = "sluice-system"
# Helm's ownership marks on what it installs; the session's CRDs must lose them again.
HELM_ANNOTATIONS = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")
HELM_LABEL = "app.kubernetes.io/managed-by"
KEEP = "helm.sh/resource-policy"


class Helm:
    """helm 4 against the test cluster as its admin, with caches in the test's folder."""

    def __init__(self, binary: Path, kubectl: Kubectl, cache: Path) -> None:
        self.binary = binary
        self.kubectl = kubectl
        self.kubeconfig = kubectl.kubeconfig
        self.cache = cache

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=200,
            check=False,
            env=helm_environment(self.cache),
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result}")
        return result


def pods(system: Kubectl, component: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = system.get_json(
        "pods",
        "-l",
        f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}",
    )["items"]
    return [p for p in found if not p["metadata"].get("deletionTimestamp")]


def ready_pods(system: Kubectl, component: str, count: int) -> list[dict[str, Any]] | None:
    found = pods(system, component)
    if len(found) == count and all(condition(p, "Ready").get("status") == "True" for p in found):
        return found
    return None


def gateway_url(pod: dict[str, Any]) -> str:
    return f"http://{pod['status']['podIP']}:8080"


def list_pipelines(url: str, key: str) -> Answer | None:
    answer = call(f"{url}/v0/pipelines", token=key)
    return answer if answer.status == 200 else None


def release_crds(kubectl: Kubectl, names: list[str]) -> None:
    """Hands the session's CRDs back as the shipped YAML has them (other tests compare)."""
    removed = [f"{name}-" for name in (*HELM_ANNOTATIONS, KEEP)]
    kubectl.run("annotate", "crd", *names, *removed, check=False)
    kubectl.run("label", "crd", *names, f"{HELM_LABEL}-", check=False)


@pytest.fixture
def helm_release(
    node: str,
    kubectl: Kubectl,
    crds: list[Path],
    helm: Path,
    workdir: Path,
) -> Iterator[Helm]:
    """helm for a release `sluice` in `sluice-system`; whatever the test leaves is removed."""
    del node
    client = Helm(helm, kubectl, workdir / "helm")
    names = [path.name.removesuffix(".yaml") for path in crds]
    try:
        yield client
    finally:
        client.run("uninstall", RELEASE, f"--namespace={RELEASE_NAMESPACE}", check=False)
        # Wait until it is gone: the next test installs the release into it again.
        kubectl.run(
            "delete", "namespace", RELEASE_NAMESPACE, "--wait=true", "--timeout=120s", check=False
        )
        release_crds(kubectl, names)


def install(helm: Helm, watched: str) -> dict[str, Any]:
    """`helm install` watching one namespace (auth on: API keys and ServiceAccount tokens).

    The CRDs exist already (the session applied crds/): the release adopts them, as it would
    adopt CRDs applied by hand before a first install. Returns the Ready operator pod.
    """
    helm.run(
        "install",
        RELEASE,
        str(CHART),
        f"--namespace={RELEASE_NAMESPACE}",
        "--create-namespace",
        "--take-ownership",
        f"--set=watchNamespaces={{{watched}}}",
        "--wait",
        "--timeout=120s",
    )
    system = helm.kubectl.in_namespace(RELEASE_NAMESPACE)
    (operator_pod,) = eventually(
        lambda: ready_pods(system, "operator", 1), "the operator pod Ready", timeout=60
    )
    return operator_pod


def upgrade_to_gateway_deployment(helm: Helm) -> None:
    helm.run(
        "upgrade",
        RELEASE,
        str(CHART),
        f"--namespace={RELEASE_NAMESPACE}",
        "--reuse-values",
        "--set=gateway.mode=deployment",
        "--wait",
        "--timeout=120s",
    )


def run_quickstart(ns: Kubectl, output: Path) -> None:
    ns.apply(*quickstart_documents(output))
    ns.run("wait", "--for=condition=Ready", "pipeline/orders", "--timeout=90s")
    ns.run("wait", "--for=condition=Complete", "completiontoken/orders-loaded", "--timeout=90s")
    assert net_output(output) == expected_revenue()


def test_helm_install_upgrade_and_uninstall_run_the_quickstart_and_keep_the_crds(
    helm_release: Helm, kubectl: Kubectl, namespace: str, workdir: Path, crds: list[Path]
) -> None:
    system = kubectl.in_namespace(RELEASE_NAMESPACE)
    ns = kubectl.in_namespace(namespace)

    operator_pod = install(helm_release, namespace)
    assert [c["name"] for c in operator_pod["spec"]["containers"]] == ["operator", "gateway"]
    sidecar = gateway_url(operator_pod)
    output = workdir / "revenue_by_customer.json"
    run_quickstart(ns, output)

    # The gateway sidecar: auth on, an API key made as a user makes it.
    assert call(f"{sidecar}/healthz").status == 200
    assert call(f"{sidecar}/v0/pipelines").status == 401
    key = create_api_key(kubectl.kubeconfig, namespace, "e2e", "write")
    listed = eventually(lambda: list_pipelines(sidecar, key), "the sidecar to accept the key")
    assert [p["name"] for p in listed.body] == ["orders"]

    upgrade_to_gateway_deployment(helm_release)
    (new_operator,) = eventually(
        lambda: ready_pods(system, "operator", 1), "the upgraded operator pod Ready", timeout=60
    )
    assert [c["name"] for c in new_operator["spec"]["containers"]] == ["operator"]
    assert new_operator["metadata"]["uid"] != operator_pod["metadata"]["uid"]
    gateways = eventually(
        lambda: ready_pods(system, "gateway", 2), "two gateway pods Ready", timeout=60
    )
    for gateway in gateways:
        # Its own ServiceAccount now, with only the gateway's permissions.
        assert gateway["spec"]["serviceAccountName"] == f"{RELEASE}-gateway"
        url = gateway_url(gateway)
        assert call(f"{url}/v0/pipelines").status == 401
        served = eventually(partial(list_pipelines, url, key), "a gateway replica to serve")
        assert [p["name"] for p in served.body] == ["orders"]

    # The new operator works the pipeline it found: Ready, and a token minted now completes.
    wait_ready(ns, "Running")
    token = copy.deepcopy(
        next(d for d in quickstart_documents(output) if d["kind"] == "CompletionToken")
    )
    token["metadata"]["name"] = "after-upgrade"
    ns.apply(token)
    ns.run("wait", "--for=condition=Complete", "completiontoken/after-upgrade", "--timeout=60s")

    # Uninstall in the documented order: the resources first, while the operator runs.
    ns.run("delete", "pipelines,connectors,completiontokens", "--all", "--timeout=60s")
    eventually(lambda: ns.run("get", "pod", POD, check=False).returncode != 0, "pod gone")
    helm_release.run(
        "uninstall", RELEASE, f"--namespace={RELEASE_NAMESPACE}", "--wait", "--timeout=60s"
    )
    eventually(lambda: not system.get_json("pods")["items"], "the release's pods gone", timeout=60)
    # The CRDs stay (helm.sh/resource-policy: keep): deleting them would delete every resource.
    for path in crds:
        crd = kubectl.get_json("crd", path.name.removesuffix(".yaml"))
        assert crd["metadata"]["annotations"][KEEP] == "keep"
        assert condition(crd, "Established").get("status") == "True"


def test_helm_upgrade_keeps_a_running_pipeline_running(
    helm_release: Helm, kubectl: Kubectl, namespace: str, workdir: Path
) -> None:
    ns = kubectl.in_namespace(namespace)
    install(helm_release, namespace)
    run_quickstart(ns, workdir / "revenue_by_customer.json")
    before = wait_ready(ns, "Running")
    pipeline_pod = ns.get_json("pod", POD)

    # Recreates the operator pod (strategy Recreate) and adds the gateway Deployment.
    upgrade_to_gateway_deployment(helm_release)
    system = kubectl.in_namespace(RELEASE_NAMESPACE)
    eventually(lambda: ready_pods(system, "gateway", 2), "two gateway pods Ready", timeout=60)
    # A token minted after the upgrade completes only once the new operator has worked the
    # pipeline, so whatever it would change about the pod has been changed by then.
    token = copy.deepcopy(
        next(d for d in quickstart_documents(workdir / "x") if d["kind"] == "CompletionToken")
    )
    token["metadata"]["name"] = "after-upgrade"
    ns.apply(token)
    ns.run("wait", "--for=condition=Complete", "completiontoken/after-upgrade", "--timeout=60s")

    after = wait_ready(ns, "Running")
    assert after["status"]["incarnation"] == before["status"]["incarnation"]
    kept = ns.get_json("pod", POD)
    assert kept["metadata"]["uid"] == pipeline_pod["metadata"]["uid"]
    assert condition(kept, "Ready").get("status") == "True"
    restarts = [c["restartCount"] for c in kept["status"]["containerStatuses"]]
    assert restarts == [c["restartCount"] for c in pipeline_pod["status"]["containerStatuses"]]
