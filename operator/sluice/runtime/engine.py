"""Layer 3 (runtime), I/O: the SQL engine, DuckDB in-process, advanced one step at a time.

A step takes the queued input of every table (Arrow tables with a `__weight` column, +1
insert, -1 delete, in arrival order), applies it (a table with a primary key treats an insert
of an existing key as an update, as Feldera does), and returns the change set of every table
and view whose contents changed: Arrow tables with the relation's columns and `__weight`.

Linear views (see `classify`) are computed from the change sets of their inputs alone: the
view's query runs over the inputs' inserted rows and over their deleted rows, with each input
name temporarily bound to its change set. Other views are recomputed and compared with a
snapshot kept in DuckDB. The engine is not thread-safe: one thread runs all steps; ad-hoc
queries use their own cursor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sluice.runtime.classify import ViewShape, classify, order_views, rename_inputs
from sluice.runtime.program import Program, ProgramError

WEIGHT = "__weight"
SEQUENCE = "__sequence"
INDEX_LOOKUP_LIMIT = 512
"""Up to this many keys, existing rows are found with an index lookup instead of a scan."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    """A column as bound by DuckDB."""

    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class Relation:
    """A table or view with its bound schema."""

    name: str
    kind: str
    """"table" or "view"."""
    columns: tuple[Column, ...]
    schema: pa.Schema
    key: tuple[str, ...] = ()
    maintenance: str = "linear"
    materialized: bool = False
    inputs: frozenset[str] = frozenset()
    query: str = ""
    delta_query: str = ""
    """For a linear view: its query reading the inputs' change sets (see `delta_name`)."""


def quote(identifier: str) -> str:
    """A DuckDB identifier for a canonical name."""
    return '"' + identifier.replace('"', '""') + '"'


