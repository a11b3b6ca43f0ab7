"""Reading Feldera SQL programs and their connectors."""

import pytest

from sluice.models.runtime_config import ConnectorConfig, FormatConfig, TransportConfig
from sluice.runtime.program import (
    ProgramError,
    parse_program,
    plan_endpoints,
    program_connectors,
    split_statements,
)

PROGRAM = """
-- orders arrive from a file; comments; and a ; inside a string
CREATE TABLE Orders (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR)
WITH ('connectors' = '[{"name": "in", "transport": {"name": "file_input",
  "config": {"path": "a;b.json"}}, "format": {"name": "json"}},
  {"transport": {"name": "datagen", "config": {}}}]');
/* a view */ CREATE MATERIALIZED VIEW "Big" WITH ('connectors' = '[{"transport":
  {"name": "file_output", "config": {"path": "out.csv"}}, "format": {"name": "csv"}}]')
AS SELECT id FROM orders WHERE note = 'it''s';
CREATE LOCAL VIEW helper AS SELECT 1 AS one;
"""


def test_split_keeps_quoted_semicolons_and_drops_comments() -> None:
    statements = split_statements(PROGRAM)
    assert len(statements) == 3
    assert "a;b.json" in statements[0]
    assert not any("--" in statement or "/*" in statement for statement in statements)


def test_parse_program_canonicalises_names_and_reads_properties() -> None:
    program = parse_program(PROGRAM)
    assert [table.name for table in program.tables] == ["orders"]
    assert [view.name for view in program.views] == ["Big", "helper"]
    assert program.views[0].materialized
    assert program.views[1].local
    assert program.views[0].query == "SELECT id FROM orders WHERE note = 'it''s'"
    assert "connectors" in program.tables[0].properties


def test_program_connectors_are_named_like_feldera() -> None:
    connectors = program_connectors(parse_program(PROGRAM))
    assert [(c.relation, c.name, c.direction) for c in connectors] == [
        ("orders", "in", "input"),
        ("orders", "unnamed-1", "input"),
        ('"Big"', "unnamed-0", "output"),
    ]
    plans = plan_endpoints(parse_program(PROGRAM), connectors)
    assert [plan.endpoint_name for plan in plans] == [
        "orders.in",
        "orders.unnamed-1",
        "Big.unnamed-0",
    ]


def _connector(**overrides: object) -> ConnectorConfig:
    fields: dict[str, object] = {
        "name": "c",
        "relation": "orders",
        "direction": "input",
        "transport": TransportConfig(name="file_input", config={"path": "x"}),
        "format": FormatConfig(name="json"),
    }
    fields.update(overrides)
    return ConnectorConfig.model_validate(fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"relation": "nope"}, "unknown table 'nope'"),
        ({"relation": "nope", "direction": "output"}, "unknown view 'nope'"),
        ({"transport": TransportConfig(name="carrier_pigeon")}, "unknown transport"),
        ({"transport": TransportConfig(name="kafka_input")}, "is not supported"),
        ({"transport": TransportConfig(name="file_output")}, "is not an input"),
        ({"format": FormatConfig(name="xml")}, "unknown format 'xml'"),
        ({"format": None}, "needs a format"),
        ({"format": FormatConfig(name="json", config={"update_format": "odd"})}, "update_format"),
        ({"name": "bad name"}, "must match"),
    ],
)
def test_plan_endpoints_rejects_bad_connectors(overrides: dict[str, object], message: str) -> None:
    program = parse_program("CREATE TABLE orders (id INT)")
    with pytest.raises(ProgramError, match=message):
        plan_endpoints(program, [_connector(**overrides)])


def test_duplicate_endpoint_names_are_rejected() -> None:
    program = parse_program("CREATE TABLE orders (id INT)")
    with pytest.raises(ProgramError, match=r"duplicate endpoint name 'orders\.c'"):
        plan_endpoints(program, [_connector(), _connector(relation="ORDERS")])


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DROP TABLE x", "unsupported SQL statement"),
        ("CREATE TABLE t (a INT", "unbalanced"),
        ("CREATE TABLE t (a INT) garbage", "unexpected text"),
        ("CREATE VIEW v SELECT 1", "expected AS"),
        ("CREATE TABLE t (a INT); CREATE VIEW T AS SELECT 1", "defined more than once"),
        ("CREATE TABLE t (a INT) WITH ('connectors' = '{nope')", "not valid JSON"),
        ("SELECT 'open", "unterminated"),
    ],
)
def test_bad_programs_raise_one_line_errors(sql: str, message: str) -> None:
    with pytest.raises(ProgramError, match=message):
        program_connectors(parse_program(sql))
