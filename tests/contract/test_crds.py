"""The committed CRDs are exactly what the models generate, and are valid and structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from sluice.core import crddocs, crdgen
from sluice.crds_command import render_yaml
from tests.factories import ROOT, example_documents

CRD_DIR = ROOT / "crds"
GENERATED = crdgen.build_all_crds()
KUBERNETES_VERSION = "1.33.0"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(_walk(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_walk(value, f"{path}/{index}"))
    return found


def _root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crds_match_the_models_byte_for_byte() -> None:
    committed = sorted(path.name for path in CRD_DIR.glob("*.yaml"))
    assert committed == sorted(GENERATED)
    for file_name, crd in GENERATED.items():
        assert (CRD_DIR / file_name).read_text() == render_yaml(crd), (
            f"crds/{file_name} is stale: run `make crds`"
        )


@pytest.mark.parametrize("file_name", sorted(GENERATED))
def test_crd_is_a_valid_custom_resource_definition(file_name: str) -> None:
    document = yaml.safe_load((CRD_DIR / file_name).read_text())
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("file_name", sorted(GENERATED))
def test_crd_schema_is_structural(file_name: str) -> None:
    root = _root_schema(GENERATED[file_name])
    for path, node in _walk(root):
        assert "$ref" not in node, path
        assert "$defs" not in node, path
        assert "title" not in node, path
        assert "anyOf" not in node, path
        assert "nullable" not in node, path
        if "properties" in node:
            assert "additionalProperties" not in node, path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert path.endswith(("/config", "/runtimeConfig")), path
        is_schema = "type" in node or "x-kubernetes-int-or-string" in node
        if path.endswith("/properties") or path == "" or not is_schema:
            continue
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, f"unbounded string at {path}"
        if node.get("type") == "array":
            assert "maxItems" in node, f"unbounded list at {path}"


@pytest.mark.parametrize("file_name", sorted(GENERATED))
def test_status_defaults_observed_generation_and_lists_conditions_by_type(file_name: str) -> None:
    status = _root_schema(GENERATED[file_name])["properties"]["status"]
    assert status["default"] == {"observedGeneration": -1}
    assert status["properties"]["observedGeneration"]["format"] == "int64"
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) >= {
        "type",
        "status",
        "reason",
        "lastTransitionTime",
    }


@pytest.mark.parametrize("file_name", sorted(GENERATED))
def test_printer_columns(file_name: str) -> None:
    columns = GENERATED[file_name]["spec"]["versions"][0]["additionalPrinterColumns"]
    names = [column["name"] for column in columns]
    assert names[:2] == ["Ready", "Status"]
    assert "Age" in names
    message = next(column for column in columns if column["name"] == "Message")
    assert message["priority"] == 1


def test_cel_rules_are_present() -> None:
    rules = {
        rule["rule"]
        for crd in GENERATED.values()
        for _, node in _walk(_root_schema(crd))
        for rule in node.get("x-kubernetes-validations", [])
    }
    assert "has(self.sql) != has(self.sqlFrom)" in rules
    assert "has(self.table) != has(self.view)" in rules
    assert "self == oldSelf" in rules
    assert any("contains('.')" in rule for rule in rules)


@pytest.mark.parametrize(("source", "document"), example_documents())
def test_examples_validate_against_the_generated_schema(
    source: str, document: dict[str, Any]
) -> None:
    kind = document["kind"]
    crd = next(crd for crd in GENERATED.values() if crd["spec"]["names"]["kind"] == kind)
    jsonschema.validate(document, _root_schema(crd))


def test_crds_folder_holds_only_generated_files() -> None:
    assert {path.name for path in Path(CRD_DIR).iterdir()} == set(GENERATED)


def test_resource_reference_doc_matches_the_models() -> None:
    committed = (ROOT / "docs" / "resources.md").read_text()
    assert committed == crddocs.render_reference(), "docs/resources.md is stale: run `make crds`"