class Engine:
    """Tables and views of one program, and the step function over them."""

    def __init__(self, program: Program) -> None:
        self._connection = duckdb.connect(":memory:")
        self.tables: dict[str, Relation] = {}
        self.views: dict[str, Relation] = {}
        self.view_order: list[str] = []
        for table in program.tables:
            self.tables[table.name] = self._create_table(table.name, table.columns_sql)
        aggregates = frozenset(
            row[0].lower()
            for row in self._connection.execute(
                "SELECT DISTINCT function_name FROM duckdb_functions() "
                "WHERE function_type = 'aggregate'"
            ).fetchall()
        )
        shapes: dict[str, ViewShape] = {}
        for view in program.views:
            try:
                self._connection.execute(f"CREATE VIEW {quote(view.name)} AS {view.query}")
                serialized = self._connection.execute(
                    "SELECT json_serialize_sql(?)", [view.query]
                ).fetchall()
            except duckdb.Error as error:
                raise ProgramError(f"view '{view.name}': {_first_line(error)}") from error
            ast = json.loads(serialized[0][0] if serialized else "{}")
            shape = classify(ast, aggregates)
            shapes[view.name] = shape
            delta_query = ""
            if shape.maintenance == "linear":
                renamed = rename_inputs(ast, {name: delta_name(name) for name in shape.inputs})
                rows = self._connection.execute(
                    "SELECT json_deserialize_sql(?)", [json.dumps(renamed)]
                ).fetchall()
                delta_query = str(rows[0][0])
            self.views[view.name] = Relation(
                name=view.name,
                kind="view",
                columns=self._columns(view.name),
                schema=self._schema(view.name),
                maintenance=shape.maintenance,
                materialized=view.materialized,
                inputs=shape.inputs,
                query=view.query,
                delta_query=delta_query,
            )
            if shape.maintenance == "recompute":
                self._connection.execute(
                    f"CREATE TABLE {quote(_snapshot(view.name))} AS "
                    f"SELECT * FROM {quote(view.name)} LIMIT 0"
                )
        self.view_order = order_views(shapes)
        self._first_step = True
        self._sides: dict[tuple[str, int], pa.Table] = {}
        self._empty: dict[str, pa.Table] = {}
        self._registered: dict[str, pa.Table] = {}
        """Recomputed views may be non-empty over empty tables (`COUNT(*)`): the first step
        computes them all."""

    def _create_table(self, name: str, columns_sql: str) -> Relation:
        scratch = f"__sluice_bind_{len(self.tables)}"
        try:
            self._connection.execute(f"CREATE TABLE {quote(scratch)} ({columns_sql})")
        except duckdb.Error as error:
            raise ProgramError(f"table '{name}': {_first_line(error)}") from error
        columns = self._columns(scratch)
        keys = self._connection.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
            [scratch],
        ).fetchall()
        self._connection.execute(f"DROP TABLE {quote(scratch)}")
        definitions = ", ".join(
            f"{quote(column.name)} {column.type}{'' if column.nullable else ' NOT NULL'}"
            for column in columns
        )
        # Keys are enforced by the step (upsert semantics), not by a DuckDB constraint, which
        # would reject the delete-then-insert of one key inside a step; the index keeps the
        # lookup of existing rows cheap when a step touches few keys.
        self._connection.execute(f"CREATE TABLE {quote(name)} ({definitions})")
        key = tuple(keys[0][0]) if keys else ()
        if key:
            self._connection.execute(
                f"CREATE INDEX {quote('__sluice_key_' + name)} ON {quote(name)} "
                f"({', '.join(quote(column) for column in key)})"
            )
        return Relation(
            name=name, kind="table", columns=columns, schema=self._schema(name), key=key
        )

    def _columns(self, relation: str) -> tuple[Column, ...]:
        described = self._connection.execute(f"DESCRIBE {quote(relation)}").fetchall()
        return tuple(Column(row[0], row[1], row[2] == "YES") for row in described)

    def _schema(self, relation: str) -> pa.Schema:
        return (
            self._connection.sql(f"SELECT * FROM {quote(relation)} LIMIT 0").to_arrow_table().schema
        )

    # ---- steps -------------------------------------------------------------------------

    def step(self, inputs: dict[str, list[pa.Table]]) -> dict[str, pa.Table]:
        """Apply the queued input of each table; the change set of every changed relation."""
        deltas: dict[str, pa.Table] = {}
        self._sides.clear()
        for table_name, batches in inputs.items():
            batches = [batch for batch in batches if batch.num_rows]
            if not batches:
                continue
            delta = self._apply(self.tables[table_name], batches)
            if delta.num_rows:
                deltas[table_name] = delta
        for view_name in self.view_order:
            view = self.views[view_name]
            changed = any(name in deltas for name in view.inputs)
            if not changed and not (self._first_step and view.maintenance == "recompute"):
                continue
            if view.maintenance == "linear":
                delta = self._linear_delta(view, deltas)
            else:
                delta = self._recompute_delta(view)
            if delta.num_rows:
                deltas[view_name] = delta
        self._first_step = False
        return deltas

    def _apply(self, table: Relation, batches: list[pa.Table]) -> pa.Table:
        batch = pa.concat_tables(
            [part.select([*table.schema.names, WEIGHT]) for part in batches]
        ).cast(_weighted(table.schema))
        if table.key:
            return self._apply_keyed(table, batch)
        return self._apply_multiset(table, batch)

    def _apply_multiset(self, table: Relation, batch: pa.Table) -> pa.Table:
        name = quote(table.name)
        weights = batch.column(WEIGHT)
        if pc.all(pc.greater(weights, 0)).as_py():
            # The rows inserted are the step's change set: bind them once, under the name
            # linear views read the table's inserted rows from.
            inserted = batch.drop_columns([WEIGHT])
            self._sides[(table.name, 1)] = inserted
            with self._bound({delta_name(table.name): inserted}):
                self._connection.execute(
                    f"INSERT INTO {name} SELECT * FROM {delta_name(table.name)}"
                )
            return batch
        columns = ", ".join(quote(column) for column in table.schema.names)
        with self._bound({"__sluice_batch": batch}):
            net = self._connection.sql(
                f"SELECT {columns}, SUM({WEIGHT})::BIGINT AS {WEIGHT} FROM __sluice_batch "
                f"GROUP BY ALL HAVING SUM({WEIGHT}) <> 0"
            ).to_arrow_table()
        inserts = _expand(net.filter(pc.greater(net.column(WEIGHT), 0)))
        removals = _expand(net.filter(pc.less(net.column(WEIGHT), 0)))
        deleted = self._delete_copies(table, removals)
        if inserts.num_rows:
            with self._bound({"__sluice_batch": inserts}):
                self._connection.execute(
                    f"INSERT INTO {name} SELECT * EXCLUDE ({WEIGHT}) FROM __sluice_batch"
                )
        return _consolidate(self._connection, [(inserts, 1), (deleted, -1)], table.schema)

    def _delete_copies(self, table: Relation, removals: pa.Table) -> pa.Table:
        """Delete one stored copy per row of `removals` (rows not stored are ignored)."""
        if not removals.num_rows:
            return pa.Table.from_batches([], table.schema)
        name = quote(table.name)
        matches = " AND ".join(
            f"stored.{quote(column)} IS NOT DISTINCT FROM wanted.{quote(column)}"
            for column in table.schema.names
        )
        partition = ", ".join(quote(column) for column in table.schema.names)
        with self._bound({"__sluice_removals": removals}):
            victims = self._connection.sql(
                f"SELECT stored.__rowid FROM "
                f"(SELECT rowid AS __rowid, *, row_number() OVER (PARTITION BY {partition}) AS __n"
                f" FROM {name}) AS stored JOIN "
                f"(SELECT *, row_number() OVER (PARTITION BY {partition}) AS __n "
                f" FROM __sluice_removals) AS wanted ON {matches} AND stored.__n = wanted.__n"
            ).to_arrow_table()
            with self._bound({"__sluice_victims": victims}):
                deleted = self._connection.sql(
                    f"SELECT * FROM {name} WHERE rowid IN (SELECT __rowid FROM __sluice_victims)"
                ).to_arrow_table()
                self._connection.execute(
                    f"DELETE FROM {name} WHERE rowid IN (SELECT __rowid FROM __sluice_victims)"
                )
        return deleted

    def _apply_keyed(self, table: Relation, batch: pa.Table) -> pa.Table:
        name = quote(table.name)
        key = ", ".join(quote(column) for column in table.key)
        batch = batch.append_column(SEQUENCE, pa.array(range(batch.num_rows), pa.int64()))
        # The last operation on a key within the step decides its new state.
        with self._bound({"__sluice_batch": batch}):
            final = self._connection.sql(
                f"SELECT * EXCLUDE ({SEQUENCE}) FROM __sluice_batch QUALIFY row_number() "
                f"OVER (PARTITION BY {key} ORDER BY {SEQUENCE} DESC) = 1"
            ).to_arrow_table()
        keys = final.select(list(table.key))
        old = self._rows_with_keys(table, keys)
        if old.num_rows:
            self._delete_keys(table, keys)
        inserts = final.filter(pc.greater(final.column(WEIGHT), 0)).drop_columns([WEIGHT])
        if inserts.num_rows:
            with self._bound({"__sluice_inserts": inserts}):
                self._connection.execute(f"INSERT INTO {name} SELECT * FROM __sluice_inserts")
        if not old.num_rows:
            return _with_weight(inserts.cast(table.schema), 1)
        return _consolidate(self._connection, [(inserts, 1), (old, -1)], table.schema)

    def _key_condition(self, table: Relation, keys: pa.Table) -> tuple[str, list[Any]]:
        if len(table.key) == 1 and keys.num_rows <= INDEX_LOOKUP_LIMIT:
            values = keys.column(0).to_pylist()
            marks = ", ".join("?" for _ in values)
            return f"{quote(table.key[0])} IN ({marks})", values
        columns = ", ".join(quote(column) for column in table.key)
        return f"({columns}) IN (SELECT ({columns}) FROM __sluice_keys)", []

    def _rows_with_keys(self, table: Relation, keys: pa.Table) -> pa.Table:
        condition, parameters = self._key_condition(table, keys)
        with self._bound({"__sluice_keys": keys}):
            return self._connection.sql(
                f"SELECT * FROM {quote(table.name)} WHERE {condition}", params=parameters or None
            ).to_arrow_table()

    def _delete_keys(self, table: Relation, keys: pa.Table) -> None:
        condition, parameters = self._key_condition(table, keys)
        with self._bound({"__sluice_keys": keys}):
            self._connection.execute(
                f"DELETE FROM {quote(table.name)} WHERE {condition}", parameters
            )

    def _linear_delta(self, view: Relation, deltas: dict[str, pa.Table]) -> pa.Table:
        parts: list[tuple[pa.Table, int]] = []
        for sign in (1, -1):
            bound = {name: self._side(name, sign, deltas) for name in view.inputs}
            if not any(part.num_rows for part in bound.values()):
                continue
            with self._bound({delta_name(name): part for name, part in bound.items()}):
                parts.append((self._connection.sql(view.delta_query).to_arrow_table(), sign))
        if len(parts) == 1:
            return _with_weight(parts[0][0].cast(view.schema), parts[0][1])
        return _consolidate(self._connection, parts, view.schema)

    def _side(self, name: str, sign: int, deltas: dict[str, pa.Table]) -> pa.Table:
        """The inserted (sign 1) or deleted (-1) rows of a relation in this step, once each."""
        cached = self._sides.get((name, sign))
        if cached is not None:
            return cached
        delta = deltas.get(name)
        if delta is None:
            relation = self.tables.get(name) or self.views[name]
            side = self._empty.setdefault(name, pa.Table.from_batches([], relation.schema))
        else:
            weights = delta.column(WEIGHT)
            chosen = pc.greater(weights, 0) if sign > 0 else pc.less(weights, 0)
            side = _expand(delta.filter(chosen)).drop_columns([WEIGHT])
        self._sides[(name, sign)] = side
        return side

    def _recompute_delta(self, view: Relation) -> pa.Table:
        snapshot = quote(_snapshot(view.name))
        fresh = quote(_snapshot(view.name) + "_fresh")
        self._connection.execute(
            f"CREATE OR REPLACE TABLE {fresh} AS SELECT * FROM {quote(view.name)}"
        )
        added = self._connection.sql(
            f"SELECT * FROM {fresh} EXCEPT ALL SELECT * FROM {snapshot}"
        ).to_arrow_table()
        removed = self._connection.sql(
            f"SELECT * FROM {snapshot} EXCEPT ALL SELECT * FROM {fresh}"
        ).to_arrow_table()
        self._connection.execute(f"DROP TABLE {snapshot}")
        self._connection.execute(f"ALTER TABLE {fresh} RENAME TO {snapshot}")
        return pa.concat_tables(
            [_with_weight(added.cast(view.schema), 1), _with_weight(removed.cast(view.schema), -1)]
        )

    @contextmanager
    def _bound(self, relations: dict[str, pa.Table]) -> Iterator[None]:
        """Bind private names (`__sluice_...`) to Arrow tables for the next queries.

        The bindings are replaced by the next step rather than dropped: dropping costs a
        catalog change per name, which is most of a small step's time.
        """
        for name, table in relations.items():
            if self._registered.get(name) is not table:
                self._connection.register(name, table)
                self._registered[name] = table
        yield

    # ---- reading -----------------------------------------------------------------------

    def snapshot(self, relation: str) -> pa.Table:
        """The current contents of a table or view (recomputed from the tables)."""
        return self._connection.sql(f"SELECT * FROM {quote(relation)}").to_arrow_table()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for ad-hoc queries, usable from another thread."""
        return self._connection.cursor()

    def close(self) -> None:
        self._connection.close()


def delta_name(relation: str) -> str:
    """The private name a relation's change set is bound to while linear views are computed."""
    return "__sluice_delta_" + "".join(c if c.isalnum() else f"_{ord(c):x}_" for c in relation)


