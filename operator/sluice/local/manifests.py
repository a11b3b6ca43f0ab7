"""Layer 4 (local): read the manifests `sluice local up -f` names into runnable pipelines.

The same Pipeline / Connector / CompletionToken YAML `kubectl apply` takes. Everything is
checked before anything starts: YAML and schema errors name the file, the document and the
field; a Connector or CompletionToken naming a pipeline or connector that is not there is an
error too. Relative `path`s of file connectors resolve against the folder of the manifest
that declares them (and output folders are created), so examples run from anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sluice.core.directory import DesiredState
from sluice.core.documents import InvalidDocument, LoadedDocument, parse_documents
from sluice.core.runtime_config import build_runtime_config
from sluice.models.resources import CompletionToken, Connector, ConnectorSpec, Pipeline
from sluice.models.runtime_config import RuntimeConfig

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
FILE_TRANSPORTS = ("file_input", "file_output")
LOCAL_NAMESPACE = "default"


class ManifestError(ValueError):
    """The manifests cannot be run; the message names the file, the document and the field."""


@dataclass(frozen=True)
class LocalPipeline:
    """One pipeline to run, with its rendered runtime config."""

    name: str
    config: RuntimeConfig
    folder: Path
    """Folder of the Pipeline manifest: the process's working directory."""
    source: str
    desired_state: DesiredState = "Running"
    created_at: str = ""


@dataclass(frozen=True)
class LocalToken:
    """A CompletionToken document to mint and follow."""

    name: str
    pipeline: str
    table: str
    connector: str
    timeout_seconds: int | None
    source: str
    wait_for_end_of_input: bool = False


@dataclass
class Manifests:
    """Everything `sluice local up` was given, validated."""

    pipelines: list[LocalPipeline] = field(default_factory=list)
    tokens: list[LocalToken] = field(default_factory=list)


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    """The manifest files named; a folder contributes its own files, not its sub-folders'.

    That is what `kubectl apply -f FOLDER` does, and it keeps data folders beside the
    manifests (like the quickstart's `data/`) out of the way.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                candidate
                for candidate in path.iterdir()
                if candidate.suffix in MANIFEST_SUFFIXES
                and candidate.is_file()
                and not candidate.name.startswith(".")
            )
            if not found:
                raise ManifestError(f"{path}: no .yaml, .yml or .json manifests in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ManifestError(f"{path}: no such file or folder")
    return files


def resolve_paths(spec: ConnectorSpec, folder: Path) -> ConnectorSpec:
    """The connector with a relative file `path` made absolute against `folder`."""
    if spec.transport.name not in FILE_TRANSPORTS:
        return spec
    path = spec.transport.config.get("path")
    if not isinstance(path, str) or not path or Path(path).is_absolute():
        return spec
    config = dict(spec.transport.config)
    config["path"] = str((folder / path).resolve())
    transport = spec.transport.model_copy(update={"config": config})
    return spec.model_copy(update={"transport": transport})


def load(paths: Sequence[str | Path]) -> Manifests:
    """Read, validate and render every manifest; raises ManifestError."""
    documents: list[tuple[LoadedDocument, Path]] = []
    for file in manifest_files(paths):
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise ManifestError(f"{file}: cannot read: {error}") from None
        try:
            loaded = parse_documents(text, str(file))
        except InvalidDocument as error:
            raise ManifestError(str(error)) from None
        documents.extend((document, file.parent.resolve()) for document in loaded)

    def where(document: LoadedDocument) -> str:
        resource = document.resource
        return (
            f"{document.source}: document {document.index + 1} "
            f"{resource.kind}/{resource.metadata.name}"
        )

    pipelines: dict[str, tuple[Pipeline, LoadedDocument, Path]] = {}
    connectors: dict[str, list[tuple[str, ConnectorSpec]]] = {}
    tokens: list[LocalToken] = []
    seen: dict[tuple[str, str], str] = {}
    for document, folder in documents:
        resource = document.resource
        key = (resource.kind, resource.metadata.name)
        if key in seen:
            raise ManifestError(f"{where(document)}: duplicate of {seen[key]}")
        seen[key] = where(document)
        if isinstance(resource, Pipeline):
            if resource.spec.sql is None:
                raise ManifestError(
                    f"{where(document)}: spec.sqlFrom: local mode reads inline spec.sql only "
                    "(there is no ConfigMap to read the program from)"
                )
            pipelines[resource.metadata.name] = (resource, document, folder)
        elif isinstance(resource, Connector):
            spec = resolve_paths(resource.spec, folder)
            connectors.setdefault(spec.pipeline_ref.name, []).append((resource.metadata.name, spec))
            if spec.transport.name == "file_output" and isinstance(
                spec.transport.config.get("path"), str
            ):
                Path(spec.transport.config["path"]).parent.mkdir(parents=True, exist_ok=True)
        elif isinstance(resource, CompletionToken):
            tokens.append(
                LocalToken(
                    name=resource.metadata.name,
                    pipeline=resource.spec.pipeline_ref.name,
                    table=resource.spec.table,
                    connector=resource.spec.connector,
                    timeout_seconds=resource.spec.timeout_seconds,
                    source=where(document),
                    wait_for_end_of_input=resource.spec.wait_for_end_of_input,
                )
            )

    for document, _ in documents:
        resource = document.resource
        if isinstance(resource, Connector) and resource.spec.pipeline_ref.name not in pipelines:
            raise ManifestError(
                f"{where(document)}: spec.pipelineRef.name: no Pipeline named "
                f"{resource.spec.pipeline_ref.name!r} in the manifests"
            )
    for token in tokens:
        if token.pipeline not in pipelines:
            raise ManifestError(
                f"{token.source}: spec.pipelineRef.name: no Pipeline named {token.pipeline!r} "
                "in the manifests"
            )
        names = {name for name, spec in connectors.get(token.pipeline, []) if spec.table}
        if token.connector not in names:
            # Connectors declared inline in the SQL are not known before the process runs.
            sql = pipelines[token.pipeline][0].spec.sql or ""
            if token.connector not in sql:
                raise ManifestError(
                    f"{token.source}: spec.connector: pipeline {token.pipeline!r} has no input "
                    f"connector named {token.connector!r}"
                )

    result = Manifests(tokens=tokens)
    for name, (pipeline, document, folder) in sorted(pipelines.items()):
        config = build_runtime_config(
            pipeline_name=name,
            namespace=LOCAL_NAMESPACE,
            spec=pipeline.spec,
            sql=pipeline.spec.sql or "",
            connectors=connectors.get(name, []),
        )
        result.pipelines.append(
            LocalPipeline(
                name=name,
                config=config,
                folder=folder,
                source=where(document),
                desired_state=pipeline.spec.desired_state,
                created_at=pipeline.metadata.creation_timestamp or "",
            )
        )
    if not result.pipelines:
        raise ManifestError("the manifests define no Pipeline")
    return result
