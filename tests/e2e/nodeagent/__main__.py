"""Test support (e2e node agent): `python -m tests.e2e.nodeagent` runs one node until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from tests.e2e.nodeagent.agent import NodeAgent
from tests.e2e.nodeagent.api import Credentials, KubeApi


async def _main(kubeconfig: Path, node_name: str, root: Path) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with KubeApi(Credentials.from_kubeconfig(kubeconfig)) as api:
        agent = NodeAgent(api, node_name, root)
        running = asyncio.create_task(agent.run())
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await agent.shutdown()
        if running in done and running.exception() is not None:
            raise running.exception()  # type: ignore[misc]
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.nodeagent")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node-name", default="node-1")
    parser.add_argument("--root", type=Path, required=True, help="folder for the pods' files")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    args.root.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_main(args.kubeconfig, args.node_name, args.root))


if __name__ == "__main__":
    sys.exit(main())
