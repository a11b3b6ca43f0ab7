"""Test support (e2e tier): plain HTTP calls to the gateway, as curl or an app would make them."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.sluice_processes import SLUICE


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def call(
    url: str, method: str = "GET", token: str | None = None, body: bytes | None = None
) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            raw, status, answer_headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, answer_headers = error.read(), error.code, error.headers
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Answer(status, parsed, dict(answer_headers))


def create_api_key(admin_kubeconfig: Path, namespace: str, name: str, role: str) -> str:
    """`sluice apikey create NAME --role ROLE --kubernetes`, run as a user would."""
    result = subprocess.run(
        [
            str(SLUICE),
            "apikey",
            "create",
            name,
            "--role",
            role,
            "--kubernetes",
            "--namespace",
            namespace,
        ],
        env={**os.environ, "KUBECONFIG": str(admin_kubeconfig)},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    key = result.stdout.strip()
    assert key.startswith("apikey:"), result
    return key
