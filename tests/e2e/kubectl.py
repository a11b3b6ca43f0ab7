"""Test support (e2e tier): runs the real kubectl against the test cluster, as a user would."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class KubectlError(AssertionError):
    """kubectl exited non-zero where the test expected success."""


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one kubeconfig (and optionally one namespace)."""

    binary: Path
    kubeconfig: Path
    namespace: str | None = None

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.binary, self.kubeconfig, namespace)

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 50
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), f"--kubeconfig={self.kubeconfig}"]
        if self.namespace is not None:
            argv.append(f"--namespace={self.namespace}")
        result = subprocess.run(
            [*argv, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def get_json(self, *args: str) -> Any:
        return json.loads(self.run("get", "-o", "json", *args).stdout)

    def apply(
        self, *documents: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Server-side apply with strict field validation, the way GitOps tools apply."""
        return self.run(
            "apply",
            "--server-side",
            "--field-manager=sluice-e2e",
            "--validate=strict",
            "-f",
            "-",
            stdin=yaml.safe_dump_all(documents),
            check=check,
        )
