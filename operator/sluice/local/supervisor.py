"""Layer 4 (local): run one `sluice runtime` process per pipeline and keep it running.

Each pipeline gets a task that renders its config to a file, starts the runtime on
127.0.0.1 with a free port (read back from `--port-file`), follows its `/status`, applies
the desired state (pause, resume, stop, start) and restarts the process with back-off when
it dies, counting restarts. What it sees is published to the `LocalDirectory` the gateway
routes from. `stop()` ends every process: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice.core.directory import ConnectorEntry, DesiredState, PipelineEntry
from sluice.core.naming import endpoint_name
from sluice.local.directory import LocalDirectory
from sluice.local.manifests import LOCAL_NAMESPACE, LocalPipeline
from sluice.process.client import ProcessClient, ProcessError, ProcessUnreachable

logger = logging.getLogger(__name__)

RUNTIME_COMMAND: tuple[str, ...] = (sys.executable, "-m", "sluice", "runtime")
RUNTIME_COMMAND_ENV = "SLUICE_RUNTIME_COMMAND"
"""Overrides the command that runs a pipeline process (e.g. a development build)."""
STATUS_INTERVAL_SECONDS = 0.5
PORT_FILE_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 5.0
HEALTHY_RUN_SECONDS = 10.0
"""A process that ran this long resets the restart back-off."""


def default_runtime_command() -> tuple[str, ...]:
    """`sluice runtime` of this Python, unless SLUICE_RUNTIME_COMMAND says otherwise."""
    override = os.environ.get(RUNTIME_COMMAND_ENV, "").strip()
    return tuple(shlex.split(override)) if override else RUNTIME_COMMAND


def now() -> str:
    """RFC 3339 UTC timestamp."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class PipelineState:
    """What the supervisor knows of one pipeline."""

    pipeline: LocalPipeline
    desired: DesiredState
    status: str = "Stopped"
    status_since: str = field(default_factory=now)
    location: str | None = None
    incarnation: str | None = None
    restarts: int = 0
    error: dict[str, Any] | None = None
    tables: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    process: asyncio.subprocess.Process | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    log_path: Path | None = None

    def entry(self) -> PipelineEntry:
        """The directory entry for the gateway."""
        config = self.pipeline.config
        return PipelineEntry(
            namespace=LOCAL_NAMESPACE,
            name=self.pipeline.name,
            program_code=config.sql,
            deployment_status=self.status,
            desired_status=self.desired,
            location=self.location,
            incarnation=self.incarnation,
            deployment_error=self.error,
            tables=self.tables,
            views=self.views,
            connectors=tuple(
                ConnectorEntry(
                    name=connector.name,
                    relation=connector.relation,
                    direction=connector.direction,
                    endpoint_name=endpoint_name(connector.relation, connector.name),
                )
                for connector in config.connectors
            ),
            created_at=self.pipeline.created_at or None,
            status_since=self.status_since,
        )


