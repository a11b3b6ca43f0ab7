"""Test support (e2e tier): evaluates cluster objects with the real kstatus library.

The Go program beside this file wraps sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, the
status logic GitOps tools (Flux, Config Sync, kpt) apply to any resource.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.cluster.controlplane import ControlPlaneError
from tests.e2e.kubectl import Kubectl

BUILD_SCRIPT = Path(__file__).parent / "build.sh"


@dataclass(frozen=True)
class Verdict:
    kind: str
    name: str
    status: str
    """Current, InProgress, Failed, Terminating, NotFound or Unknown."""
    message: str


@dataclass(frozen=True)
class Kstatus:
    binary: Path

    @classmethod
    def built(cls) -> Kstatus:
        result = subprocess.run(
            [str(BUILD_SCRIPT), "--check"], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise ControlPlaneError(result.stderr.strip())
        return cls(Path(result.stdout.strip()))

    def evaluate(self, kubectl: Kubectl, *resources: str) -> dict[str, Verdict]:
        """kstatus of what `kubectl get -o json RESOURCES` returns, by "kind/name"."""
        listing = kubectl.run("get", "-o", "json", *resources).stdout
        result = subprocess.run(
            [str(self.binary)], input=listing, capture_output=True, text=True, check=True
        )
        verdicts = [Verdict(**json.loads(line)) for line in result.stdout.splitlines()]
        return {f"{v.kind}/{v.name}": v for v in verdicts}
