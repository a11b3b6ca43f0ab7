"""E2e: kstatus (the library GitOps tools use) reads our resources' status as intended."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Operated
from tests.e2e.kstatus.evaluate import Kstatus, Verdict
from tests.e2e.kubectl import Kubectl
from tests.e2e.polling import eventually
from tests.e2e.quickstart import quickstart_documents
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


@pytest.mark.timeout(180)
def test_reconciling_resources_are_in_progress_then_current(
    operated: Operated, kstatus: Kstatus, workdir: Path
) -> None:
    ns = operated.kubectl
    ns.apply(*quickstart_documents(workdir / "revenue.json"))
    seen: list[Verdict] = []

    def current() -> bool:
        verdict = kstatus.evaluate(ns, "pipeline/orders")["Pipeline/orders"]
        seen.append(verdict)
        return verdict.status == "Current"

    eventually(current, "kstatus Current for the Pipeline", timeout=120, interval=0.1)
    # Between "not seen yet" and Current, the operator's Reconciling condition shows: the
    # pod takes seconds to start, longer than the operator takes to observe the generation.
    observed = [v for v in seen if "observed generation is -1" not in v.message]
    assert any(v.status == "InProgress" for v in observed), seen
    assert all(v.status in ("InProgress", "Current") for v in seen), seen
    ns.run("wait", "--for=condition=Complete", "completiontoken/orders-loaded", "--timeout=60s")
    eventually(
        lambda: all(
            v.status == "Current"
            for v in kstatus.evaluate(ns, "pipelines,connectors,completiontokens").values()
        ),
        "kstatus Current for every resource of the quickstart",
    )
