"""Layer 3 (runtime), pure: Feldera's data formats, bytes <-> weighted Arrow tables.

Input: `csv` (one insert per line, `delimiter`, `headers`) and `json` with `update_format`
`insert_delete` (`{"insert": row}` / `{"delete": row}`) or `raw` (the row is an insert), one
record per line or, with `array: true`, JSON arrays of records. A record that does not parse
is counted and reported with its position; the good records of the same chunk are kept.
Output: the same formats; CSV rows end with the weight column, as Feldera writes them.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from sluice.models.runtime_config import FormatConfig
from sluice.runtime.engine import WEIGHT, Column

MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True)
class ParseError:
    """One record that could not be parsed (Feldera's `parse_errors` entry)."""

    index: int
    message: str
    tag: str | None = None

    def body(self, timestamp: str) -> dict[str, Any]:
        return {
            "timestamp": timestamp,
            "index": self.index,
            "message": self.message,
            "tag": self.tag,
        }


@dataclass
class Parsed:
    """The records parsed from one chunk."""

    batch: pa.Table
    errors: list[ParseError] = field(default_factory=list)


Converter = Callable[[Any], Any]


class RecordParser:
    """Turns a byte stream of one format into weighted Arrow batches for one table."""

    def __init__(self, fmt: FormatConfig, schema: pa.Schema, columns: tuple[Column, ...]) -> None:
        self.format = fmt
        self.schema = schema
        self.columns = columns
        self.update_format = str(fmt.config.get("update_format", "insert_delete"))
        self.array = bool(fmt.config.get("array", False))
        self.delimiter = str(fmt.config.get("delimiter", ","))
        self._skip_header = bool(fmt.config.get("headers", False))
        self._remainder = b""
        self._position = 0
        self._by_name = {column.name.lower(): column for column in columns}
        self._converters = {
            column.name: _converter(schema.field(column.name).type) for column in columns
        }

    def feed(self, data: bytes, final: bool = False) -> Parsed:
        """Parse every complete record in `data` (plus what was left over before)."""
        data = self._remainder + data
        if self.format.name == "json" and self.array:
            # A whole JSON document per chunk: HTTP bodies and files are read to the end.
            if not final:
                self._remainder = data
                return Parsed(self._empty())
            self._remainder = b""
            return self._parse_json_array(data)
        if final:
            complete, self._remainder = data, b""
        else:
            cut = data.rfind(b"\n") + 1
            complete, self._remainder = data[:cut], data[cut:]
        if not complete.strip():
            return Parsed(self._empty())
        if self.format.name == "csv":
            return self._parse_csv(complete)
        return self._parse_json_lines(complete)

    def _empty(self) -> pa.Table:
        return _weighted(pa.Table.from_batches([], self.schema), [])

    # ---- CSV ---------------------------------------------------------------------------

    def _parse_csv(self, data: bytes) -> Parsed:
        if self._skip_header:
            newline = data.find(b"\n")
            data = b"" if newline < 0 else data[newline + 1 :]
            self._skip_header = False
        start = self._position
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        self._position += lines
        try:
            table = self._read_csv(data)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return self._parse_csv_lines(data, start)
        return self._checked(table, start)

    def _read_csv(self, data: bytes) -> pa.Table:
        return pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=self.schema.names, use_threads=True),
            parse_options=pa_csv.ParseOptions(delimiter=self.delimiter),
            convert_options=pa_csv.ConvertOptions(
                column_types=self.schema,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    def _parse_csv_lines(self, data: bytes, start: int) -> Parsed:
        good: list[pa.Table] = []
        errors: list[ParseError] = []
        for offset, line in enumerate(data.splitlines()):
            if not line.strip():
                continue
            try:
                good.append(self._read_csv(line + b"\n"))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
                errors.append(ParseError(start + offset, _one_line(error)))
        table = pa.concat_tables(good) if good else pa.Table.from_batches([], self.schema)
        parsed = self._checked(table, start)
        parsed.errors[:0] = errors
        return parsed

    def _checked(self, table: pa.Table, start: int) -> Parsed:
        """Drop rows with NULL in a NOT NULL column, reporting each as a parse error."""
        errors: list[ParseError] = []
        for column in self.columns:
            if column.nullable or table.column(column.name).null_count == 0:
                continue
            nulls = pc.is_null(table.column(column.name))
            for index in pc.indices_nonzero(nulls).to_pylist():
                errors.append(ParseError(start + index, f"missing value for column {column.name}"))
            table = table.filter(pc.invert(nulls))
        return Parsed(_weighted(table, [1] * table.num_rows), errors)

    # ---- JSON --------------------------------------------------------------------------

    def _parse_json_lines(self, data: bytes) -> Parsed:
        rows: list[dict[str, Any]] = []
        weights: list[int] = []
        errors: list[ParseError] = []
        for line in data.splitlines():
            if not line.strip():
                continue
            index = self._position
            self._position += 1
            try:
                self._record(json.loads(line), rows, weights)
            except (ValueError, TypeError, decimal.InvalidOperation) as error:
                errors.append(
                    ParseError(index, _one_line(error), line[:200].decode(errors="replace"))
                )
        return Parsed(self._table(rows, weights), errors)

    def _parse_json_array(self, data: bytes) -> Parsed:
        rows: list[dict[str, Any]] = []
        weights: list[int] = []
        errors: list[ParseError] = []
        try:
            document = json.loads(data) if data.strip() else []
            if not isinstance(document, list):
                raise ValueError("expected a JSON array")
        except ValueError as error:
            errors.append(ParseError(self._position, _one_line(error)))
            self._position += 1
            return Parsed(self._empty(), errors)
        for record in document:
            index = self._position
            self._position += 1
            try:
                self._record(record, rows, weights)
            except (ValueError, TypeError, decimal.InvalidOperation) as error:
                errors.append(ParseError(index, _one_line(error)))
        return Parsed(self._table(rows, weights), errors)

    def _record(self, record: Any, rows: list[dict[str, Any]], weights: list[int]) -> None:
        if self.update_format == "raw":
            rows.append(self._row(record))
            weights.append(1)
            return
        if not isinstance(record, dict) or not record.keys() & {"insert", "delete"}:
            raise ValueError('expected {"insert": ...} or {"delete": ...}')
        row = self._row(record.get("insert", record.get("delete")))
        rows.append(row)
        weights.append(1 if "insert" in record else -1)

    def _row(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, found {type(value).__name__}")
        row: dict[str, Any] = {}
        for key, item in value.items():
            column = self._by_name.get(key.lower())
            if column is not None:
                row[column.name] = item
        for column in self.columns:
            item = row.get(column.name)
            if item is None:
                if not column.nullable:
                    raise ValueError(f"missing value for column {column.name}")
                row[column.name] = None
                continue
            try:
                row[column.name] = self._converters[column.name](item)
            except (ValueError, TypeError, decimal.InvalidOperation) as error:
                raise ValueError(f"column {column.name}: {error}") from error
        return row

    def _table(self, rows: list[dict[str, Any]], weights: list[int]) -> pa.Table:
        return _weighted(pa.Table.from_pylist(rows, schema=self.schema), weights)


def _weighted(table: pa.Table, weights: list[int]) -> pa.Table:
    return table.append_column(pa.field(WEIGHT, pa.int64(), False), pa.array(weights, pa.int64()))


def _one_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _converter(arrow_type: pa.DataType) -> Converter:
    if pa.types.is_integer(arrow_type):
        return _integer
    if pa.types.is_floating(arrow_type):
        return _float
    if pa.types.is_decimal(arrow_type):
        exponent = decimal.Decimal(1).scaleb(-arrow_type.scale)
        return lambda value: decimal.Decimal(str(_number(value))).quantize(exponent)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return _string
    if pa.types.is_boolean(arrow_type):
        return _boolean
    if pa.types.is_date(arrow_type):
        return lambda value: datetime.date.fromisoformat(_string(value))
    if pa.types.is_timestamp(arrow_type):
        return lambda value: datetime.datetime.fromisoformat(_string(value))
    if pa.types.is_time(arrow_type):
        return lambda value: datetime.time.fromisoformat(_string(value))
    return lambda value: value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, found {value!r}")
    return value


def _number(value: Any) -> int | float | str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number, found {value!r}")
    return value


def _float(value: Any) -> float:
    return float(_number(value))


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, found {value!r}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, found {value!r}")
    return value


# ---- output ------------------------------------------------------------------------------


class RecordEncoder:
    """Turns a change set into Feldera's output records (JSON) or text (CSV)."""

    def __init__(self, fmt: FormatConfig) -> None:
        self.format = fmt
        self.update_format = str(fmt.config.get("update_format", "insert_delete"))
        self.array = bool(fmt.config.get("array", False))

    @property
    def is_json(self) -> bool:
        return self.format.name == "json"

    def json_records(self, delta: pa.Table) -> list[Any]:
        """One JSON value per record of weight one (a weight of n repeats it n times)."""
        weights = delta.column(WEIGHT).to_pylist()
        rows = json_ready(delta.drop_columns([WEIGHT])).to_pylist()
        records: list[Any] = []
        for row, weight in zip(rows, weights, strict=True):
            record = (
                row if self.update_format == "raw" else {"insert" if weight > 0 else "delete": row}
            )
            records.extend([record] * abs(weight))
        return records

    def csv_text(self, delta: pa.Table) -> str:
        """CSV lines, the weight last, no header."""
        buffer = io.BytesIO()
        pa_csv.write_csv(delta, buffer, write_options=pa_csv.WriteOptions(include_header=False))
        return buffer.getvalue().decode()

    def file_text(self, delta: pa.Table) -> str:
        """What a file output appends for one step."""
        if not self.is_json:
            return self.csv_text(delta)
        records = self.json_records(delta)
        if self.array:
            return dumps(records) + "\n"
        return "".join(dumps(record) + "\n" for record in records)


_EXACT = "\x00sluice-number:"
_EXACT_QUOTED = json.dumps(_EXACT)[:-1]


def json_ready(table: pa.Table) -> pa.Table:
    """Decimals become marked strings that `dumps` writes as exact JSON numbers."""
    for index, column in enumerate(table.schema):
        if pa.types.is_decimal(column.type):
            text = pc.binary_join_element_wise(
                _EXACT, pc.cast(table.column(index), pa.string()), ""
            )
            table = table.set_column(index, column.name, text)
    return table


def dumps(value: Any) -> str:
    """JSON text of output records: exact decimals, dates and times as ISO strings."""
    text = json.dumps(value, default=str)
    if _EXACT_QUOTED not in text:
        return text
    pieces = text.split(_EXACT_QUOTED)
    # Each marked value is `"<marker>digits"`: drop the marker and the closing quote.
    return pieces[0] + "".join(piece.replace('"', "", 1) for piece in pieces[1:])
