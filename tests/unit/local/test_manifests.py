"""Local mode's manifest loading: precise errors up front, paths resolved, outputs created."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sluice.local.manifests import ManifestError, load, manifest_files

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart"

PIPELINE = """
apiVersion: sluice.dev/v1alpha1
kind: Pipeline
metadata: {name: p}
spec:
  sql: "CREATE TABLE t (x INT);"
"""


def connector(name: str, pipeline: str = "p", path: str = "in/data.json") -> str:
    return f"""
apiVersion: sluice.dev/v1alpha1
kind: Connector
metadata: {{name: {name}}}
spec:
  pipelineRef: {{name: {pipeline}}}
  table: t
  transport: {{name: file_input, config: {{path: {path}}}}}
  format: {{name: json}}
"""


def test_quickstart_loads_with_paths_resolved_against_its_folder(tmp_path: Path) -> None:
    copy = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, copy, ignore=shutil.ignore_patterns("output"))
    manifests = load([copy])
    (pipeline,) = manifests.pipelines
    assert pipeline.name == "orders"
    assert pipeline.folder == copy.resolve()
    paths = {c.name: c.transport.config["path"] for c in pipeline.config.connectors}
    assert paths["orders-file"] == str(copy.resolve() / "data" / "orders.json")
    assert paths["revenue-file"] == str(copy.resolve() / "output" / "revenue_by_customer.json")
    assert (copy / "output").is_dir()  # created for the output connector
    assert [token.name for token in manifests.tokens] == ["orders-loaded"]


def test_folders_contribute_their_own_manifests_only() -> None:
    files = manifest_files([QUICKSTART])
    assert all(file.parent == QUICKSTART for file in files)
    assert {file.name for file in files} >= {"pipeline.yaml", "connectors.yaml"}


def test_schema_error_names_file_document_and_field(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        PIPELINE + "---" + connector("c").replace("table: t", "table: t\n  view: v")
    )
    with pytest.raises(ManifestError) as raised:
        load([manifest])
    message = str(raised.value)
    assert str(manifest) in message
    assert "document 2" in message
    assert "Connector/c" in message
    assert "exactly one of table" in message


def test_dangling_references_are_rejected(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(PIPELINE + "---" + connector("c", pipeline="nope"))
    with pytest.raises(ManifestError, match=r"spec\.pipelineRef\.name: no Pipeline named 'nope'"):
        load([manifest])
    token = """
apiVersion: sluice.dev/v1alpha1
kind: CompletionToken
metadata: {name: tok}
spec: {pipelineRef: {name: p}, table: t, connector: missing}
"""
    manifest.write_text(PIPELINE + "---" + token)
    with pytest.raises(ManifestError, match=r"spec\.connector: pipeline 'p' has no input"):
        load([manifest])


def test_duplicates_missing_files_and_empty_sets(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(PIPELINE + "---" + PIPELINE)
    with pytest.raises(ManifestError, match="duplicate"):
        load([manifest])
    with pytest.raises(ManifestError, match="no such file"):
        load([tmp_path / "absent.yaml"])
    manifest.write_text(connector("c"))
    with pytest.raises(ManifestError):
        load([manifest])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match=r"no \.yaml"):
        load([tmp_path / "empty"])


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(PIPELINE + "---" + connector("c", path="/data/in.json"))
    (pipeline,) = load([manifest]).pipelines
    assert pipeline.config.connectors[0].transport.config["path"] == "/data/in.json"
