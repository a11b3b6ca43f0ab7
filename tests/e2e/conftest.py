"""Fixtures of the e2e tier: one real control plane per test session, real kubectl.

Nothing here skips: when the control-plane binaries or the tools are missing, every test of
the tier fails with a message that says how to install them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster.controlplane import (
    NODE_NAME,
    REPO,
    ControlPlane,
    require_tool,
    start_control_plane,
    start_node_agent,
)
from tests.e2e.kstatus.evaluate import Kstatus
from tests.e2e.kubectl import Kubectl

CRD_DIR = REPO / "crds"


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("cluster"))
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
