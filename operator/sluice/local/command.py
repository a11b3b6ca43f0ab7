"""`sluice local up`: run pipelines from manifests on this machine, behind the gateway API.

Reads Pipeline / Connector / CompletionToken YAML, starts one `sluice runtime` process per
pipeline, serves the gateway on 127.0.0.1:8080, prints how to reach it, a live status table
and each completion token's fate, and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

from sluice import __version__
from sluice.core.errors import UserError
from sluice.gateway.apikeys import FileApiKeyStore
from sluice.gateway.app import GatewaySettings, create_app
from sluice.gateway.auth import ApiKeyAuthenticator, Authenticator
from sluice.local.manifests import LOCAL_NAMESPACE, ManifestError, Manifests, load
from sluice.local.supervisor import Supervisor
from sluice.local.tokens import follow_token
from sluice.process.client import ProcessClient

HELP = "Run pipelines locally from Pipeline/Connector/CompletionToken YAML, without Kubernetes."
DEFAULT_API_KEY_FILE = ".sluice/api-keys.json"
TABLE_INTERVAL_SECONDS = 1.0


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start the pipelines and the gateway API")
    up.add_argument(
        "-f", "--filename", action="append", required=True, help="YAML file or folder (repeatable)"
    )
    up.add_argument("--host", default="127.0.0.1", help="address of the API (default 127.0.0.1)")
    up.add_argument(
        "--port", type=int, default=8080, help="port of the API (default 8080; 0: a free port)"
    )
    up.add_argument(
        "--auth",
        choices=["none", "apikey"],
        default="none",
        help="none (default in local mode) or apikey: keys from --api-key-file",
    )
    up.add_argument(
        "--api-key-file",
        default=DEFAULT_API_KEY_FILE,
        help=f"API keys made by `sluice apikey create` (default {DEFAULT_API_KEY_FILE})",
    )


def run(args: argparse.Namespace) -> int:
    try:
        manifests = load(args.filename)
    except ManifestError as error:
        raise UserError(f"invalid manifests: {error}") from None
    authenticators: list[Authenticator] = []
    if args.auth == "apikey":
        authenticators.append(ApiKeyAuthenticator(FileApiKeyStore(Path(args.api_key_file))))
    return asyncio.run(serve(manifests, args.host, args.port, authenticators))


def say(line: str) -> None:
    print(line, flush=True)


async def serve(
    manifests: Manifests, host: str, port: int, authenticators: list[Authenticator]
) -> int:
    """Run until Ctrl-C / SIGTERM; returns the exit code."""
    state_dir = Path(tempfile.mkdtemp(prefix="sluice-local-"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    settings = GatewaySettings(
        namespace=LOCAL_NAMESPACE, version=__version__, authenticators=authenticators
    )
    async with aiohttp.ClientSession() as session:
        client = ProcessClient(session)
        supervisor = Supervisor(manifests.pipelines, state_dir=state_dir, client=client)
        runner = web.AppRunner(create_app(settings, supervisor.directory), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            shutil.rmtree(state_dir, ignore_errors=True)
            raise UserError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None
        supervisor.start()
        port = int(runner.addresses[0][1])  # the real one when --port 0 asked for a free port
        print_banner(manifests, host, port, bool(authenticators), state_dir)
        background: list[asyncio.Task[object]] = [
            asyncio.create_task(follow_token(token, supervisor.directory, client, say))
            for token in manifests.tokens
        ]
        background.append(asyncio.create_task(show_status(supervisor)))
        try:
            await stop.wait()
        finally:
            say("stopping: pipelines and gateway ...")
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await supervisor.stop()
            await runner.cleanup()
            client.close()
            shutil.rmtree(state_dir, ignore_errors=True)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    say("stopped.")
    return 0


def print_banner(manifests: Manifests, host: str, port: int, auth: bool, state_dir: Path) -> None:
    """Where the API is, and a curl line and an SDK snippet that work against it."""
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{shown_host}:{port}"
    first = manifests.pipelines[0]
    inputs = [c for c in first.config.connectors if c.direction == "input"]
    say(f"Sluice local mode: Feldera API on {url}/v0 (OpenAPI: {url}/v0/openapi.json)")
    if auth:
        say("Authentication: API keys (Authorization: Bearer apikey:...)")
    else:
        say(
            "Authentication: OFF (local mode default) - anyone who can reach "
            f"{host}:{port} can use the API"
        )
    say(f"Pipeline process logs: {state_dir}/<pipeline>/runtime.log")
    bearer = ' -H "Authorization: Bearer $SLUICE_API_KEY"' if auth else ""
    if inputs:
        connector = inputs[0]
        say("Mint a completion token and check it:")
        path = f"/v0/pipelines/{first.name}/tables/{connector.relation}/connectors/{connector.name}"
        say(f"  TOKEN=$(curl -s{bearer} {url}{path}/completion_token | python3 -c "
            "'import json,sys; print(json.load(sys.stdin)[\"token\"])')")  # fmt: skip
        say(f'  curl -s{bearer} "{url}/v0/pipelines/{first.name}/completion_status'
            '?token=$TOKEN&wait_ms=5000"')  # fmt: skip
    else:
        say(f"  curl -s{bearer} {url}/v0/pipelines/{first.name}?selector=status")
    say("From Python (pip install feldera):")
    key = ', api_key="apikey:..."' if auth else ""
    say("  from feldera import FelderaClient, Pipeline")
    say(f'  client = FelderaClient("{url}"{key})')
    say(f'  pipeline = Pipeline.get("{first.name}", client)')
    say("  print(pipeline.status())")
    if inputs:
        connector = inputs[0]
        say(f'  token = pipeline.generate_completion_token("{connector.relation}", '
            f'"{connector.name}")')  # fmt: skip
        say("  pipeline.wait_for_token(token)")
    say("Press Ctrl-C to stop.")


def render_table(supervisor: Supervisor) -> list[str]:
    """The status table: one row per pipeline."""
    rows = [("PIPELINE", "STATUS", "DESIRED", "LOCATION", "RESTARTS", "LAST ERROR")]
    for name, state in sorted(supervisor.states.items()):
        error = (state.error or {}).get("message", "")
        rows.append(
            (
                name,
                state.status,
                state.desired,
                state.location or "-",
                str(state.restarts),
                (error[:60] + "...") if len(error) > 60 else error or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


async def show_status(supervisor: Supervisor) -> None:
    """Print the status table whenever it changes (at most once a second)."""
    shown: list[str] = []
    while True:
        table = render_table(supervisor)
        if table != shown:
            say("")
            for line in table:
                say(line)
            sys.stdout.flush()
            shown = table
        await asyncio.sleep(TABLE_INTERVAL_SECONDS)
