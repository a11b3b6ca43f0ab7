"""E2e: the chart's RBAC, on a real authorizer, grants the operator what it needs and no more."""

from __future__ import annotations

import json
import ssl
import urllib.request

import pytest

from tests.e2e.kubectl import Kubectl
from tests.e2e.nodeagent.api import Credentials
from tests.e2e.sluice_processes import Identity

pytestmark = pytest.mark.e2e

# What no Sluice process needs, whatever the chart's roles say today.
NEVER_GRANTED = [
    ("create", "pods"),
    ("create", "pipelines.sluice.dev"),
    ("update", "pipelines.sluice.dev"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts"),
    ("list", "nodes"),
    ("*", "*"),
]


def can(identity: Identity, verb: str, resource: str, namespace: str | None = None) -> bool:
    """A SelfSubjectAccessReview as the account: what `kubectl auth can-i` asks, but fast."""
    credentials = Credentials.from_kubeconfig(identity.kubeconfig)
    plural, _, subresource = resource.partition("/")
    name, _, group = plural.partition(".")
    attributes = {"verb": verb, "resource": name, "group": group, "subresource": subresource}
    attributes["namespace"] = identity.namespace if namespace is None else namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    request = urllib.request.Request(
        credentials.server + "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        data=json.dumps(review).encode(),
        headers={
            "Authorization": f"Bearer {credentials.token}",
            "Content-Type": "application/json",
        },
    )
    context = ssl.create_default_context(cafile=str(credentials.ca_file))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        allowed: bool = json.loads(response.read())["status"]["allowed"]
        return allowed


def test_the_chart_grants_its_rules_and_nothing_more(
    kubectl: Kubectl, chart_identity: Identity
) -> None:
    whoami = Kubectl(kubectl.binary, chart_identity.kubeconfig).run("auth", "whoami")
    assert chart_identity.username in whoami.stdout
    assert chart_identity.rules, "the chart binds no rules to its ServiceAccount"
    for rule in chart_identity.rules:
        # A ClusterRoleBinding's rules hold in every namespace; check them in ours.
        scope = rule["namespace"] or chart_identity.namespace
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                plural, _, subresource = resource.partition("/")
                qualified = (f"{plural}.{group}" if group else plural) + (
                    f"/{subresource}" if subresource else ""
                )
                for verb in rule["verbs"]:
                    assert can(chart_identity, verb, qualified, scope), (verb, qualified)
    for verb, resource in NEVER_GRANTED:
        assert not can(chart_identity, verb, resource), (verb, resource)
        assert not can(chart_identity, verb, resource, namespace=""), (verb, resource)
    # Nothing of other namespaces' workloads or secrets.
    for verb, resource in (
        ("list", "configmaps"),
        ("get", "secrets"),
        ("patch", "statefulsets.apps"),
    ):
        assert not can(chart_identity, verb, resource, "kube-system"), (verb, resource)
