"""Builders of valid resource documents for tests of every tier; override what a test needs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart"


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def pipeline_doc(name: str = "orders", **spec: Any) -> dict[str, Any]:
    base = {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"sql": "CREATE TABLE t (x INT); CREATE VIEW v AS SELECT x FROM t;"},
    }
    return _merge(base, {"spec": spec})


def connector_doc(name: str = "t-input", **spec: Any) -> dict[str, Any]:
    base = {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {
            "pipelineRef": {"name": "orders"},
            "table": "t",
            "transport": {"name": "file_input", "config": {"path": "in.json"}},
            "format": {"name": "json"},
        },
    }
    return _merge(base, {"spec": spec})


def completion_token_doc(name: str = "loaded", **spec: Any) -> dict[str, Any]:
    base = {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "CompletionToken",
        "metadata": {"name": name},
        "spec": {"pipelineRef": {"name": "orders"}, "table": "t", "connector": "t-input"},
    }
    return _merge(base, {"spec": spec})


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every document of every example manifest, with the file it came from."""
    documents = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                documents.append((str(path.relative_to(ROOT)), document))
    return documents
