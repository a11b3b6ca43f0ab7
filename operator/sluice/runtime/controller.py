"""Layer 3 (runtime), I/O: one running pipeline — endpoints, queues, steps, completion.

The controller owns the engine (run on one worker thread, so the event loop stays free for
the API), the input endpoints with their bounded queues, the output endpoints, and the
completion tracker. A step drains the queue of every active input endpoint, runs the engine,
writes file outputs on the same worker thread, hands the changes to HTTP egress streams, and
advances `total_completed_steps` to the minimum over outputs of the steps they delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import secrets
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa

from sluice.core import errors
from sluice.core.naming import canonical_sql_name, short_hash
from sluice.core.tokens import CompletionToken
from sluice.models.runtime_config import FormatConfig, RuntimeConfig
from sluice.runtime.completion import CompletionTracker, TokenStatus
from sluice.runtime.engine import WEIGHT, Engine
from sluice.runtime.formats import (
    MAX_REPORTED_ERRORS,
    Parsed,
    ParseError,
    RecordEncoder,
    RecordParser,
)
from sluice.runtime.program import EndpointPlan, parse_program, plan_endpoints, program_connectors

logger = logging.getLogger(__name__)

INGRESS_MAX_QUEUED_RECORDS = 100_000
"""Feldera's queue bound for HTTP ingress endpoints."""

INLINE_STEP_RECORDS = 1_000
"""Steps with at most this many input records run on the event loop, larger ones on the
engine thread."""

END_OF_STREAM = -1
"""Step number that tells an HTTP egress stream the pipeline is shutting down."""

RunState = Literal["Running", "Paused"]


def uuid7() -> str:
    """A version-7 UUID (time-ordered), as Feldera uses for incarnations."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


class OutputFailed(RuntimeError):
    """An output connector could not deliver a step's changes."""


@dataclass
class InputEndpoint:
    """An input connector: counters, parse errors and the queue of parsed batches."""

    endpoint_id: int
    name: str
    table: str
    config: dict[str, Any]
    max_queued_records: int
    paused: bool = False
    ingress: bool = False
    total_records: int = 0
    total_bytes: int = 0
    buffered_records: int = 0
    buffered_bytes: int = 0
    num_parse_errors: int = 0
    num_transport_errors: int = 0
    end_of_input: bool = False
    fatal_error: str | None = None
    parse_errors: list[dict[str, Any]] = field(default_factory=list)
    transport_errors: list[dict[str, Any]] = field(default_factory=list)
    queue: deque[tuple[pa.Table, int]] = field(default_factory=deque)
    space: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)

    def report(self, parsed: Parsed) -> None:
        self.num_parse_errors += len(parsed.errors)
        room = MAX_REPORTED_ERRORS - len(self.parse_errors)
        self.parse_errors.extend(error.body(_now()) for error in parsed.errors[: max(room, 0)])

    def transport_error(self, message: str) -> None:
        self.num_transport_errors += 1
        if len(self.transport_errors) < MAX_REPORTED_ERRORS:
            self.transport_errors.append({"timestamp": _now(), "index": None, "message": message})


@dataclass
class OutputEndpoint:
    """An output connector (a file or an HTTP egress stream) and what it delivered."""

    endpoint_id: int
    name: str
    view: str
    config: dict[str, Any]
    encoder: RecordEncoder
    processed_steps: int = 0
    transmitted_records: int = 0
    transmitted_bytes: int = 0
    total_processed_input_records: int = 0
    num_encode_errors: int = 0
    num_transport_errors: int = 0
    fatal_error: str | None = None
    file: IO[str] | None = None
    stream: asyncio.Queue[tuple[int, pa.Table | None]] | None = None


