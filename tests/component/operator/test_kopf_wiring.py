"""The kopf wiring: a routing table of event handlers, kopf kept out of status and metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import kopf
import pytest

from sluice.controller import handlers, lifecycle
from sluice.controller.deps import Deps
from sluice.controller.observe import Observer
from sluice.models.settings import OperatorSettings
from sluice.process.client import ProcessClient
from tests.component.operator.fake_kube import FakeKube
from tests.factories import connector_doc, pipeline_doc


def test_only_event_handlers_so_no_finalizers_and_no_annotations() -> None:
    registry = handlers.registry
    watched = {
        handler.selector.any_name if handler.selector else None
        for handler in registry._watching.get_all_handlers()
    }
    assert watched == {
        "pipelines",
        "connectors",
        "completiontokens",
        "statefulsets",
        "pods",
        "services",
        "persistentvolumeclaims",
        "configmaps",
    }
    assert not registry._changing.get_all_handlers()
    assert not registry._spawning.get_all_handlers()


def test_kopf_storage_uses_our_prefix_and_stays_out_of_status() -> None:
    settings = lifecycle.kopf_settings()
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "sluice.dev"
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.persistence.diffbase_storage.prefix == "sluice.dev"
    assert settings.persistence.finalizer == "sluice.dev/finalizer"
    assert settings.posting.enabled is False


@pytest.fixture
async def memo() -> AsyncIterator[kopf.Memo]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        process = ProcessClient(session)
        deps = Deps(
            settings=OperatorSettings(liveness_endpoint=None),
            kube=FakeKube(),
            process=process,
            observer=Observer(process, session),
        )
        yield kopf.Memo(deps=deps)


async def test_handlers_route_events_to_the_work_queue_and_return_none(memo: kopf.Memo) -> None:
    pipeline = pipeline_doc()
    pipeline["metadata"]["namespace"] = "team"
    connector = connector_doc("in")
    connector["metadata"]["namespace"] = "team"
    result = await cast(Any, handlers.pipeline_changed)(
        event={"type": "ADDED", "object": pipeline}, memo=memo
    )
    assert result is None
    await cast(Any, handlers.connector_changed)(
        event={"type": None, "object": connector}, memo=memo
    )
    deps: Deps = memo.deps
    assert len(deps.queue) == 2  # the pipeline once, the connector once
    assert deps.store.get("Connector", "team", "in") is not None
    assert [c["metadata"]["name"] for c in deps.store.related("Connector", "team", "orders")] == [
        "in"
    ]


async def test_foreign_config_maps_are_ignored_unless_a_pipeline_reads_them(
    memo: kopf.Memo,
) -> None:
    deps: Deps = memo.deps
    reader = pipeline_doc(sqlFrom={"configMapKeyRef": {"name": "program", "key": "sql"}})
    del reader["spec"]["sql"]
    reader["metadata"]["namespace"] = "team"
    deps.store.record("Pipeline", "ADDED", reader)
    other = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "team"},
    }
    assert deps.store.record("ConfigMap", "ADDED", other) == []
    assert deps.store.get("ConfigMap", "team", "x") is None
    program = {**other, "metadata": {"name": "program", "namespace": "team"}}
    assert deps.store.record("ConfigMap", "MODIFIED", program) == [("Pipeline", "team", "orders")]


def test_status_only_changes_wake_dependants_but_not_the_writer() -> None:
    from sluice.controller.store import Store

    store = Store()
    pipeline = pipeline_doc()
    pipeline["metadata"].update(namespace="team", generation=1)
    connector = connector_doc("in")
    connector["metadata"].update(namespace="team", generation=1)
    assert store.record("Pipeline", "ADDED", pipeline) == [("Pipeline", "team", "orders")]
    assert store.record("Connector", "ADDED", connector) == [
        ("Connector", "team", "in"),
        ("Pipeline", "team", "orders"),
    ]
    written = {**pipeline, "status": {"observedGeneration": 1}}
    assert store.record("Pipeline", "MODIFIED", written) == [("Connector", "team", "in")]
    assert store.record("Connector", "MODIFIED", {**connector, "status": {"x": 1}}) == []
    edited = {**connector, "spec": {**connector["spec"], "paused": True}}
    edited["metadata"] = {**connector["metadata"], "generation": 2}
    assert store.record("Connector", "MODIFIED", edited) == [
        ("Connector", "team", "in"),
        ("Pipeline", "team", "orders"),
    ]
    assert ("Pipeline", "team", "orders") in store.record("Connector", "DELETED", edited)
    assert store.related("Connector", "team", "orders") == []