class Supervisor:
    """Runs the pipeline processes of local mode."""

    def __init__(
        self,
        pipelines: Sequence[LocalPipeline],
        *,
        state_dir: Path,
        client: ProcessClient,
        runtime_command: Sequence[str] | None = None,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.state_dir = state_dir
        self.client = client
        self.runtime_command = tuple(runtime_command or default_runtime_command())
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.directory = LocalDirectory(LOCAL_NAMESPACE, self.set_desired_state)
        self.states = {
            pipeline.name: PipelineState(pipeline, desired=_initial_desired(pipeline))
            for pipeline in pipelines
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        """Start a task per pipeline."""
        for state in self.states.values():
            self._publish(state)
            self._tasks.append(
                asyncio.create_task(self._run(state), name=f"pipeline {state.pipeline.name}")
            )

    async def stop(self) -> None:
        """Stop every process and task."""
        self._stopping = True
        await asyncio.gather(*(self._terminate(state) for state in self.states.values()))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def set_desired_state(self, name: str, state: DesiredState) -> None:
        """Local mode's source of truth for a pipeline's desired state."""
        pipeline = self.states[name]
        pipeline.desired = state
        self._publish(pipeline)
        pipeline.wake.set()

    def _publish(self, state: PipelineState) -> None:
        self.directory.publish(state.entry())

    def _set_status(self, state: PipelineState, status: str) -> None:
        if status != state.status:
            state.status = status
            state.status_since = now()
        self._publish(state)

    # -- one pipeline

    async def _run(self, state: PipelineState) -> None:
        backoff = self.initial_backoff
        while not self._stopping:
            if state.desired == "Stopped":
                self._set_status(state, "Stopped")
                state.wake.clear()
                await state.wake.wait()
                continue
            started = time.monotonic()
            exit_code = await self._run_process(state)
            if self._stopping:
                return
            if exit_code is None:
                continue  # stopped on request
            state.restarts += 1
            state.location = None
            state.incarnation = None
            state.error = {
                "message": f"pipeline process exited with code {exit_code}: "
                + _tail(state.log_path),
                "error_code": "PipelineProcessExited",
                "details": {"exit_code": exit_code, "restarts": state.restarts},
            }
            if time.monotonic() - started > HEALTHY_RUN_SECONDS:
                backoff = self.initial_backoff
            logger.warning(
                "pipeline %s: process exited (%s); restart %d in %.1f s",
                state.pipeline.name,
                exit_code,
                state.restarts,
                backoff,
            )
            self._set_status(state, "Provisioning")
            state.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):  # keeps a racing cancellation (3.11)
                    await state.wake.wait()
            backoff = min(backoff * 2, self.max_backoff)

    async def _run_process(self, state: PipelineState) -> int | None:
        """Run the process until it exits (its code) or is stopped on request (None)."""
        name = state.pipeline.name
        folder = self.state_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / "runtime-config.json"
        initial = "Paused" if state.desired == "Paused" else "Running"
        config = state.pipeline.config.model_copy(update={"initial_state": initial})
        config_path.write_text(config.model_dump_json(indent=2))
        port_file = folder / "port"
        port_file.unlink(missing_ok=True)
        state.log_path = folder / "runtime.log"
        self._set_status(state, "Provisioning")
        with state.log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *self.runtime_command,
                "--config",
                str(config_path),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                cwd=state.pipeline.folder,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        state.process = process
        exited = asyncio.create_task(process.wait())
        try:
            location = await self._wait_for_port(port_file, exited)
            if location is None:
                return await exited
            state.location = location
            self._set_status(state, "Initializing")
            return await self._monitor(state, exited)
        finally:
            if not exited.done():
                await self._terminate(state)
            exited.cancel()
            state.process = None

    async def _wait_for_port(self, port_file: Path, exited: asyncio.Task[int]) -> str | None:
        deadline = time.monotonic() + PORT_FILE_TIMEOUT_SECONDS
        previous = None
        while time.monotonic() < deadline and not exited.done():
            location = _read_location(port_file)
            # Two equal reads in a row: the file is not being written any more.
            if location is not None and location == previous:
                return location
            previous = location
            await asyncio.sleep(0.02)
        return None

    async def _monitor(self, state: PipelineState, exited: asyncio.Task[int]) -> int | None:
        assert state.location is not None
        while True:
            if state.desired == "Stopped":
                self._set_status(state, "Stopping")
                await self._terminate(state)
                state.location = None
                state.incarnation = None
                return None
            await self._observe(state)
            state.wake.clear()
            waker = asyncio.create_task(state.wake.wait())
            done, _ = await asyncio.wait(
                {exited, waker},
                timeout=STATUS_INTERVAL_SECONDS,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waker.cancel()
            if exited in done:
                return exited.result()

    async def _observe(self, state: PipelineState) -> None:
        """Read the process's status; steer it towards the desired state."""
        assert state.location is not None
        try:
            status = await self.client.status(state.location)
        except (ProcessUnreachable, ProcessError) as error:
            logger.debug("pipeline %s: status unavailable: %s", state.pipeline.name, error)
            return
        runtime_status = str(status.get("runtime_status") or "Initializing")
        incarnation = status.get("incarnation_uuid")
        if isinstance(incarnation, str) and incarnation != state.incarnation:
            state.incarnation = incarnation
            await self._learn_schema(state)
        if runtime_status in ("Running", "Paused"):
            state.error = None
            wanted = state.desired
            if runtime_status != wanted and status.get("runtime_desired_status") != wanted:
                try:
                    if wanted == "Running":
                        await self.client.start(state.location)
                    elif wanted == "Paused":
                        await self.client.pause(state.location)
                except (ProcessUnreachable, ProcessError) as error:
                    logger.warning("pipeline %s: cannot %s: %s", state.pipeline.name, wanted, error)
        self._set_status(state, runtime_status)

    async def _learn_schema(self, state: PipelineState) -> None:
        assert state.location is not None
        try:
            metadata = await self.client.metadata(state.location)
        except (ProcessUnreachable, ProcessError):
            return
        schema = metadata.get("schema") or {}
        state.tables = tuple(str(item["name"]) for item in schema.get("inputs", []))
        state.views = tuple(str(item["name"]) for item in schema.get("outputs", []))

    async def _terminate(self, state: PipelineState) -> None:
        process = state.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def _initial_desired(pipeline: LocalPipeline) -> DesiredState:
    return pipeline.desired_state


def _read_location(port_file: Path) -> str | None:
    """`host:port` from the runtime's port file, once it is complete."""
    try:
        text = port_file.read_text().strip()
    except FileNotFoundError:
        return None
    return text if ":" in text else None


def _tail(path: Path | None, lines: int = 3) -> str:
    """The last lines of a process log, for error messages."""
    if path is None:
        return "(no log)"
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
