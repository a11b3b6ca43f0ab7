"""SQL correctness: accumulated view changes equal recomputing every view from scratch.

Random sequences of steps insert and delete rows (upserts included for the keyed table);
after each step, the sum of every view's change sets must equal the view computed by a fresh
DuckDB database over the expected table contents, which a Python model keeps independently.
"""

from collections import Counter
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.runtime.engine import WEIGHT, Engine
from sluice.runtime.program import parse_program

TABLES = """
CREATE TABLE items (id INT NOT NULL PRIMARY KEY, grp INT NOT NULL, price INT);
CREATE TABLE tags (grp INT NOT NULL, tag VARCHAR NOT NULL);
"""
VIEWS = {
    "cheap": "SELECT id, price * 2 AS double_price FROM items WHERE price < 5",
    "either": "SELECT grp FROM items UNION ALL SELECT grp FROM tags WHERE tag <> 'x'",
    "cheap_again": "SELECT id FROM cheap WHERE double_price > 2",
    "qualified": "SELECT items.id, items.grp FROM items WHERE items.price > 3",
    "per_group": (
        "SELECT grp, COUNT(*) AS n, SUM(price) AS total, MIN(price) AS low, "
        "MAX(price) AS high, AVG(price) AS mean FROM items GROUP BY grp"
    ),
    "tagged": "SELECT i.id, t.tag FROM items i JOIN tags t ON i.grp = t.grp",
    "distinct_tags": "SELECT DISTINCT tag FROM tags",
    "union_distinct": "SELECT grp FROM items UNION SELECT grp FROM tags",
    "counted": "SELECT COUNT(*) AS n FROM tags",
}
PROGRAM = TABLES + "".join(f"CREATE VIEW {name} AS {query};\n" for name, query in VIEWS.items())

item_rows = st.fixed_dictionaries(
    {
        "id": st.integers(0, 6),
        "grp": st.integers(0, 2),
        "price": st.one_of(st.none(), st.integers(0, 9)),
    }
)
tag_rows = st.fixed_dictionaries({"grp": st.integers(0, 2), "tag": st.sampled_from("xyz")})
changes = st.lists(
    st.one_of(
        st.tuples(st.just("items"), item_rows, st.sampled_from([1, 1, -1])),
        st.tuples(st.just("tags"), tag_rows, st.sampled_from([1, 1, -1])),
    ),
    max_size=8,
)


def _rows(table: pa.Table) -> Counter[tuple[Any, ...]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    names = [name for name in table.schema.names if name != WEIGHT]
    for row in table.to_pylist():
        key = tuple(_normal(row[name]) for name in names)
        counts[key] += row.get(WEIGHT, 1)
    return +counts


def _normal(value: Any) -> Any:
    return round(value, 9) if isinstance(value, float) else value


class Model:
    """What the tables must hold: keyed upserts for items (the last change of a key in a step
    wins), a multiset for tags (a step's changes to a row are summed, and a net deletion removes
    at most the copies that exist)."""

    def __init__(self) -> None:
        self.items: dict[int, dict[str, Any]] = {}
        self.tags: Counter[tuple[int, str]] = Counter()
        self.pending_tags: Counter[tuple[int, str]] = Counter()

    def apply(self, table: str, row: dict[str, Any], weight: int) -> None:
        if table == "items":
            if weight > 0:
                self.items[row["id"]] = row
            else:
                self.items.pop(row["id"], None)
        else:
            self.pending_tags[(row["grp"], row["tag"])] += weight

    def end_step(self) -> None:
        for row, net in self.pending_tags.items():
            self.tags[row] = max(0, self.tags[row] + net)
        self.pending_tags.clear()

    def recompute(
        self, connection: duckdb.DuckDBPyConnection
    ) -> dict[str, Counter[tuple[Any, ...]]]:
        """Every relation computed from scratch over the model's tables."""
        connection.execute("DELETE FROM items; DELETE FROM tags")
        items = pa.Table.from_pylist(
            list(self.items.values()),
            schema=pa.schema([("id", pa.int32()), ("grp", pa.int32()), ("price", pa.int32())]),
        )
        tags = pa.Table.from_pylist(
            [
                {"grp": grp, "tag": tag}
                for (grp, tag), count in self.tags.items()
                for _ in range(count)
            ],
            schema=pa.schema([("grp", pa.int32()), ("tag", pa.string())]),
        )
        connection.register("new_items", items)
        connection.register("new_tags", tags)
        connection.execute("INSERT INTO items SELECT * FROM new_items")
        connection.execute("INSERT INTO tags SELECT * FROM new_tags")
        connection.unregister("new_items")
        connection.unregister("new_tags")
        return {
            name: _rows(connection.sql(f"SELECT * FROM {name}").to_arrow_table())
            for name in [*VIEWS, "items", "tags"]
        }


def _batch(engine: Engine, table: str, rows: list[tuple[dict[str, Any], int]]) -> pa.Table:
    schema = engine.tables[table].schema
    data = pa.Table.from_pylist([row for row, _ in rows], schema=schema)
    return data.append_column(WEIGHT, pa.array([weight for _, weight in rows], pa.int64()))


def _scratch() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(TABLES)
    for name, query in VIEWS.items():
        connection.execute(f"CREATE VIEW {name} AS {query}")
    return connection


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(changes, min_size=1, max_size=5))
def test_accumulated_changes_equal_recomputation(steps: list[list[Any]]) -> None:
    engine = Engine(parse_program(PROGRAM))
    assert engine.views["cheap"].maintenance == "linear"
    assert engine.views["either"].maintenance == "linear"
    assert engine.views["qualified"].maintenance == "linear"
    assert engine.views["per_group"].maintenance == "recompute"
    model = Model()
    scratch = _scratch()
    accumulated: dict[str, Counter[tuple[Any, ...]]] = {
        name: Counter() for name in [*VIEWS, "items", "tags"]
    }
    for step in steps:
        per_table: dict[str, list[tuple[dict[str, Any], int]]] = {"items": [], "tags": []}
        for table, row, weight in step:
            per_table[table].append((row, weight))
            model.apply(table, row, weight)
        model.end_step()
        deltas = engine.step(
            {table: [_batch(engine, table, rows)] for table, rows in per_table.items() if rows}
        )
        for name, delta in deltas.items():
            assert set(delta.column(WEIGHT).to_pylist()) <= set(range(-9, 10)) - {0}
            for key, weight in _signed(delta).items():
                accumulated[name][key] += weight
        expected = model.recompute(scratch)
        for name, rows in expected.items():
            assert +accumulated[name] == rows, name
            assert not -accumulated[name], f"{name} went negative"
    engine.close()
    scratch.close()


def _signed(delta: pa.Table) -> Counter[tuple[Any, ...]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    names = [name for name in delta.schema.names if name != WEIGHT]
    for row in delta.to_pylist():
        counts[tuple(_normal(row[name]) for name in names)] += row[WEIGHT]
    return counts