def _snapshot(view: str) -> str:
    return f"__sluice_snapshot_{view}"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _weighted(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field(WEIGHT, pa.int64(), nullable=False))


def _with_weight(table: pa.Table, weight: int) -> pa.Table:
    return table.append_column(
        pa.field(WEIGHT, pa.int64(), nullable=False),
        pa.array([weight] * table.num_rows, pa.int64()),
    )


def _expand(table: pa.Table) -> pa.Table:
    """Repeat each row |weight| times and set the weight to +1 or -1."""
    weights = table.column(WEIGHT)
    magnitudes = pc.abs(weights)
    if not table.num_rows or pc.max(magnitudes).as_py() == 1:
        return table
    indices: list[int] = []
    for index, count in enumerate(magnitudes.to_pylist()):
        indices.extend([index] * count)
    expanded = table.take(pa.array(indices, pa.int64()))
    signs = pc.sign(expanded.column(WEIGHT)).cast(pa.int64())
    return expanded.set_column(
        expanded.schema.get_field_index(WEIGHT), pa.field(WEIGHT, pa.int64(), False), signs
    )


def _consolidate(
    connection: duckdb.DuckDBPyConnection, parts: list[tuple[pa.Table, int]], schema: pa.Schema
) -> pa.Table:
    """Sum the weights of equal rows and drop rows whose weight cancels out."""
    pieces = [
        (
            _with_weight(table.select(schema.names).cast(schema), sign)
            if WEIGHT not in table.schema.names
            else table.select([*schema.names, WEIGHT]).cast(_weighted(schema))
        )
        for table, sign in parts
        if table.num_rows
    ]
    if not pieces:
        return pa.Table.from_batches([], _weighted(schema))
    if len(pieces) == 1:
        return pieces[0]
    combined = pa.concat_tables(pieces)
    columns = ", ".join(quote(column) for column in schema.names)
    connection.register("__sluice_consolidate", combined)
    try:
        result = connection.sql(
            f"SELECT {columns}, SUM({WEIGHT})::BIGINT AS {WEIGHT} FROM __sluice_consolidate "
            f"GROUP BY ALL HAVING SUM({WEIGHT}) <> 0"
        ).to_arrow_table()
    finally:
        connection.unregister("__sluice_consolidate")
    return result.cast(_weighted(schema))