class Controller:
    """A running pipeline."""

    def __init__(self, config: RuntimeConfig) -> None:
        """Parse and bind the program and connectors; raises ProgramError when invalid."""
        self.config = config
        self.program = parse_program(config.sql)
        self.plans: list[EndpointPlan] = plan_endpoints(
            self.program, [*config.connectors, *program_connectors(self.program)]
        )
        self.engine = Engine(self.program)
        self.incarnation = uuid7()
        self.tracker = CompletionTracker(self.incarnation)
        self.desired: RunState = config.initial_state
        self.status = "Initializing"
        self.started_at = time.time()
        self.inputs: dict[str, InputEndpoint] = {}
        self.inputs_by_id: dict[int, InputEndpoint] = {}
        self.outputs: dict[str, OutputEndpoint] = {}
        self._next_input_id = 0
        self._next_output_id = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sluice-engine")
        self._wake = asyncio.Event()
        self._frontier_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._connector_tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._step_loop: asyncio.Task[None] | None = None
        self.step_errors = 0
        self.last_step_error: str | None = None
        self.failure: str | None = None
        """Set when a step failed: the pipeline stops stepping, as Feldera stops on a fatal
        error, so no token covering the lost step can ever report complete."""
        for plan in self.plans:
            if plan.direction == "input":
                endpoint = self._add_input(
                    plan.endpoint_name, plan.relation, plan.connector.model_dump()
                )
                endpoint.max_queued_records = plan.connector.max_queued_records
                self.set_connector_paused(endpoint, plan.connector.paused)
            else:
                self._add_output(plan)

    # ---- endpoints ---------------------------------------------------------------------

    def _add_input(self, name: str, table: str, config: dict[str, Any]) -> InputEndpoint:
        endpoint = InputEndpoint(
            endpoint_id=self._next_input_id,
            name=name,
            table=table,
            config=config,
            max_queued_records=int(config.get("max_queued_records") or INGRESS_MAX_QUEUED_RECORDS),
        )
        endpoint.space.set()
        self._next_input_id += 1
        self.inputs[name] = endpoint
        self.inputs_by_id[endpoint.endpoint_id] = endpoint
        self.tracker.add_endpoint(endpoint.endpoint_id, name)
        self._sync_resumed(endpoint)
        self._notify_frontier()
        return endpoint

    def _add_output(self, plan: EndpointPlan) -> None:
        assert plan.connector.format is not None
        endpoint = OutputEndpoint(
            endpoint_id=self._next_output_id,
            name=plan.endpoint_name,
            view=plan.relation,
            config=plan.connector.model_dump(),
            encoder=RecordEncoder(plan.connector.format),
        )
        self._next_output_id += 1
        path = Path(str(plan.connector.transport.config.get("path", "")))
        path.parent.mkdir(parents=True, exist_ok=True)
        endpoint.file = path.open("w", encoding="utf-8")
        self.outputs[endpoint.name] = endpoint

    def parser_for(self, table: str, fmt: FormatConfig) -> RecordParser:
        relation = self.engine.tables[table]
        return RecordParser(fmt, relation.schema, relation.columns)

    def input_endpoint(self, name: str) -> InputEndpoint:
        endpoint = self.inputs.get(name)
        if endpoint is None:
            raise errors.unknown_input_endpoint(name)
        return endpoint

    def output_endpoint(self, name: str) -> OutputEndpoint:
        endpoint = self.outputs.get(name)
        if endpoint is None:
            raise errors.unknown_output_endpoint(name)
        return endpoint

    def ingress_endpoint(self, table_name: str, fmt: FormatConfig) -> InputEndpoint:
        """The shared HTTP input endpoint of (table, format), created on first use."""
        table = canonical_sql_name(table_name)
        digest = short_hash(f"{table}|{fmt.model_dump_json()}")
        name = f"{table}.api-ingress-{digest}"
        if table not in self.engine.tables:
            raise errors.unknown_input_stream(name, table)
        existing = self.inputs.get(name)
        if existing is not None:
            return existing
        endpoint = self._add_input(
            name,
            table,
            {"stream": table, "transport": {"name": "http_input"}, "format": fmt.model_dump()},
        )
        endpoint.ingress = True
        return endpoint

    # ---- input -------------------------------------------------------------------------

    async def push(self, endpoint: InputEndpoint, parsed: Parsed, size: int) -> None:
        """Queue parsed records, waiting while the endpoint's queue is full."""
        endpoint.report(parsed)
        endpoint.total_bytes += size
        records = parsed.batch.num_rows
        if not records:
            return
        while endpoint.buffered_records >= endpoint.max_queued_records and not self._stopping:
            endpoint.space.clear()
            await endpoint.space.wait()
        endpoint.queue.append((parsed.batch, records))
        endpoint.total_records += records
        endpoint.buffered_records += records
        endpoint.buffered_bytes += size
        self._wake.set()

    def mint(self, endpoint: InputEndpoint) -> str:
        """A completion token covering every record the endpoint has received so far."""
        return CompletionToken(
            self.incarnation, endpoint.endpoint_id, endpoint.total_records
        ).encode()

    def completion_status(self, token: CompletionToken) -> TokenStatus:
        return self.tracker.status(token)

    async def ingest(self, table: str, fmt: FormatConfig, chunks: AsyncIterator[bytes]) -> str:
        """HTTP ingress: queue the whole body, then mint a token for it."""
        if self._stopping:
            raise errors.terminating()
        endpoint = self.ingress_endpoint(table, fmt)
        parser = self.parser_for(endpoint.table, fmt)
        failures: list[ParseError] = []
        async for chunk in chunks:
            parsed = parser.feed(chunk)
            failures.extend(parsed.errors)
            await self.push(endpoint, parsed, len(chunk))
        parsed = parser.feed(b"", final=True)
        failures.extend(parsed.errors)
        await self.push(endpoint, parsed, 0)
        if failures:
            raise errors.parse_errors(
                len(failures), [error.body(_now()) for error in failures[:MAX_REPORTED_ERRORS]]
            )
        return self.mint(endpoint)

    # ---- output ------------------------------------------------------------------------

    def subscribe(self, view_name: str, fmt: FormatConfig) -> OutputEndpoint:
        """A new HTTP egress output; it must be released with `unsubscribe`."""
        view = canonical_sql_name(view_name)
        name = f"{view}.api-{uuid.uuid4()}"
        if view not in self.engine.views and view not in self.engine.tables:
            raise errors.unknown_output_stream(name, view)
        endpoint = OutputEndpoint(
            endpoint_id=self._next_output_id,
            name=name,
            view=view,
            config={
                "stream": view,
                "transport": {"name": "http_output"},
                "format": fmt.model_dump(),
            },
            encoder=RecordEncoder(fmt),
            processed_steps=self.tracker.initiated_steps,
            stream=asyncio.Queue(),
        )
        self._next_output_id += 1
        self.outputs[name] = endpoint
        return endpoint

    def unsubscribe(self, endpoint: OutputEndpoint) -> None:
        self.outputs.pop(endpoint.name, None)
        self._advance()

    def delivered(self, endpoint: OutputEndpoint, step: int) -> None:
        """An HTTP egress stream has written the output of `step`."""
        endpoint.processed_steps = max(endpoint.processed_steps, step)
        self._advance()

    # ---- steps -------------------------------------------------------------------------

    def _active(self, endpoint: InputEndpoint) -> bool:
        return self.desired == "Running" and not endpoint.paused

    def _take_input(self) -> tuple[dict[str, list[pa.Table]], dict[int, int]]:
        batches: dict[str, list[pa.Table]] = {}
        counts: dict[int, int] = {}
        for endpoint in list(self.inputs.values()):
            if not endpoint.queue or not self._active(endpoint):
                continue
            taken = 0
            while endpoint.queue:
                batch, records = endpoint.queue.popleft()
                batches.setdefault(endpoint.table, []).append(batch)
                taken += records
            counts[endpoint.endpoint_id] = taken
            endpoint.buffered_records = 0
            endpoint.buffered_bytes = 0
            endpoint.space.set()
        return batches, counts

    @property
    def stopping(self) -> bool:
        return self._stopping

    def wake(self) -> None:
        """Something changed that the step loop may act on (input ended, resumed, ...)."""
        self._wake.set()

    def has_queued_input(self) -> bool:
        if self.failure is not None:
            return False
        return any(endpoint.queue and self._active(endpoint) for endpoint in self.inputs.values())

    async def run_step(self, force: bool = False) -> bool:
        """Run one step if there is input (or `force`); True when a step ran."""
        if self.failure is not None:
            return False
        batches, counts = self._take_input()
        if not counts and not force:
            return False
        step = self.tracker.start_step(counts)
        file_outputs = [output for output in self.outputs.values() if output.file is not None]
        loop = asyncio.get_running_loop()
        try:
            if sum(counts.values()) <= INLINE_STEP_RECORDS:
                # A small step takes a few milliseconds: run it here rather than pay for a
                # thread hop and for the worker waiting on the GIL while the loop serves polls.
                deltas = self._execute(batches, file_outputs)
            else:
                deltas = await loop.run_in_executor(
                    self._executor, self._execute, batches, file_outputs
                )
        except Exception as error:
            # A failing step (a SQL runtime error in a view, an output that cannot be written)
            # lost data: the pipeline stops there, like Feldera on a fatal error. Completion
            # never advances past the step, so no token claims records that were not delivered.
            logger.exception("step %d failed; the pipeline stops", step)
            self.step_errors += 1
            self.last_step_error = f"step {step} failed: {error}"
            self.failure = self.last_step_error
            self.status = "Stopped"
            return True
        records = sum(counts.values())
        for output in list(self.outputs.values()):
            output.total_processed_input_records += records
            if output.file is not None:
                output.processed_steps = step
            elif output.stream is not None:
                output.stream.put_nowait((step, deltas.get(output.view)))
        self._advance()
        return True

    def _execute(
        self, batches: dict[str, list[pa.Table]], file_outputs: list[OutputEndpoint]
    ) -> dict[str, pa.Table]:
        deltas = self.engine.step(batches)
        for output in file_outputs:
            delta = deltas.get(output.view)
            if delta is None or output.file is None:
                continue
            try:
                text = output.encoder.file_text(delta)
                output.file.write(text)
                output.file.flush()
            except (OSError, ValueError, pa.ArrowException) as error:
                output.num_transport_errors += 1
                output.fatal_error = str(error)
                raise OutputFailed(f"output {output.name} could not be written: {error}") from error
            output.transmitted_records += _record_count(delta)
            output.transmitted_bytes += len(text)
        return deltas

    def _advance(self) -> None:
        target = min(
            (output.processed_steps for output in self.outputs.values()),
            default=self.tracker.initiated_steps,
        )
        if self.tracker.complete_through(target):
            self._notify_frontier()

    def _notify_frontier(self) -> None:
        event, self._frontier_event = self._frontier_event, asyncio.Event()
        event.set()

    async def frontier_changed(self, wait_seconds: float) -> None:
        """Wait until the frontier (or the endpoint set) changes, or `wait_seconds` pass."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for may turn a racing cancellation
        # into TimeoutError, and a caller looping on this would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds):
                await self._frontier_event.wait()

    async def _step_forever(self) -> None:
        await self.run_step(force=True)
        while True:
            await self._wake.wait()
            self._wake.clear()
            if await self.run_step():
                # Input that arrived during the step is consumed by the next one at once.
                self._wake.set()

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(
        self,
        connectors: Callable[[Controller, InputEndpoint, EndpointPlan], Coroutine[Any, Any, None]],
    ) -> None:
        """Start the step loop and one task per input connector."""
        self._step_loop = asyncio.create_task(self._step_forever(), name="sluice-steps")
        for plan in self.plans:
            if plan.direction == "input":
                endpoint = self.inputs[plan.endpoint_name]
                task = asyncio.create_task(connectors(self, endpoint, plan), name=endpoint.name)
                self._connector_tasks.append(task)
        self.status = self.desired if self.failure is None else "Stopped"

    def set_desired(self, state: RunState) -> str:
        previous = self.desired
        self.desired = state
        self.status = state if self.failure is None else "Stopped"
        for endpoint in self.inputs.values():
            self._sync_resumed(endpoint)
        self._wake.set()
        return f"Pipeline transitioning from {previous} to {state}"

    def set_connector_paused(self, endpoint: InputEndpoint, paused: bool) -> None:
        endpoint.paused = paused
        self._sync_resumed(endpoint)
        self._wake.set()

    def _sync_resumed(self, endpoint: InputEndpoint) -> None:
        """Connectors read only while both they and the pipeline run."""
        if self._active(endpoint):
            endpoint.resumed.set()
        else:
            endpoint.resumed.clear()

    async def stop(self, grace_seconds: float = 20.0) -> None:
        """Drain: stop inputs, consume what is queued, flush outputs, release everything."""
        if self._stopping:
            return
        self._stopping = True
        for task in self._connector_tasks:
            task.cancel()
        await asyncio.gather(*self._connector_tasks, return_exceptions=True)
        for endpoint in self.inputs.values():
            endpoint.space.set()
        if self._step_loop is not None:
            self._step_loop.cancel()
            await asyncio.gather(self._step_loop, return_exceptions=True)
        if self.desired == "Running":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.run_step(), grace_seconds)
        streams = [out.stream.join() for out in self.outputs.values() if out.stream is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*streams), grace_seconds / 2)
        for output in list(self.outputs.values()):
            if output.file is not None:
                output.file.close()
            if output.stream is not None:
                output.stream.put_nowait((END_OF_STREAM, None))
        self._notify_frontier()
        self._executor.shutdown(wait=True)
        self.engine.close()

    # ---- reporting ---------------------------------------------------------------------

    def pipeline_complete(self) -> bool:
        sources = [endpoint for endpoint in self.inputs.values() if not endpoint.ingress]
        return all(endpoint.end_of_input for endpoint in sources) and all(
            self.tracker.frontier()["endpoints"][str(endpoint.endpoint_id)]["completed_records"]
            >= endpoint.total_records
            for endpoint in self.inputs.values()
        )

    def global_metrics(self) -> dict[str, Any]:
        frontier = self.tracker.frontier()["endpoints"]
        return {
            "state": self.desired if not self._stopping else "Terminated",
            "bootstrap_in_progress": False,
            "transaction_status": "NoTransaction",
            "transaction_id": 0,
            "incarnation_uuid": self.incarnation,
            "start_time": int(self.started_at),
            "uptime_msecs": int((time.time() - self.started_at) * 1000),
            "rss_bytes": _rss_bytes(),
            "cpu_msecs": int(time.process_time() * 1000),
            "total_input_records": sum(ep.total_records for ep in self.inputs.values()),
            "total_input_bytes": sum(ep.total_bytes for ep in self.inputs.values()),
            "buffered_input_records": sum(ep.buffered_records for ep in self.inputs.values()),
            "buffered_input_bytes": sum(ep.buffered_bytes for ep in self.inputs.values()),
            "total_processed_records": sum(
                self.tracker.consumed(ep.endpoint_id) for ep in self.inputs.values()
            ),
            "total_completed_records": sum(
                entry["completed_records"] for entry in frontier.values()
            ),
            "total_initiated_steps": self.tracker.initiated_steps,
            "total_completed_steps": self.tracker.completed_steps,
            "pipeline_complete": self.pipeline_complete(),
        }

    def input_status(self, endpoint: InputEndpoint, include_errors: bool = True) -> dict[str, Any]:
        completed = self.tracker.frontier()["endpoints"][str(endpoint.endpoint_id)]
        status: dict[str, Any] = {
            "endpoint_name": endpoint.name,
            "config": {"stream": endpoint.table},
            "metrics": {
                "total_bytes": endpoint.total_bytes,
                "total_records": endpoint.total_records,
                "buffered_records": endpoint.buffered_records,
                "buffered_bytes": endpoint.buffered_bytes,
                "num_transport_errors": endpoint.num_transport_errors,
                "num_parse_errors": endpoint.num_parse_errors,
                "end_of_input": endpoint.end_of_input,
                "processing_latency_p99_micros": None,
            },
            "fatal_error": endpoint.fatal_error,
            "health": {"status": "Unhealthy" if endpoint.fatal_error else "Healthy"},
            "paused": endpoint.paused,
            "barrier": False,
            "completed_frontier": None,
            "completed_records": completed["completed_records"],
        }
        if include_errors:
            status["parse_errors"] = list(endpoint.parse_errors)
            status["transport_errors"] = list(endpoint.transport_errors)
        return status

    def output_status(self, endpoint: OutputEndpoint) -> dict[str, Any]:
        queued = endpoint.stream.qsize() if endpoint.stream is not None else 0
        return {
            "endpoint_name": endpoint.name,
            "config": {"stream": endpoint.view},
            "metrics": {
                "transmitted_records": endpoint.transmitted_records,
                "transmitted_bytes": endpoint.transmitted_bytes,
                "queued_records": 0,
                "queued_batches": queued,
                "buffered_records": 0,
                "buffered_batches": 0,
                "num_encode_errors": endpoint.num_encode_errors,
                "num_transport_errors": endpoint.num_transport_errors,
                "total_processed_input_records": endpoint.total_processed_input_records,
                "total_processed_steps": endpoint.processed_steps,
                "memory": 0,
                "batch_records_written": None,
            },
            "fatal_error": endpoint.fatal_error,
            "encode_errors": [],
            "transport_errors": [],
            "health": {"status": "Unhealthy" if endpoint.fatal_error else "Healthy"},
        }

    def stats(self, include_errors: bool = True) -> dict[str, Any]:
        return {
            "global_metrics": self.global_metrics(),
            "inputs": [self.input_status(ep, include_errors) for ep in self.inputs.values()],
            "outputs": [self.output_status(ep) for ep in self.outputs.values()],
            "suspend_error": None,
            "permanent_checkpoint_errors": None,
            "checkpoint_activity": "Idle",
            "views": {
                name: {"maintenance": view.maintenance, "materialized": view.materialized}
                for name, view in self.engine.views.items()
            },
            "step_errors": self.step_errors,
        }

    def metadata(self) -> dict[str, Any]:
        def relation(name: str, materialized: bool) -> dict[str, Any]:
            columns = (self.engine.tables.get(name) or self.engine.views[name]).columns
            return {
                "name": name,
                "case_sensitive": name != name.lower(),
                "materialized": materialized,
                "fields": [
                    {
                        "name": column.name,
                        "case_sensitive": False,
                        "columntype": _column_type(column.type, column.nullable),
                    }
                    for column in columns
                ],
            }

        connectors = []
        for plan in self.plans:
            endpoint_id = (
                self.inputs[plan.endpoint_name].endpoint_id
                if plan.direction == "input"
                else self.outputs[plan.endpoint_name].endpoint_id
            )
            connectors.append(
                {
                    "name": plan.connector.name,
                    "relation": plan.relation,
                    "direction": plan.direction,
                    "endpoint_name": plan.endpoint_name,
                    "endpoint_id": endpoint_id,
                }
            )
        return {
            "pipeline_name": self.config.pipeline_name,
            "program_code": self.config.sql,
            "incarnation_uuid": self.incarnation,
            "schema": {
                "inputs": [
                    relation(table.name, bool(table.properties.get("materialized") == "true"))
                    for table in self.program.tables
                ],
                "outputs": [
                    relation(view.name, view.materialized)
                    for view in self.program.views
                    if not view.local
                ],
            },
            "connectors": connectors,
        }


def _record_count(delta: pa.Table) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(pc.abs(delta.column(WEIGHT))).as_py() or 0)


def _column_type(duckdb_type: str, nullable: bool) -> dict[str, Any]:
    name = duckdb_type.upper()
    column: dict[str, Any] = {"nullable": nullable}
    if name.startswith("DECIMAL"):
        precision, _, scale = name[name.find("(") + 1 : name.find(")")].partition(",")
        column.update(type="DECIMAL", precision=int(precision), scale=int(scale or 0))
        return column
    aliases = {"INTEGER": "INTEGER", "VARCHAR": "VARCHAR", "FLOAT": "REAL", "BLOB": "VARBINARY"}
    column["type"] = aliases.get(name, name)
    if column["type"] == "VARCHAR":
        column["precision"] = -1
    return column


def _rss_bytes() -> int:
    try:
        with Path("/proc/self/statm").open() as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
