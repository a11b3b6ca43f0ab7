"""Layer 1 (core, pure): parse resource documents (the YAML users `kubectl apply`).

Errors name the source, the document's position and kind/name, and the failing field, so that
`sluice local up` can reject a bad manifest up front with a message that needs no debugging.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from sluice.models.resources import CompletionToken, Connector, Pipeline, Resource

KIND_MODELS: dict[str, type[Pipeline] | type[Connector] | type[CompletionToken]] = {
    "Pipeline": Pipeline,
    "Connector": Connector,
    "CompletionToken": CompletionToken,
}


class InvalidDocument(ValueError):
    """A document that is not a valid Sluice resource."""


@dataclass(frozen=True)
class LoadedDocument:
    """A validated resource and where it came from."""

    resource: Resource
    source: str
    index: int


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: `field.path: message`."""
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(document)"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {message}")
    return "; ".join(problems)


def parse_resource(document: Any) -> Resource:
    """Validate one decoded document as a Sluice resource; raises InvalidDocument."""
    if not isinstance(document, dict):
        raise InvalidDocument("a resource must be a mapping")
    kind = document.get("kind")
    model = KIND_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InvalidDocument(
            f"kind: unsupported kind {kind!r} (expected one of {', '.join(KIND_MODELS)})"
        )
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InvalidDocument(describe_validation_error(error)) from None


def parse_documents(text: str, source: str) -> list[LoadedDocument]:
    """Parse every non-empty YAML document of `text`; raises InvalidDocument naming the place."""
    try:
        documents: Iterable[Any] = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise InvalidDocument(f"{source}: not valid YAML: {error}") from None
    loaded = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        try:
            resource = parse_resource(document)
        except InvalidDocument as error:
            name = ""
            if isinstance(document, dict):
                metadata = document.get("metadata")
                if isinstance(metadata, dict) and metadata.get("name"):
                    name = f" {document.get('kind', '?')}/{metadata['name']}"
            raise InvalidDocument(f"{source}: document {index + 1}{name}: {error}") from None
        loaded.append(LoadedDocument(resource=resource, source=source, index=index))
    return loaded
