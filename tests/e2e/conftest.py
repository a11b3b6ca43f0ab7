"""Fixtures of the e2e tier: one real control plane per test session, real kubectl.

Nothing here skips: when the control-plane binaries or the tools are missing, every test of
the tier fails with a message that says how to install them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.cluster.controlplane import (
    NODE_NAME,
    REPO,
    ControlPlane,
    free_port,
    require_tool,
    start_control_plane,
    start_node_agent,
)
from tests.e2e.kstatus.evaluate import Kstatus
from tests.e2e.kubectl import Kubectl
from tests.e2e.polling import eventually
from tests.e2e.sluice_processes import (
    Identity,
    SluiceProcess,
    bound_rules,
    chart_rbac,
    cluster_scoped,
    installed_helm,
    service_account_kubeconfig,
    start_sluice,
)

CRD_DIR = REPO / "crds"


@pytest.fixture(scope="session")
def e2e_root() -> Iterator[Path]:
    """One folder for the session's cluster state, logs and test files.

    Not pytest's tmp_path: pytest prunes all but its three newest base folders when any other
    session starts, which would pull etcd's data out from under a long run on a shared
    machine. Removed at the end unless SLUICE_E2E_KEEP=1 (for reading the logs).
    """
    root = Path(tempfile.mkdtemp(prefix="sluice-e2e-"))
    try:
        yield root
    finally:
        if os.environ.get("SLUICE_E2E_KEEP") != "1":
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workdir(e2e_root: Path, request: pytest.FixtureRequest) -> Path:
    """A folder of this test's own inside the session folder."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:80]
    folder = e2e_root / "tests" / name
    folder.mkdir(parents=True, exist_ok=False)
    return folder


@pytest.fixture(scope="session")
def control_plane(e2e_root: Path) -> Iterator[ControlPlane]:
    plane = start_control_plane(e2e_root / "cluster")
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def node(control_plane: ControlPlane) -> str:
    """The name of the cluster's one Node, run by the node agent; Ready."""
    start_node_agent(control_plane)
    return NODE_NAME


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    """kubectl as the cluster admin."""
    return Kubectl(require_tool("kubectl"), control_plane.kubeconfig)


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> list[Path]:
    """The shipped CRDs, applied and Established."""
    files = sorted(CRD_DIR.glob("*.yaml"))
    kubectl.run("apply", "--server-side", "--field-manager=sluice-e2e", "-f", str(CRD_DIR))
    kubectl.run(
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        *(f"crd/{path.name.removesuffix('.yaml')}" for path in files),
    )
    return files


@pytest.fixture(scope="session")
def kstatus() -> Kstatus:
    """The kstatus evaluator (tests/e2e/kstatus), built by `make e2e`."""
    return Kstatus.built()


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting for it to go)."""
    name = f"e2e-{secrets.token_hex(4)}"
    kubectl.run("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def helm() -> Path:
    """helm 4, installed by the project's script into the cache (by `make e2e`)."""
    return installed_helm()


@dataclass
class Operated:
    """A namespace managed by a `sluice operator` that runs with the chart's RBAC."""

    namespace: str
    kubectl: Kubectl
    """The admin's kubectl in the namespace (what a user applies with)."""
    identity: Identity
    folder: Path
    operator: SluiceProcess

    def restart_operator(self) -> SluiceProcess:
        self.operator = start_operator(self.identity, self.namespace, self.folder)
        return self.operator


def start_operator(identity: Identity, namespace: str, folder: Path) -> SluiceProcess:
    # kopf's liveness endpoint on a free loopback port: several operators may run at once.
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    return start_sluice(
        ["operator", "--namespace", namespace, "--liveness", liveness],
        identity.kubeconfig,
        folder / "operator.log",
    )


@pytest.fixture
def chart_identity(
    control_plane: ControlPlane,
    kubectl: Kubectl,
    crds: list[Path],
    helm: Path,
    namespace: str,
    workdir: Path,
) -> Iterator[Identity]:
    """The chart's RBAC for a release in `namespace` watching it, and its ServiceAccount.

    In the chart's default sidecar mode the operator and the gateway share this account.
    """
    del crds
    rbac = chart_rbac(helm, namespace, namespace, namespace, workdir / "helm")
    kubectl.apply(*rbac)
    account = next(d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount")
    try:
        yield service_account_kubeconfig(
            control_plane,
            kubectl,
            namespace,
            account,
            workdir / "operator.kubeconfig",
            bound_rules(rbac, account),
        )
    finally:
        kubectl.run("delete", "--wait=false", "--ignore-not-found", *cluster_scoped(rbac))


@pytest.fixture
def operated(
    node: str, kubectl: Kubectl, chart_identity: Identity, namespace: str, workdir: Path
) -> Iterator[Operated]:
    """`sluice operator --namespace NS` running as the chart's ServiceAccount."""
    del node
    operated = Operated(
        namespace,
        kubectl.in_namespace(namespace),
        chart_identity,
        workdir,
        start_operator(chart_identity, namespace, workdir),
    )
    try:
        yield operated
    finally:
        code = operated.operator.stop()
        # Stopping must be clean: SIGTERM ends kopf with exit 0 (or -15 if it was killed).
        assert code in (0, -signal.SIGTERM), operated.operator.output()[-3000:]


@dataclass
class Gateway:
    """`sluice gateway --namespace NS` on a loopback port, as the chart's ServiceAccount."""

    url: str
    namespace: str
    process: SluiceProcess


@pytest.fixture
def gateway(chart_identity: Identity, namespace: str, workdir: Path) -> Iterator[Gateway]:
    port = free_port()
    process = start_sluice(
        ["gateway", "--namespace", namespace, "--host", "127.0.0.1", "--port", str(port)],
        chart_identity.kubeconfig,
        workdir / "gateway.log",
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.process.poll() is not None:
            raise AssertionError(f"the gateway exited:\n{process.output()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    eventually(healthy, "the gateway's /healthz", timeout=30)
    try:
        yield Gateway(url, namespace, process)
    finally:
        code = process.stop()
        assert code in (0, -signal.SIGTERM), process.output()[-3000:]
