"""The resource models accept every example and reject invalid documents naming the field."""

from typing import Any

import pytest

from sluice.core.documents import InvalidDocument, parse_documents, parse_resource
from sluice.models.resources import Connector, Pipeline
from tests.factories import connector_doc, example_documents, pipeline_doc
from tests.invalid_resources import INVALID_CASES, InvalidCase


@pytest.mark.parametrize(("source", "document"), example_documents())
def test_every_example_is_valid(source: str, document: dict[str, Any]) -> None:
    parse_resource(document)


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID_CASES) >= 20


@pytest.mark.parametrize("case", INVALID_CASES, ids=[case.id for case in INVALID_CASES])
def test_invalid_document_is_rejected_naming_the_field(case: InvalidCase) -> None:
    with pytest.raises(InvalidDocument) as raised:
        parse_resource(case.document)
    assert case.field in str(raised.value)


def test_defaults() -> None:
    pipeline = parse_resource(pipeline_doc())
    assert isinstance(pipeline, Pipeline)
    assert pipeline.spec.desired_state == "Running"
    assert pipeline.status is None


def test_camel_case_on_the_wire() -> None:
    connector = parse_resource(connector_doc(maxQueuedRecords=10))
    assert isinstance(connector, Connector)
    assert connector.spec.max_queued_records == 10
    wire = connector.spec.model_dump(by_alias=True, exclude_none=True)
    assert wire["maxQueuedRecords"] == 10
    assert wire["pipelineRef"] == {"name": "orders"}


def test_connector_relation_and_direction() -> None:
    output = parse_resource(connector_doc(table=None, view="v"))
    assert isinstance(output, Connector)
    assert (output.spec.relation, output.spec.direction) == ("v", "output")


def test_parse_documents_names_file_document_and_field() -> None:
    text = (
        "apiVersion: sluice.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: p}\nspec: {sql: 'x'}\n"
    )
    text += "---\napiVersion: sluice.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: q}\nspec: {}\n"
    with pytest.raises(InvalidDocument, match=r"^a\.yaml: document 2 Pipeline/q: spec: "):
        parse_documents(text, "a.yaml")


def test_parse_documents_rejects_unknown_kind_and_bad_yaml() -> None:
    with pytest.raises(InvalidDocument, match="kind: unsupported kind 'Deployment'"):
        parse_documents("kind: Deployment\n", "d.yaml")
    with pytest.raises(InvalidDocument, match="not valid YAML"):
        parse_documents("a: [\n", "bad.yaml")
