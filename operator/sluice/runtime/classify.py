"""Layer 3 (runtime), pure: decide how each view is maintained, from its parsed query.

The input is DuckDB's JSON serialisation of the view's SELECT (`json_serialize_sql`). A view
is *linear* when it is a projection and filter over one relation, or a `UNION ALL` of such:
its change set is then the query applied to the change sets of its inputs, with weights
carried through. Anything else (joins, aggregates, DISTINCT, set operations that remove
duplicates, ordering, limits, windows, subqueries) is recomputed and compared with the
previous result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Maintenance = Literal["linear", "recompute"]


@dataclass(frozen=True)
class ViewShape:
    """How a view is maintained and which relations it reads."""

    maintenance: Maintenance
    inputs: frozenset[str]


def classify(ast: dict[str, Any], aggregates: frozenset[str]) -> ViewShape:
    """The shape of one parsed query; `aggregates` are the engine's aggregate function names."""
    statements = ast.get("statements") or []
    node = statements[0]["node"] if statements else {}
    inputs = frozenset(name.lower() for name in _base_tables(node))
    linear = _is_linear(node, aggregates)
    return ViewShape("linear" if linear else "recompute", inputs)


def _is_linear(node: dict[str, Any], aggregates: frozenset[str]) -> bool:
    if node.get("modifiers") or (node.get("cte_map") or {}).get("map"):
        return False
    if node.get("type") == "SET_OPERATION_NODE":
        return (
            node.get("setop_type") == "UNION"
            and bool(node.get("setop_all"))
            and all(_is_linear(child, aggregates) for child in _set_children(node))
        )
    if node.get("type") != "SELECT_NODE":
        return False
    source = node.get("from_table") or {}
    if source.get("type") != "BASE_TABLE" or source.get("sample") or source.get("at_clause"):
        return False
    if node.get("group_expressions") or node.get("group_sets"):
        return False
    if node.get("having") or node.get("qualify") or node.get("sample"):
        return False
    if node.get("aggregate_handling") not in (None, "STANDARD_HANDLING"):
        return False
    expressions = [*node.get("select_list", []), node.get("where_clause")]
    return all(_scalar(expression, aggregates) for expression in expressions if expression)


def _set_children(node: dict[str, Any]) -> list[dict[str, Any]]:
    children = node.get("children")
    if children:
        return list(children)
    return [child for child in (node.get("left"), node.get("right")) if child]


def _scalar(expression: Any, aggregates: frozenset[str]) -> bool:
    """True when the expression is computed row by row (no aggregate, window or subquery)."""
    for item in _walk(expression):
        kind = item.get("class")
        if kind in ("WINDOW", "SUBQUERY"):
            return False
        if kind == "FUNCTION" and str(item.get("function_name", "")).lower() in aggregates:
            return False
    return True


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


def _base_tables(value: Any) -> Iterator[str]:
    for item in _walk(value):
        if item.get("type") == "BASE_TABLE" and isinstance(item.get("table_name"), str):
            yield item["table_name"]


def order_views(shapes: dict[str, ViewShape]) -> list[str]:
    """Views in an order where every view comes after the views it reads."""
    ordered: list[str] = []
    placed: set[str] = set()

    def place(name: str, trail: tuple[str, ...]) -> None:
        if name in placed or name in trail:
            return
        for dependency in sorted(shapes[name].inputs):
            if dependency in shapes:
                place(dependency, (*trail, name))
        placed.add(name)
        ordered.append(name)

    for name in shapes:
        place(name, ())
    return ordered


def rename_inputs(ast: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A copy of the parsed query reading `names[relation]` instead of each relation.

    An unaliased relation keeps its old name as alias, so qualified column references
    (`orders.amount`) still resolve.
    """
    copied: dict[str, Any] = json.loads(json.dumps(ast))
    for item in _walk(copied):
        if item.get("type") != "BASE_TABLE" or not isinstance(item.get("table_name"), str):
            continue
        original = item["table_name"]
        replacement = names.get(original.lower())
        if replacement is None:
            continue
        item["table_name"] = replacement
        path = (item.get("qualified_name") or {}).get("path")
        if isinstance(path, list) and path:
            path[-1] = replacement
        if not item.get("alias"):
            item["alias"] = original
    return copied
