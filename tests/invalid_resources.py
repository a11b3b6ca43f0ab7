"""A corpus of invalid resources, each with the field its rejection must name.

The unit tier checks that the pydantic models reject every one; the e2e tier checks that the
real API server rejects them at admission (schema and CEL rules of the generated CRDs).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tests.factories import completion_token_doc, connector_doc, pipeline_doc


class InvalidCase(NamedTuple):
    id: str
    document: dict[str, Any]
    field: str
    """A word the error message must contain: the field (or rule) at fault."""


def _without(document: dict[str, Any], section: str, key: str) -> dict[str, Any]:
    document[section].pop(key)
    return document


INVALID_CASES: list[InvalidCase] = [
    InvalidCase(
        "pipeline-no-sql",
        _without(pipeline_doc(), "spec", "sql"),
        "sql",
    ),
    InvalidCase(
        "pipeline-sql-and-sqlFrom",
        pipeline_doc(sqlFrom={"configMapKeyRef": {"name": "prog", "key": "sql"}}),
        "sqlFrom",
    ),
    InvalidCase(
        "pipeline-bad-desired-state", pipeline_doc(desiredState="Sleeping"), "desiredState"
    ),
    InvalidCase("pipeline-oversize-sql", pipeline_doc(sql="x" * 262_145), "sql"),
    InvalidCase("pipeline-empty-sql", pipeline_doc(sql=""), "sql"),
    InvalidCase("pipeline-unknown-field", pipeline_doc(replicas=3), "replicas"),
    InvalidCase("pipeline-workers-zero", pipeline_doc(runtime={"workers": 0}), "workers"),
    InvalidCase("pipeline-workers-string", pipeline_doc(runtime={"workers": "many"}), "workers"),
    InvalidCase(
        "pipeline-bad-reclaim-policy",
        pipeline_doc(runtime={"storage": {"reclaimPolicy": "Recycle"}}),
        "reclaimPolicy",
    ),
    InvalidCase(
        "pipeline-sqlfrom-missing-key",
        _without(pipeline_doc(sqlFrom={"configMapKeyRef": {"name": "prog"}}), "spec", "sql"),
        "key",
    ),
    InvalidCase(
        "pipeline-dotted-name",
        {**pipeline_doc(), "metadata": {"name": "my.pipeline"}},
        "name",
    ),
    InvalidCase(
        "pipeline-bad-env-name",
        pipeline_doc(runtime={"env": [{"name": "1BAD", "value": "x"}]}),
        "name",
    ),
    InvalidCase(
        "connector-no-pipeline-ref",
        _without(connector_doc(), "spec", "pipelineRef"),
        "pipelineRef",
    ),
    InvalidCase("connector-table-and-view", connector_doc(view="v"), "view"),
    InvalidCase(
        "connector-neither-table-nor-view",
        _without(connector_doc(), "spec", "table"),
        "table",
    ),
    InvalidCase("connector-dotted-name", connector_doc(name="orders.file"), "name"),
    InvalidCase(
        "connector-no-transport", _without(connector_doc(), "spec", "transport"), "transport"
    ),
    InvalidCase(
        "connector-bad-transport-name",
        connector_doc(transport={"name": "File Input"}),
        "name",
    ),
    InvalidCase("connector-paused-not-bool", connector_doc(paused="sometimes"), "paused"),
    InvalidCase("connector-max-queued-zero", connector_doc(maxQueuedRecords=0), "maxQueuedRecords"),
    InvalidCase("connector-unknown-field", connector_doc(topic="orders"), "topic"),
    InvalidCase(
        "token-no-connector",
        _without(completion_token_doc(), "spec", "connector"),
        "connector",
    ),
    InvalidCase(
        "token-dotted-connector",
        completion_token_doc(connector="orders.file"),
        "connector",
    ),
    InvalidCase(
        "token-negative-timeout", completion_token_doc(timeoutSeconds=-5), "timeoutSeconds"
    ),
    InvalidCase("token-no-table", _without(completion_token_doc(), "spec", "table"), "table"),
    InvalidCase(
        "token-bad-ttl",
        completion_token_doc(ttlSecondsAfterFinished="soon"),
        "ttlSecondsAfterFinished",
    ),
]
