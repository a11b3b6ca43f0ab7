"""E2e: kstatus (the library GitOps tools use) reads our resources' status as intended."""

from __future__ import annotations

import pytest

from tests.e2e.kstatus.evaluate import Kstatus
from tests.e2e.kubectl import Kubectl
from tests.factories import QUICKSTART

pytestmark = pytest.mark.e2e


def test_resources_no_operator_has_seen_yet_are_in_progress(
    kubectl: Kubectl, kstatus: Kstatus, crds: object, namespace: str
) -> None:
    del crds
    scoped = kubectl.in_namespace(namespace)
    scoped.run("apply", "-f", str(QUICKSTART))
    verdicts = kstatus.evaluate(scoped, "pipelines,connectors,completiontokens")
    assert set(verdicts) == {
        "Pipeline/orders",
        "Connector/orders-file",
        "Connector/revenue-file",
        "CompletionToken/orders-loaded",
    }
    for verdict in verdicts.values():
        # The CRDs default status.observedGeneration to -1, so a fresh resource is never
        # mistaken for a reconciled one (kstatus would call a status-less resource Current).
        assert verdict.status == "InProgress", verdict
        assert "observed generation is -1" in verdict.message
