"""Layer 3 (runtime), pure: read a Feldera-style SQL program and the connectors of a pipeline.

The program is split into statements, each `CREATE TABLE`, `CREATE [MATERIALIZED] VIEW` is
taken apart (name, column list or query, `WITH (...)` properties), and every connector, from
the config document or from a `WITH ('connectors' = '[...]')` clause, becomes one endpoint
with Feldera's name and a checked transport and format. Binding the SQL (types, column
references) is the engine's job; this module only finds what the text says.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from sluice.core.naming import canonical_sql_name, endpoint_name
from sluice.models.runtime_config import ConnectorConfig, FormatConfig, TransportConfig

INPUT_TRANSPORTS = frozenset({"file_input", "url_input", "datagen"})
OUTPUT_TRANSPORTS = frozenset({"file_output"})
FELDERA_INPUT_TRANSPORTS = frozenset(
    {
        "kafka_input",
        "nats_input",
        "pub_sub_input",
        "s3_input",
        "delta_table_input",
        "iceberg_input",
        "postgres_input",
        "postgres_cdc_input",
        "nexmark",
        "empty_input",
    }
)
FELDERA_OUTPUT_TRANSPORTS = frozenset(
    {
        "kafka_output",
        "delta_table_output",
        "postgres_output",
        "dynamodb_output",
        "redis_output",
        "null_output",
    }
)
FORMATS = frozenset({"json", "csv"})
JSON_UPDATE_FORMATS = frozenset({"insert_delete", "raw"})
CONNECTOR_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,100}$")

_IDENTIFIER = r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*'
_CREATE_TABLE = re.compile(rf"^CREATE\s+TABLE\s+({_IDENTIFIER})\s*\(", re.IGNORECASE | re.DOTALL)
_CREATE_VIEW = re.compile(
    rf"^CREATE\s+(MATERIALIZED\s+|LOCAL\s+)?VIEW\s+({_IDENTIFIER})\s*", re.IGNORECASE | re.DOTALL
)
_WITH = re.compile(r"^WITH\s*\(", re.IGNORECASE)
_AS = re.compile(r"^AS\b", re.IGNORECASE)
_PROPERTY = re.compile(r"\s*'((?:[^']|'')*)'\s*=\s*'((?:[^']|'')*)'\s*(,|$)", re.DOTALL)


class ProgramError(ValueError):
    """The program or a connector is invalid; the message is one line for the user."""


@dataclass(frozen=True)
class TableDef:
    """A `CREATE TABLE` statement."""

    name: str
    """Canonical name (lower-cased unless quoted)."""
    columns_sql: str
    """The text between the parentheses: column definitions and constraints."""
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ViewDef:
    """A `CREATE [MATERIALIZED|LOCAL] VIEW` statement."""

    name: str
    query: str
    materialized: bool = False
    local: bool = False
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Program:
    """The tables and views of a pipeline, in program order."""

    tables: tuple[TableDef, ...]
    views: tuple[ViewDef, ...]

    def table(self, name: str) -> TableDef | None:
        return next((table for table in self.tables if table.name == name), None)

    def view(self, name: str) -> ViewDef | None:
        return next((view for view in self.views if view.name == name), None)


@dataclass(frozen=True)
class EndpointPlan:
    """One connector of the running pipeline, with its Feldera endpoint name."""

    endpoint_name: str
    relation: str
    direction: Literal["input", "output"]
    connector: ConnectorConfig


def split_statements(sql: str) -> list[str]:
    """The statements of `sql`, without comments, split at `;` outside quotes."""
    statements: list[str] = []
    current: list[str] = []
    index, length = 0, len(sql)
    while index < length:
        char = sql[index]
        if char in "'\"":
            end = _closing_quote(sql, index)
            current.append(sql[index : end + 1])
            index = end + 1
        elif sql.startswith("--", index):
            newline = sql.find("\n", index)
            index = length if newline < 0 else newline
        elif sql.startswith("/*", index):
            close = sql.find("*/", index + 2)
            if close < 0:
                raise ProgramError("SQL program has an unterminated /* comment")
            current.append(" ")
            index = close + 2
        elif char == ";":
            statements.append("".join(current).strip())
            current = []
            index += 1
        else:
            current.append(char)
            index += 1
    statements.append("".join(current).strip())
    return [statement for statement in statements if statement]


def _closing_quote(text: str, start: int) -> int:
    quote, index = text[start], start + 1
    while index < len(text):
        if text[index] == quote:
            if index + 1 < len(text) and text[index + 1] == quote:
                index += 2
                continue
            return index
        index += 1
    raise ProgramError(f"SQL program has an unterminated {quote} quote")


def _closing_paren(text: str, open_index: int) -> int:
    depth, index = 0, open_index
    while index < len(text):
        char = text[index]
        if char in "'\"":
            index = _closing_quote(text, index) + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ProgramError("SQL program has an unbalanced parenthesis")


def parse_properties(text: str) -> dict[str, str]:
    """The `'key' = 'value', ...` list inside a `WITH (...)` clause."""
    properties: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _PROPERTY.match(text, position)
        if match is None:
            raise ProgramError(f"cannot read WITH properties near {text[position:][:40]!r}")
        properties[match.group(1).replace("''", "'")] = match.group(2).replace("''", "'")
        position = match.end()
    return properties


def _take_with(rest: str) -> tuple[dict[str, str], str]:
    match = _WITH.match(rest)
    if match is None:
        return {}, rest
    close = _closing_paren(rest, match.end() - 1)
    return parse_properties(rest[match.end() : close]), rest[close + 1 :].strip()


def parse_program(sql: str) -> Program:
    """Tables and views of a Feldera SQL program; raises ProgramError on other statements."""
    tables: list[TableDef] = []
    views: list[ViewDef] = []
    for statement in split_statements(sql):
        if table := _CREATE_TABLE.match(statement):
            close = _closing_paren(statement, table.end() - 1)
            properties, rest = _take_with(statement[close + 1 :].strip())
            if rest:
                raise ProgramError(f"unexpected text after table definition: {rest[:40]!r}")
            tables.append(
                TableDef(
                    name=canonical_sql_name(table.group(1)),
                    columns_sql=statement[table.end() : close],
                    properties=properties,
                )
            )
        elif view := _CREATE_VIEW.match(statement):
            properties, rest = _take_with(statement[view.end() :].strip())
            as_keyword = _AS.match(rest)
            if as_keyword is None:
                raise ProgramError(f"expected AS in view {view.group(2)}")
            kind = (view.group(1) or "").strip().upper()
            views.append(
                ViewDef(
                    name=canonical_sql_name(view.group(2)),
                    query=rest[as_keyword.end() :].strip(),
                    materialized=kind == "MATERIALIZED",
                    local=kind == "LOCAL",
                    properties=properties,
                )
            )
        else:
            first_line = statement.splitlines()[0][:60]
            raise ProgramError(f"unsupported SQL statement: {first_line!r}")
    names = [table.name for table in tables] + [view.name for view in views]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ProgramError(f"relation '{duplicates[0]}' is defined more than once")
    return Program(tables=tuple(tables), views=tuple(views))


def program_connectors(program: Program) -> list[ConnectorConfig]:
    """Connectors declared in `WITH ('connectors' = '[...]')`, named as Feldera names them."""
    connectors: list[ConnectorConfig] = []
    relations: list[tuple[str, dict[str, str], Literal["input", "output"]]] = [
        *((table.name, table.properties, "input") for table in program.tables),
        *((view.name, view.properties, "output") for view in program.views),
    ]
    for relation, properties, direction in relations:
        if "connectors" not in properties:
            continue
        try:
            declared = json.loads(properties["connectors"])
        except json.JSONDecodeError as error:
            raise ProgramError(f"connectors of '{relation}' are not valid JSON: {error}") from error
        if not isinstance(declared, list):
            raise ProgramError(f"connectors of '{relation}' must be a JSON array")
        for index, entry in enumerate(declared):
            connectors.append(_connector_from_json(relation, direction, index, entry))
    return connectors


_GENERIC_OPTIONS = ("paused", "max_queued_records", "max_batch_size", "labels", "start_after")


def _connector_from_json(
    relation: str, direction: Literal["input", "output"], index: int, entry: Any
) -> ConnectorConfig:
    if not isinstance(entry, dict):
        raise ProgramError(f"connector {index} of '{relation}' must be a JSON object")
    name = entry.get("name", f"unnamed-{index}")
    transport, fmt = entry.get("transport"), entry.get("format")
    if not isinstance(transport, dict):
        raise ProgramError(f"connector '{name}' of '{relation}' has no transport")
    try:
        return ConnectorConfig(
            name=name,
            # Keep the case of a quoted name through canonicalisation in plan_endpoints.
            relation=relation if relation == relation.lower() else f'"{relation}"',
            direction=direction,
            transport=TransportConfig.model_validate(transport),
            format=FormatConfig.model_validate(fmt) if fmt is not None else None,
            **{key: entry[key] for key in _GENERIC_OPTIONS if key in entry},
        )
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ProgramError(
            f"connector '{name}' of '{relation}': {where}: {problem['msg']}"
        ) from error


def plan_endpoints(program: Program, connectors: list[ConnectorConfig]) -> list[EndpointPlan]:
    """Check every connector against the program; raises ProgramError on the first problem."""
    plans: list[EndpointPlan] = []
    seen: set[str] = set()
    tables = {table.name for table in program.tables}
    outputs = tables | {view.name for view in program.views}
    for connector in connectors:
        relation = canonical_sql_name(connector.relation)
        name = endpoint_name(connector.relation, connector.name)
        if not CONNECTOR_NAME.match(connector.name):
            raise ProgramError(f"connector name '{connector.name}' must match [a-zA-Z0-9_-]+")
        if name in seen:
            raise ProgramError(f"duplicate endpoint name '{name}'")
        seen.add(name)
        if connector.direction == "input" and relation not in tables:
            raise ProgramError(f"connector '{name}' refers to unknown table '{relation}'")
        if connector.direction == "output" and relation not in outputs:
            raise ProgramError(f"connector '{name}' refers to unknown view '{relation}'")
        _check_transport(name, connector)
        _check_format(name, connector)
        plans.append(EndpointPlan(name, relation, connector.direction, connector))
    return plans


def _check_transport(name: str, connector: ConnectorConfig) -> None:
    transport = connector.transport.name
    ours, theirs, wanted = (
        (INPUT_TRANSPORTS, FELDERA_INPUT_TRANSPORTS, "input")
        if connector.direction == "input"
        else (OUTPUT_TRANSPORTS, FELDERA_OUTPUT_TRANSPORTS, "output")
    )
    if transport in ours:
        return
    if transport in theirs:
        raise ProgramError(f"connector '{name}': transport '{transport}' is not supported")
    if transport in INPUT_TRANSPORTS | OUTPUT_TRANSPORTS:
        raise ProgramError(f"connector '{name}': transport '{transport}' is not an {wanted}")
    raise ProgramError(f"connector '{name}': unknown transport '{transport}'")


def _check_format(name: str, connector: ConnectorConfig) -> None:
    fmt = connector.format
    if fmt is None:
        if connector.transport.name != "datagen":
            raise ProgramError(f"connector '{name}' needs a format")
        return
    if fmt.name not in FORMATS:
        raise ProgramError(f"connector '{name}': unknown format '{fmt.name}'")
    update_format = fmt.config.get("update_format", "insert_delete")
    if fmt.name == "json" and update_format not in JSON_UPDATE_FORMATS:
        raise ProgramError(f"connector '{name}': unsupported JSON update_format '{update_format}'")
