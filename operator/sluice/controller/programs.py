"""Layer 3 (controller): check a changed program before it replaces a running pipeline.

The operator never imports the runtime; it asks the runtime itself, in a child process
(`sluice runtime --check --config -`), whether a rendered config binds. That is the same code
the pipeline pod will run, so "valid here" means "starts there". Verdicts are cached by config
hash, so each distinct program is checked once.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import OrderedDict
from collections.abc import Sequence

from sluice.models.runtime_config import RuntimeConfig

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 60.0
CACHED_VERDICTS = 256


class ProgramChecker:
    """Runs the runtime's config check in a child process; None means valid."""

    def __init__(self, command: Sequence[str] | None = None) -> None:
        self.command = list(command or [sys.executable, "-m", "sluice"])
        self._verdicts: OrderedDict[str, str | None] = OrderedDict()

    async def problem(self, config: RuntimeConfig, config_hash: str) -> str | None:
        """Why `config` cannot run, or None when it binds and its connectors are valid."""
        if config_hash in self._verdicts:
            return self._verdicts[config_hash]
        process = await asyncio.create_subprocess_exec(
            *self.command,
            "runtime",
            "--check",
            "--config",
            "-",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(
                process.communicate(config.model_dump_json().encode()), CHECK_TIMEOUT_SECONDS
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            # Not a verdict on the program: do not cache, the next reconcile asks again.
            return f"the program check did not finish within {CHECK_TIMEOUT_SECONDS:.0f} s"
        if process.returncode == 0:
            verdict = None
        else:
            lines = stderr.decode(errors="replace").strip().splitlines()
            verdict = (lines[-1] if lines else f"exit code {process.returncode}").removeprefix(
                "sluice runtime: error: "
            )
        logger.debug("program %s: %s", config_hash, verdict or "valid")
        self._verdicts[config_hash] = verdict
        while len(self._verdicts) > CACHED_VERDICTS:
            self._verdicts.popitem(last=False)
        return verdict
