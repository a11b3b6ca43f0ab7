"""Pipeline descriptors in Feldera's shape, read by the SDK's Pipeline.get and .status()."""

from __future__ import annotations

from feldera.enums import PipelineStatus
from feldera.rest.pipeline import Pipeline as SdkPipeline

from sluice.core.directory import ConnectorEntry, PipelineEntry
from sluice.gateway.descriptors import build_descriptor, resources_status

ENTRY = PipelineEntry(
    namespace="default",
    name="orders",
    program_code="CREATE TABLE t (x INT);",
    deployment_status="Running",
    desired_status="Running",
    location="127.0.0.1:1234",
    incarnation="u-1",
    tables=("t",),
    views=("v",),
    connectors=(ConnectorEntry("file", "t", "input", "t.file"),),
    created_at="2026-01-01T00:00:00Z",
)


def test_all_selector_is_readable_by_the_sdk() -> None:
    descriptor = build_descriptor(ENTRY, selector="all", platform_version="1", metadata=None)
    pipeline = SdkPipeline.from_dict(descriptor)
    assert [table.name for table in pipeline.tables] == ["t"]
    assert [view.name for view in pipeline.views] == ["v"]
    assert PipelineStatus.from_str(descriptor["deployment_status"]) == PipelineStatus.RUNNING
    assert descriptor["deployment_location"] == "127.0.0.1:1234"
    assert descriptor["program_info"]["input_connectors"] == {
        "t.file": {"name": "file", "stream": "t"}
    }


def test_status_selector_leaves_out_the_program() -> None:
    descriptor = build_descriptor(ENTRY, selector="status", platform_version="1", metadata=None)
    assert "program_code" not in descriptor
    assert "program_info" not in descriptor
    assert descriptor["deployment_status"] == "Running"


def test_metadata_schema_wins_over_the_fallback() -> None:
    schema = {"inputs": [{"name": "t", "case_sensitive": False, "materialized": False,
                          "fields": [{"name": "x"}]}], "outputs": []}  # fmt: skip
    descriptor = build_descriptor(
        ENTRY, selector="all", platform_version="1", metadata={"schema": schema}
    )
    assert descriptor["program_info"]["schema"] == schema


def test_resources_status_follows_feldera() -> None:
    from dataclasses import replace

    assert resources_status(ENTRY) == "Provisioned"
    assert resources_status(replace(ENTRY, deployment_status="Stopped", location=None)) == "Stopped"
    assert resources_status(replace(ENTRY, deployment_status="Initializing", location=None)) == (
        "Provisioning"
    )
