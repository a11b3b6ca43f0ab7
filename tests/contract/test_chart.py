"""The Helm chart lints, renders over a matrix of values, and every manifest it renders is valid.

Runs the real helm 4 binary (fetched once by tests/e2e/cluster/install-helm.sh); a missing helm
fails these tests, it never skips them. Every rendered object is checked with kubernetes-validate
(strict: unknown fields are errors), every pod against Pod Security "restricted", and values the
schema must refuse are refused.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

import sluice
from sluice.cli import build_parser
from sluice.gateway import command as gateway_command
from sluice.models.settings import OperatorSettings
from tests.factories import ROOT

CHART = ROOT / "charts" / "sluice"
CRD_DIR = ROOT / "crds"
FIXTURES = Path(__file__).parent / "fixtures"
RELEASE = "sluice"
NAMESPACE = "sluice-system"
# The chart's kubeVersion floor and a current release: both must accept every manifest.
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
MONITORING_API = "monitoring.coreos.com/v1"
KEEP = "helm.sh/resource-policy"

Manifest = dict[str, Any]


# --- helm -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Helm:
    """The helm binary with its state folders kept out of the user's home."""

    binary: str
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], env=self.env, capture_output=True, text=True, check=False
        )


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    installer = ROOT / "tests" / "e2e" / "cluster" / "install-helm.sh"
    result = subprocess.run([str(installer)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"could not install helm with {installer}:\n{result.stderr}")
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return Helm(binary=result.stdout.strip(), env=env)


def _values_args(values: dict[str, Any], folder: Path, api_versions: tuple[str, ...]) -> list[str]:
    values_file = folder / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    args = ["--values", str(values_file)]
    for api in api_versions:
        args += ["--api-versions", api]
    return args


@dataclass(frozen=True)
class Case:
    """One point of the render matrix."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    api_versions: tuple[str, ...] = ()


CASES = [
    Case("defaults"),
    Case(
        "separate-gateway",
        {
            "gateway": {
                "mode": "deployment",
                "replicas": 3,
                "ingress": {"enabled": True, "className": "nginx"},
            }
        },
    ),
    Case(
        "watch-namespaces",
        {
            "watchNamespaces": ["team-a", "team-b"],
            "networkPolicy": {
                "pipelineExtraFrom": [
                    {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
                ]
            },
        },
    ),
    Case(
        "watch-namespaces-separate-gateway",
        {"watchNamespaces": ["team-a"], "gateway": {"mode": "deployment"}},
    ),
    Case(
        "monitoring",
        {"monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
        (MONITORING_API,),
    ),
    Case("monitoring-without-api", {"monitoring": {"serviceMonitor": {"enabled": True}}}),
    Case("auth-off", {"auth": {"enabled": False}}),
    Case(
        "auth-oidc-only",
        {
            "auth": {
                "apiKeys": {"enabled": False},
                "serviceAccountTokens": {"enabled": False},
                "oidc": {
                    "enabled": True,
                    "issuer": "https://issuer.example.com",
                    "audience": "sluice",
                },
            }
        },
    ),
    Case("api-keys-only", {"auth": {"serviceAccountTokens": {"enabled": False}}}),
    Case(
        "no-crds-no-network-policies",
        {"crds": {"enabled": False}, "networkPolicy": {"enabled": False}},
    ),
    Case("crds-not-kept", {"crds": {"keep": False}}),
]
CASES_BY_NAME = {case.name: case for case in CASES}


@pytest.fixture(scope="module")
def rendered(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    """Every case of the matrix, rendered once per module."""
    results: dict[str, list[Manifest]] = {}
    for case in CASES:
        folder = tmp_path_factory.mktemp(case.name)
        result = helm.run(
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            *_values_args(case.values, folder, case.api_versions),
        )
        assert result.returncode == 0, f"{case.name}: helm template failed:\n{result.stderr}"
        results[case.name] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return results


def _of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in manifests if doc["kind"] == kind]


def _named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [doc for doc in _of_kind(manifests, kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def _all_rendered(rendered: dict[str, list[Manifest]]) -> Iterator[tuple[str, Manifest]]:
    for case, manifests in rendered.items():
        for manifest in manifests:
            yield case, manifest


# --- lint -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_helm_lint_strict(helm: Helm, case: Case, tmp_path: Path) -> None:
    # helm lint has no --api-versions: API-gated templates are exercised by the render matrix.
    result = helm.run("lint", "--strict", str(CHART), *_values_args(case.values, tmp_path, ()))
    assert result.returncode == 0, result.stdout + result.stderr


# --- every manifest is valid ----------------------------------------------------------------------


def test_every_rendered_manifest_is_valid_kubernetes(rendered: dict[str, list[Manifest]]) -> None:
    # Cases share most objects; validating each distinct object once keeps the test fast.
    distinct: dict[str, tuple[str, Manifest]] = {}
    for case, manifest in _all_rendered(rendered):
        distinct.setdefault(json.dumps(manifest, sort_keys=True), (case, manifest))
    checked = 0
    for case, manifest in distinct.values():
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            # A CRD kind kubernetes-validate has no schema for; its shape is checked below.
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                name = f"{manifest['kind']}/{manifest['metadata']['name']}"
                pytest.fail(f"{case}: {name} is invalid for Kubernetes {version}: {error}")
            checked += 1
    assert checked > 50


def test_namespaced_objects_name_their_namespace(rendered: dict[str, list[Manifest]]) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    for case, manifest in _all_rendered(rendered):
        if manifest["kind"] not in cluster_scoped:
            assert manifest["metadata"].get("namespace"), (case, manifest["kind"])


def test_object_names_are_unique(rendered: dict[str, list[Manifest]]) -> None:
    for case, manifests in rendered.items():
        keys = [
            (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])
            for doc in manifests
        ]
        assert len(keys) == len(set(keys)), case


# --- Pod Security "restricted" --------------------------------------------------------------------

ALLOWED_VOLUME_SOURCES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def restricted_violations(pod: Manifest) -> list[str]:
    """Where a pod spec breaks Pod Security "restricted" (baseline included), or Sluice's own
    rule of a read-only root filesystem. Follows kubernetes.io/docs/concepts/security/
    pod-security-standards; an empty list means the pod is admitted."""
    problems: list[str] = []
    pod_context = pod.get("securityContext") or {}
    for host_field in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        if host_field == "hostUsers":
            continue  # hostUsers: false is the stricter setting; true is the default.
        if pod.get(host_field):
            problems.append(f"{host_field} is set")
    for volume in pod.get("volumes") or []:
        sources = set(volume) - {"name"}
        if not sources <= ALLOWED_VOLUME_SOURCES:
            problems.append(f"volume {volume['name']} uses {sorted(sources)}")
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"unsafe sysctl {sysctl['name']}")
    if pod_context.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"pod seccompProfile {pod_seccomp}")
    containers = [
        *pod.get("initContainers", []),
        *pod.get("containers", []),
        *pod.get("ephemeralContainers", []),
    ]
    if not containers:
        problems.append("no containers")
    for container in containers:
        name = container["name"]
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser is 0")
        seccomp = (context.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is {seccomp}")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount {context['procMount']}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
    return problems


def _pod_specs(manifests: list[Manifest]) -> list[tuple[str, Manifest]]:
    pods = []
    for manifest in manifests:
        if manifest["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            pods.append((manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]))
        elif manifest["kind"] == "Pod":
            pods.append((manifest["metadata"]["name"], manifest["spec"]))
    return pods


def test_every_pod_is_pod_security_restricted(rendered: dict[str, list[Manifest]]) -> None:
    checked = 0
    for case, manifests in rendered.items():
        for name, pod in _pod_specs(manifests):
            assert restricted_violations(pod) == [], f"{case}: {name}"
            checked += 1
    assert checked >= len(CASES)


def test_the_pod_security_check_catches_each_violation(rendered: dict[str, list[Manifest]]) -> None:
    _, pod = _pod_specs(rendered["defaults"])[0]
    breakers: dict[str, Any] = {
        "hostNetwork": lambda p: p.update(hostNetwork=True),
        "hostPath": lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "privileged": lambda p: p["containers"][0]["securityContext"].update(privileged=True),
        "escalation": lambda p: p["containers"][1]["securityContext"].pop(
            "allowPrivilegeEscalation"
        ),
        "capabilities": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(
            add=["SYS_ADMIN"]
        ),
        "root": lambda p: p["containers"][0]["securityContext"].update(runAsNonRoot=False),
        "seccomp": lambda p: p["containers"][0]["securityContext"].update(
            seccompProfile={"type": "Unconfined"}
        ),
        "hostPort": lambda p: p["containers"][0]["ports"][0].update(hostPort=80),
        "writable": lambda p: p["containers"][1]["securityContext"].update(
            readOnlyRootFilesystem=False
        ),
    }
    for what, breaker in breakers.items():
        broken = yaml.safe_load(yaml.safe_dump(pod))
        breaker(broken)
        assert restricted_violations(broken), f"the check missed: {what}"


# --- the operator and the gateway -----------------------------------------------------------------

FULLNAME = RELEASE  # the release is named like the chart, so the full name is just "sluice"


def _containers(deployment: Manifest) -> dict[str, Manifest]:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def _env(container: Manifest) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def test_operator_is_one_replica_recreated_with_a_liveness_probe(
    rendered: dict[str, list[Manifest]],
) -> None:
    for case, manifests in rendered.items():
        operator = _named(manifests, "Deployment", FULLNAME)
        assert operator["spec"]["replicas"] == 1, case
        assert operator["spec"]["strategy"] == {"type": "Recreate"}, case
        container = _containers(operator)["operator"]
        assert container["command"] == ["sluice"]
        assert "operator" in container["args"]
        probe = container["livenessProbe"]["httpGet"]
        assert probe["path"] == "/healthz"
        port = next(p for p in container["ports"] if p["name"] == probe["port"])
        assert _env(container)["SLUICE_LIVENESS_ENDPOINT"] == (
            f"http://0.0.0.0:{port['containerPort']}/healthz"
        )


def _command_line(container: Manifest) -> list[str]:
    return [*container["command"], *container["args"]]


def test_namespace_selection_reaches_the_operator(rendered: dict[str, list[Manifest]]) -> None:
    every = _containers(_named(rendered["defaults"], "Deployment", FULLNAME))["operator"]
    assert _command_line(every) == ["sluice", "--log-level", "INFO", "operator", "--all-namespaces"]
    some = _containers(_named(rendered["watch-namespaces"], "Deployment", FULLNAME))["operator"]
    assert _command_line(some) == [
        "sluice",
        "--log-level",
        "INFO",
        "operator",
        "--namespace",
        "team-a",
        "--namespace",
        "team-b",
    ]
    assert (
        _env(some)["SLUICE_RUNTIME_IMAGE"]
        == _containers(_named(rendered["watch-namespaces"], "Deployment", FULLNAME))["operator"][
            "image"
        ]
    )


def test_gateway_is_a_sidecar_by_default(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["defaults"]
    assert len(_of_kind(manifests, "Deployment")) == 1
    containers = _containers(_named(manifests, "Deployment", FULLNAME))
    assert sorted(containers) == ["gateway", "operator"]
    gateway = containers["gateway"]
    assert gateway["command"] == ["sluice"]
    assert "gateway" in gateway["args"]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/healthz"
    service = _named(manifests, "Service", f"{FULLNAME}-gateway")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "operator"
    assert _of_kind(manifests, "PodDisruptionBudget") == []


def test_separate_gateway_scales_with_a_budget_and_its_own_account(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["separate-gateway"]
    assert sorted(_containers(_named(manifests, "Deployment", FULLNAME))) == ["operator"]
    gateway = _named(manifests, "Deployment", f"{FULLNAME}-gateway")
    assert gateway["spec"]["replicas"] == 3
    container = _containers(gateway)["gateway"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    pod_labels = gateway["spec"]["template"]["metadata"]["labels"]
    service = _named(manifests, "Service", f"{FULLNAME}-gateway")
    budget = _named(manifests, "PodDisruptionBudget", f"{FULLNAME}-gateway")
    for selector in (service["spec"]["selector"], budget["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
        assert selector["app.kubernetes.io/component"] == "gateway"
    account = gateway["spec"]["template"]["spec"]["serviceAccountName"]
    assert account == f"{FULLNAME}-gateway"
    assert _named(manifests, "ServiceAccount", account)
    ingress = _named(manifests, "Ingress", f"{FULLNAME}-gateway")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"number": 8080}}


def test_service_selects_the_pods_that_serve_its_port(rendered: dict[str, list[Manifest]]) -> None:
    for case, manifests in rendered.items():
        service = _named(manifests, "Service", f"{FULLNAME}-gateway")
        serving = [
            deployment
            for deployment in _of_kind(manifests, "Deployment")
            if service["spec"]["selector"].items()
            <= deployment["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(serving) == 1, case
        ports = [p["name"] for p in _containers(serving[0])["gateway"]["ports"]]
        assert service["spec"]["ports"][0]["targetPort"] in ports, case


# --- RBAC -----------------------------------------------------------------------------------------


def _rules_for(manifests: list[Manifest], account: str) -> list[tuple[str | None, Manifest]]:
    """(namespace or None for cluster-wide, rule) for every rule bound to the account."""
    roles = {
        (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]): doc
        for doc in manifests
        if doc["kind"] in ("Role", "ClusterRole")
    }
    granted: list[tuple[str | None, Manifest]] = []
    for binding in manifests:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s["name"] == account for s in binding["subjects"]):
            continue
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])]
        granted += [(namespace, rule) for rule in role["rules"]]
    return granted


def _can(
    granted: list[tuple[str | None, Manifest]],
    verb: str,
    resource: str,
    group: str = "",
    namespace: str | None = None,
) -> bool:
    """Whether RBAC allows `verb` on `resource` (in `namespace`, or cluster-wide for None)."""
    return any(
        (scope is None or scope == namespace)
        and group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        for scope, rule in granted
    )


def test_rbac_has_no_wildcards(rendered: dict[str, list[Manifest]]) -> None:
    for case, manifest in _all_rendered(rendered):
        for rule in manifest.get("rules", []):
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), (case, manifest["metadata"]["name"])


def test_operator_permissions(rendered: dict[str, list[Manifest]]) -> None:
    """What the operator's code calls (docs/install.md lists why), and nothing it does not."""
    granted = _rules_for(rendered["separate-gateway"], FULLNAME)
    for resource in ("pipelines", "connectors", "completiontokens"):
        for verb in ("get", "list", "watch"):
            assert _can(granted, verb, resource, "sluice.dev")
        assert _can(granted, "patch", f"{resource}/status", "sluice.dev")
        # Users own the resources: the operator never creates, changes or replaces them.
        for verb in ("create", "update", "patch"):
            assert not _can(granted, verb, resource, "sluice.dev")
        assert not _can(granted, "update", f"{resource}/status", "sluice.dev")
    assert _can(granted, "delete", "completiontokens", "sluice.dev")
    assert not _can(granted, "delete", "pipelines", "sluice.dev")
    for resource, group in [
        ("configmaps", ""),
        ("services", ""),
        ("persistentvolumeclaims", ""),
        ("statefulsets", "apps"),
    ]:
        for verb in ("get", "list", "watch", "create", "patch", "delete"):
            assert _can(granted, verb, resource, group)
        assert not _can(granted, "update", resource, group)
    assert _can(granted, "watch", "pods")
    assert _can(granted, "delete", "pods")
    assert not _can(granted, "create", "pods")
    assert _can(granted, "create", "events")
    assert not _can(granted, "list", "secrets")
    assert not _can(granted, "list", "customresourcedefinitions", "apiextensions.k8s.io")


def test_gateway_permissions_follow_the_auth_modes(rendered: dict[str, list[Manifest]]) -> None:
    account = f"{FULLNAME}-gateway"
    separate = _rules_for(rendered["separate-gateway"], account)
    assert _can(separate, "patch", "pipelines", "sluice.dev")
    assert _can(separate, "watch", "pods")
    assert _can(separate, "list", "secrets")
    assert not _can(separate, "get", "secrets")
    assert _can(separate, "create", "tokenreviews", "authentication.k8s.io")
    assert _can(separate, "create", "subjectaccessreviews", "authorization.k8s.io")
    # The gateway never creates workloads or writes status: that is the operator's job.
    assert not _can(separate, "create", "statefulsets", "apps")
    assert not _can(separate, "patch", "pipelines/status", "sluice.dev")

    oidc = _rules_for(rendered["auth-oidc-only"], FULLNAME)
    assert not _can(oidc, "list", "secrets")
    assert not _can(oidc, "create", "tokenreviews", "authentication.k8s.io")
    keys = _rules_for(rendered["api-keys-only"], FULLNAME)
    assert _can(keys, "list", "secrets")
    assert not _can(keys, "create", "tokenreviews", "authentication.k8s.io")
    off = _rules_for(rendered["auth-off"], FULLNAME)
    assert not _can(off, "list", "secrets")


@pytest.mark.parametrize("case", ["watch-namespaces", "watch-namespaces-separate-gateway"])
def test_watch_namespaces_grants_only_those_namespaces(
    rendered: dict[str, list[Manifest]], case: str
) -> None:
    manifests = rendered[case]
    namespaces = CASES_BY_NAME[case].values["watchNamespaces"]
    for account in {FULLNAME, _containers_account(manifests)}:
        granted = _rules_for(manifests, account)
        for namespace in namespaces:
            assert _can(granted, "watch", "pipelines", "sluice.dev", namespace)
        assert not _can(granted, "watch", "pipelines", "sluice.dev", "elsewhere")
        assert not _can(granted, "watch", "pods", "", "elsewhere")
        assert not _can(granted, "list", "secrets", "", "elsewhere")
        cluster_wide = [rule for scope, rule in granted if scope is None]
        for rule in cluster_wide:
            assert set(rule["apiGroups"]) <= {"authentication.k8s.io", "authorization.k8s.io"}, rule
    policies = _of_kind(manifests, "NetworkPolicy")
    extra = CASES_BY_NAME[case].values.get("networkPolicy", {}).get("pipelineExtraFrom", [])
    for policy in policies:
        if "pipelines" in policy["metadata"]["name"]:
            peers = policy["spec"]["ingress"][0]["from"]
            assert peers[len(peers) - len(extra) :] == extra
    pipeline_policies = {
        p["metadata"]["namespace"] for p in policies if "pipelines" in p["metadata"]["name"]
    }
    assert pipeline_policies == set(namespaces)


def _containers_account(manifests: list[Manifest]) -> str:
    gateway = [d for d in _of_kind(manifests, "Deployment") if "gateway" in _containers(d)]
    account: str = gateway[0]["spec"]["template"]["spec"]["serviceAccountName"]
    return account


def test_user_roles_aggregate_into_the_built_in_roles(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["defaults"]
    view = _named(manifests, "ClusterRole", "sluice-view")
    edit = _named(manifests, "ClusterRole", "sluice-edit")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    view_verbs = {verb for rule in view["rules"] for verb in rule["verbs"]}
    assert view_verbs == {"get", "list", "watch"}
    edit_verbs = {verb for rule in edit["rules"] for verb in rule["verbs"]}
    assert {"create", "patch", "delete"} <= edit_verbs


# --- NetworkPolicies ------------------------------------------------------------------------------


def test_only_operator_and_gateway_reach_pipeline_pods(rendered: dict[str, list[Manifest]]) -> None:
    for case in ("defaults", "separate-gateway"):
        manifests = rendered[case]
        policy = _named(manifests, "NetworkPolicy", f"{FULLNAME}-pipelines")
        assert policy["spec"]["podSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": "sluice-pipeline",
            "app.kubernetes.io/managed-by": "sluice",
        }
        (rule,) = policy["spec"]["ingress"]
        assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
        allowed = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
        for peer in rule["from"]:
            assert peer["namespaceSelector"]["matchLabels"] == {
                "kubernetes.io/metadata.name": NAMESPACE
            }
        sluice_pods = [
            d["spec"]["template"]["metadata"]["labels"] for d in _of_kind(manifests, "Deployment")
        ]
        # Every Sluice pod is allowed in, and nothing else matches the peers.
        for labels in sluice_pods:
            assert any(peer.items() <= labels.items() for peer in allowed), case
        assert all(peer.get("app.kubernetes.io/instance") == RELEASE for peer in allowed)
    assert _of_kind(rendered["no-crds-no-network-policies"], "NetworkPolicy") == []


# --- monitoring, auth configuration ---------------------------------------------------------------


def test_service_monitor_needs_the_api(rendered: dict[str, list[Manifest]]) -> None:
    (monitor,) = _of_kind(rendered["monitoring"], "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    service = _named(rendered["monitoring"], "Service", f"{FULLNAME}-gateway")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert _of_kind(rendered["monitoring-without-api"], "ServiceMonitor") == []
    assert _of_kind(rendered["defaults"], "ServiceMonitor") == []


def _gateway_env(manifests: list[Manifest]) -> dict[str, str]:
    for deployment in _of_kind(manifests, "Deployment"):
        containers = _containers(deployment)
        if "gateway" in containers:
            return _env(containers["gateway"])
    raise AssertionError("no gateway container")


def test_auth_is_on_by_default_and_follows_the_values(rendered: dict[str, list[Manifest]]) -> None:
    default = _gateway_env(rendered["defaults"])
    assert default["SLUICE_AUTH_ENABLED"] == "true"
    assert default["SLUICE_AUTH_API_KEYS"] == "true"
    assert default["SLUICE_AUTH_SERVICE_ACCOUNT_TOKENS"] == "true"
    assert "SLUICE_AUTH_OIDC_ISSUER" not in default
    oidc = _gateway_env(rendered["auth-oidc-only"])
    assert oidc["SLUICE_AUTH_API_KEYS"] == "false"
    assert oidc["SLUICE_AUTH_OIDC_ISSUER"] == "https://issuer.example.com"
    assert oidc["SLUICE_AUTH_OIDC_AUDIENCE"] == "sluice"
    off = _gateway_env(rendered["auth-off"])
    assert off["SLUICE_AUTH_ENABLED"] == "false"
    assert off["SLUICE_AUTH_API_KEYS"] == "false"


# --- CRDs -----------------------------------------------------------------------------------------


def test_chart_crd_copies_are_byte_identical_to_crds() -> None:
    copies = CHART / "files" / "crds"
    assert sorted(p.name for p in copies.glob("*.yaml")) == sorted(
        p.name for p in CRD_DIR.glob("*.yaml")
    ), "run `make chart-crds`"
    for source in CRD_DIR.glob("*.yaml"):
        assert (copies / source.name).read_bytes() == source.read_bytes(), (
            f"charts/sluice/files/crds/{source.name} is stale: run `make chart-crds`"
        )


def test_rendered_crds_equal_crds_plus_the_keep_policy(rendered: dict[str, list[Manifest]]) -> None:
    committed = {
        crd["metadata"]["name"]: crd
        for crd in (yaml.safe_load(path.read_text()) for path in CRD_DIR.glob("*.yaml"))
    }
    assert committed
    kept = {
        crd["metadata"]["name"]: crd
        for crd in _of_kind(rendered["defaults"], "CustomResourceDefinition")
    }
    assert sorted(kept) == sorted(committed)
    for name, crd in kept.items():
        annotations = crd["metadata"].pop("annotations")
        assert annotations == {KEEP: "keep"}
        assert crd == committed[name], name
    not_kept = _of_kind(rendered["crds-not-kept"], "CustomResourceDefinition")
    assert {crd["metadata"]["name"]: crd for crd in not_kept} == committed
    assert _of_kind(rendered["no-crds-no-network-policies"], "CustomResourceDefinition") == []


# --- values the schema must refuse ----------------------------------------------------------------

BAD_VALUES = sorted((FIXTURES / "chart-values-bad").glob("*.yaml"))


def test_there_are_bad_values_fixtures() -> None:
    assert len(BAD_VALUES) >= 8


@pytest.mark.parametrize("values_file", BAD_VALUES, ids=lambda path: path.stem)
def test_schema_rejects_bad_values(helm: Helm, values_file: Path) -> None:
    first_line = values_file.read_text().splitlines()[0]
    assert first_line.startswith("# expect: "), "first line names the expected error"
    expected = first_line.removeprefix("# expect: ")
    result = helm.run("template", RELEASE, str(CHART), "--values", str(values_file))
    assert result.returncode != 0, f"{values_file.name} was accepted"
    assert expected in result.stderr, result.stderr


# --- NOTES.txt ------------------------------------------------------------------------------------


def _notes(helm: Helm, values: dict[str, Any], folder: Path) -> str:
    result = helm.run(
        "install",
        RELEASE,
        str(CHART),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        *_values_args(values, folder, ()),
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)
    assert len(notes) == 2, "no NOTES in the output"
    return notes[1]


def test_notes_tell_how_to_reach_the_api_and_create_a_key(helm: Helm, tmp_path: Path) -> None:
    notes = _notes(helm, {}, tmp_path)
    assert f"port-forward service/{FULLNAME}-gateway 8080:8080" in notes
    key = "sluice apikey create my-app --role write --kubernetes --namespace default"
    assert key in notes
    assert "Authorization: Bearer" in notes
    assert "WARNING" not in notes
    off = _notes(helm, {"auth": {"enabled": False}}, tmp_path)
    assert "authentication is OFF" in off
    assert "apikey create" not in off


# --- the chart agrees with the code ---------------------------------------------------------------


def test_chart_app_version_is_the_package_version() -> None:
    """The default image tag is the appVersion; it must name the release of this code."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == sluice.__version__


def test_roles_cover_every_custom_resource(rendered: dict[str, list[Manifest]]) -> None:
    plurals = {
        yaml.safe_load(path.read_text())["spec"]["names"]["plural"]
        for path in CRD_DIR.glob("*.yaml")
    }
    manifests = rendered["defaults"]
    operator = _rules_for(manifests, FULLNAME)
    for plural in plurals:
        assert _can(operator, "watch", plural, "sluice.dev")
        assert _can(operator, "patch", f"{plural}/status", "sluice.dev")
    for role in ("sluice-view", "sluice-edit"):
        covered = {
            resource
            for rule in _named(manifests, "ClusterRole", role)["rules"]
            for resource in rule["resources"]
        }
        assert plurals | {f"{plural}/status" for plural in plurals} == covered, role


def test_notes_say_when_a_service_monitor_could_not_be_created(helm: Helm, tmp_path: Path) -> None:
    values = {"monitoring": {"serviceMonitor": {"enabled": True}}}
    assert "none was created" in _notes(helm, values, tmp_path)
    assert "none was created" not in _notes(helm, {}, tmp_path)


def test_every_command_line_parses_with_the_real_cli(rendered: dict[str, list[Manifest]]) -> None:
    """The chart's args are accepted by `sluice` itself: a renamed flag fails here, not in a
    crash-looping pod."""
    parser = build_parser()
    for case, manifests in rendered.items():
        for deployment in _of_kind(manifests, "Deployment"):
            for name, container in _containers(deployment).items():
                assert container["command"] == ["sluice"], (case, name)
                try:
                    parsed = parser.parse_args(container["args"])
                except SystemExit:
                    pytest.fail(f"{case}: `sluice {' '.join(container['args'])}` does not parse")
                assert parsed.command == name, (case, name)


def test_operator_environment_names_real_settings(rendered: dict[str, list[Manifest]]) -> None:
    known = {f"SLUICE_{field.upper()}" for field in OperatorSettings.model_fields}
    for case, manifests in rendered.items():
        operator = _containers(_named(manifests, "Deployment", FULLNAME))["operator"]
        assert set(_env(operator)) <= known, case


@pytest.mark.parametrize(
    ("case", "mechanisms", "namespaces"),
    [
        ("defaults", ["apikey", "serviceaccount"], None),
        ("auth-off", [], None),
        ("auth-oidc-only", ["oidc"], None),
        ("api-keys-only", ["apikey"], None),
        ("watch-namespaces", ["apikey", "serviceaccount"], frozenset({"team-a", "team-b"})),
    ],
)
def test_the_gateway_reads_the_chart_configuration_as_intended(
    rendered: dict[str, list[Manifest]],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    mechanisms: list[str],
    namespaces: frozenset[str] | None,
) -> None:
    """The gateway's own option parsing, fed the container's env and args, picks the auth
    mechanisms and namespaces the values asked for."""
    for deployment in _of_kind(rendered[case], "Deployment"):
        container = _containers(deployment).get("gateway")
        if container is None:
            continue
        for name, value in _env(container).items():
            monkeypatch.setenv(name, value)
        args = build_parser().parse_args(container["args"])
        assert gateway_command.parse_mechanisms(args.auth, args.insecure_no_auth) == mechanisms
        assert gateway_command.namespaces_of(args) == namespaces
        assert args.default_namespace == ("team-a" if namespaces else "default")
        assert (args.host, args.port) == ("0.0.0.0", 8080)
        if "oidc" in mechanisms:
            assert args.oidc_issuer == "https://issuer.example.com"
            assert args.oidc_audience == "sluice"


def test_values_schema_is_draft_07_and_accepts_the_defaults() -> None:
    """Draft 07 is what every Helm 3 and 4 release understands."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load((CHART / "values.yaml").read_text()))
