"""Which views are maintained from deltas alone, using DuckDB's own parser for the AST."""

import json

import duckdb
import pytest

from sluice.runtime.classify import ViewShape, classify, order_views

AGGREGATES = frozenset({"count_star", "count", "sum", "min", "max", "avg"})


def _shape(query: str) -> ViewShape:
    connection = duckdb.connect()
    row = connection.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    assert row is not None
    return classify(json.loads(row[0]), AGGREGATES)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT a, b + 1 AS c FROM t WHERE a > 3",
        "SELECT * FROM t",
        "SELECT a FROM t UNION ALL SELECT a FROM u WHERE a < 0",
        "SELECT CASE WHEN a > 1 THEN 'x' ELSE 'y' END FROM t",
    ],
)
def test_linear_queries(query: str) -> None:
    assert _shape(query).maintenance == "linear"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT a, COUNT(*) FROM t GROUP BY a",
        "SELECT SUM(a) FROM t",
        "SELECT DISTINCT a FROM t",
        "SELECT a FROM t UNION SELECT a FROM u",
        "SELECT t.a FROM t JOIN u ON t.a = u.a",
        "SELECT a FROM t ORDER BY a LIMIT 3",
        "SELECT a, row_number() OVER (ORDER BY a) FROM t",
        "SELECT a FROM t WHERE a IN (SELECT a FROM u)",
        "WITH x AS (SELECT a FROM t) SELECT a FROM x",
        "SELECT a FROM t EXCEPT SELECT a FROM u",
    ],
)
def test_recomputed_queries(query: str) -> None:
    assert _shape(query).maintenance == "recompute"


def test_inputs_are_found_everywhere() -> None:
    shape = _shape("SELECT t.a FROM T JOIN u ON t.a = u.a WHERE t.a IN (SELECT a FROM w)")
    assert shape.inputs == frozenset({"t", "u", "w"})


def test_views_are_ordered_after_their_inputs() -> None:
    shapes = {
        "c": ViewShape("linear", frozenset({"b"})),
        "b": ViewShape("linear", frozenset({"a", "t"})),
        "a": ViewShape("recompute", frozenset({"t"})),
    }
    assert order_views(shapes) == ["a", "b", "c"]
