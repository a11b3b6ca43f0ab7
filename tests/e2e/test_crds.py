"""E2e: the generated CRDs on a real API server: accepted, explained, enforced, round-tripped."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.kubectl import Kubectl
from tests.invalid_resources import INVALID_CASES, InvalidCase

pytestmark = pytest.mark.e2e

# What kube-apiserver v1.36 adds to a CustomResourceDefinition spec when the manifest leaves
# it out (SetDefaults_CustomResourceDefinitionSpec): nothing else may differ.
SERVER_SPEC_DEFAULTS = {"conversion": {"strategy": "None"}}


def _shipped(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def test_every_crd_is_established_with_the_names_it_declares(
    kubectl: Kubectl, crds: list[Path]
) -> None:
    assert len(crds) == 3
    for path in crds:
        shipped = _shipped(path)
        stored = kubectl.get_json("crd", shipped["metadata"]["name"])
        conditions = {c["type"]: c["status"] for c in stored["status"]["conditions"]}
        assert conditions["Established"] == "True"
        assert conditions["NamesAccepted"] == "True"
        assert stored["status"]["acceptedNames"] == shipped["spec"]["names"]
    # The category makes `kubectl get sluice` list every kind of ours.
    resources = kubectl.run("api-resources", "--api-group=sluice.dev", "-o", "name").stdout
    assert sorted(resources.split()) == [
        "completiontokens.sluice.dev",
        "connectors.sluice.dev",
        "pipelines.sluice.dev",
    ]
    assert kubectl.run("get", "sluice", "-A").returncode == 0


def test_the_stored_crds_equal_the_shipped_yaml(kubectl: Kubectl, crds: list[Path]) -> None:
    for path in crds:
        shipped = _shipped(path)
        stored = kubectl.get_json("crd", shipped["metadata"]["name"])
        spec = dict(stored["spec"])
        for key, default in SERVER_SPEC_DEFAULTS.items():
            if key not in shipped["spec"]:
                assert spec.pop(key) == default, f"{path.name}: server default {key} changed"
        assert spec == shipped["spec"], f"{path.name}: the server stored a different spec"
        assert stored["metadata"].get("labels") == shipped["metadata"].get("labels")
        assert stored["metadata"].get("annotations") == shipped["metadata"].get("annotations")


def _described_fields(properties: dict[str, Any]) -> dict[str, str]:
    return {name: schema["description"] for name, schema in properties.items()}


@pytest.mark.parametrize("kind", ["pipeline", "connector", "completiontoken"])
def test_kubectl_explain_shows_the_spec_field_descriptions(
    kubectl: Kubectl, crds: list[Path], kind: str
) -> None:
    shipped = _shipped(next(path for path in crds if path.name.startswith(kind + "s.")))
    spec_schema = shipped["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    explained = " ".join(kubectl.run("explain", f"{kind}.spec").stdout.split())
    assert " ".join(spec_schema["description"].split()) in explained
    fields = _described_fields(spec_schema["properties"])
    assert fields, "the spec declares no fields"
    for name, description in fields.items():
        assert re.search(rf"\b{re.escape(name)}\b", explained), name
        # kubectl wraps descriptions; compare with whitespace collapsed.
        assert " ".join(description.split()) in explained, f"{kind}.spec.{name}"


@pytest.fixture(scope="module")
def corpus_namespace(kubectl: Kubectl, crds: list[Path]) -> Iterator[str]:
    """One namespace for the whole corpus: a rejected resource leaves nothing in it."""
    del crds
    name = f"e2e-invalid-{secrets.token_hex(4)}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("case", INVALID_CASES, ids=[case.id for case in INVALID_CASES])
def test_admission_rejects_the_invalid_resource_naming_the_field(
    kubectl: Kubectl, corpus_namespace: str, case: InvalidCase
) -> None:
    scoped = kubectl.in_namespace(corpus_namespace)
    result = scoped.apply(case.document, check=False)
    assert result.returncode != 0, f"the API server accepted {case.id}"
    message = result.stderr
    kind = case.document["kind"]
    name = case.document["metadata"]["name"]
    # kubectl's two renderings of an API error (a 422 Invalid, or any other server error):
    # with --validate=strict kubectl delegates field validation to the server.
    assert message.startswith((f'The {kind} "{name}" is invalid', "Error from server")), message
    assert case.field in message, message
    # Nothing was stored.
    assert "NotFound" in scoped.run("get", kind.lower(), name, check=False).stderr


def test_the_corpus_is_large_enough() -> None:
    assert len(INVALID_CASES) >= 20
