"""`sluice runtime`: run one pipeline process (the pipeline pod, or a local-mode process).

Reads the config document (`RuntimeConfig` JSON), binds the program and connectors (exit
code 2 with one line on stderr when they are invalid), then serves the pipeline-process API
until SIGTERM or SIGINT, which drain the pipeline and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from sluice.core.errors import UserError
from sluice.models.runtime_config import RuntimeConfig

HELP = "Run a pipeline process: SQL engine, connectors and the pipeline-process API."

logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=os.environ.get("SLUICE_RUNTIME_CONFIG"),
        help="the runtime config document, JSON (env SLUICE_RUNTIME_CONFIG)",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("SLUICE_RUNTIME_HOST", "0.0.0.0"),
        help="bind address (env SLUICE_RUNTIME_HOST, default 0.0.0.0)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SLUICE_RUNTIME_PORT", "8080")),
        help="port; 0 picks a free one (env SLUICE_RUNTIME_PORT, default 8080)",
    )
    parser.add_argument(
        "--port-file",
        help="once listening, write host:port to this file",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only validate the config (parse and bind the SQL, check the connectors), touch "
        "no file and exit: 0 when valid, 2 with the reason when not. `--config -` reads stdin.",
    )


def load_config(path: str | None) -> RuntimeConfig:
    """The config document at `path`; a UserError (exit 2) naming the problem otherwise."""
    if not path:
        raise UserError("no runtime config: pass --config or set SLUICE_RUNTIME_CONFIG")
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        document = json.loads(text)
    except OSError as error:
        raise UserError(f"cannot read runtime config {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise UserError(f"runtime config {path} is not valid JSON: {error}") from error
    try:
        return RuntimeConfig.model_validate(document)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "document"
        raise UserError(f"runtime config {path}: {where}: {problem['msg']}") from error


def run(args: argparse.Namespace) -> int:
    from sluice.runtime.controller import Controller
    from sluice.runtime.program import ProgramError

    config = load_config(args.config)
    if args.check:
        check_config(config)
        print(f"pipeline '{config.pipeline_name}': the program and its connectors are valid")
        return 0
    try:
        controller = Controller(config)
    except ProgramError as error:
        raise UserError(f"invalid pipeline '{config.pipeline_name}': {error}") from error
    except OSError as error:
        raise UserError(f"invalid pipeline '{config.pipeline_name}': {error}") from error
    logger.info("pipeline %s, incarnation %s", config.pipeline_name, controller.incarnation)
    return asyncio.run(_serve(controller, args.host, args.port, args.port_file))


def check_config(config: RuntimeConfig) -> None:
    """Bind the program in a scratch engine and plan its connectors, opening no file.

    The operator runs this before rolling a changed program out, so that an invalid edit
    never replaces a running pipeline (Feldera compiles a program before deploying it too).
    """
    from sluice.runtime.engine import Engine
    from sluice.runtime.program import (
        ProgramError,
        parse_program,
        plan_endpoints,
        program_connectors,
    )

    try:
        program = parse_program(config.sql)
        plan_endpoints(program, [*config.connectors, *program_connectors(program)])
        Engine(program)
    except ProgramError as error:
        raise UserError(f"invalid pipeline '{config.pipeline_name}': {error}") from error


async def _serve(controller: object, host: str, port: int, port_file: str | None) -> int:
    from aiohttp import web

    from sluice.runtime.api import create_app
    from sluice.runtime.controller import Controller

    assert isinstance(controller, Controller)
    # No access log: completion polls would each cost a log line.
    runner = web.AppRunner(
        create_app(controller), shutdown_timeout=5.0, handle_signals=False, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    bound = _bound_port(runner) or port
    print(
        f"sluice runtime: pipeline {controller.config.pipeline_name} on {host}:{bound}", flush=True
    )
    if port_file:
        _write_port_file(port_file, f"{host}:{bound}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    logger.info("draining pipeline %s", controller.config.pipeline_name)
    await runner.cleanup()
    sys.stdout.flush()
    return 0


def _write_port_file(path: str, address: str) -> None:
    """Write atomically, so a reader never sees a partial address."""
    temporary = Path(path + ".tmp")
    temporary.write_text(address, encoding="utf-8")
    temporary.replace(path)


def _bound_port(runner: object) -> int | None:
    from aiohttp import web

    assert isinstance(runner, web.AppRunner)
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None
