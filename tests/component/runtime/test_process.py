"""The real `sluice runtime` process: port file, exit codes, restart gives 410 for old tokens."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

SLUICE = Path(sys.executable).parent / "sluice"
SQL = "CREATE TABLE t (id BIGINT NOT NULL PRIMARY KEY, v INT); CREATE VIEW w AS SELECT id FROM t;"


def _start(config: Path, port_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file.unlink(missing_ok=True)
    log = port_file.with_suffix(".log")
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(SLUICE),
                "runtime",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--port-file",
                str(port_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    deadline = time.monotonic() + 40
    while not port_file.exists():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "runtime did not start"
        time.sleep(0.05)
    return process, "http://" + port_file.read_text()


def _call(url: str, data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _wait_complete(base: str, token: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, body = _call(f"{base}/completion_status?token={token}")
        assert status == 200, body
        if body["status"] == "complete":
            return
        time.sleep(0.02)
    raise AssertionError("token did not complete")


def test_restart_makes_old_tokens_410_and_sigterm_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"pipeline_name": "p", "sql": SQL}))
    port_file = tmp_path / "port"
    first, base = _start(config, port_file)
    try:
        status, body = _call(f"{base}/ingress/t?format=json", b'{"insert": {"id": 1, "v": 2}}')
        assert status == 200, body
        old_token = body["token"]
        _wait_complete(base, old_token)
    finally:
        first.kill()
        first.wait(10)
    second, base = _start(config, port_file)
    try:
        status, body = _call(f"{base}/completion_status?token={old_token}")
        assert status == 410
        assert body["error_code"] == "PipelineRestarted"
        assert _call(f"{base}/readyz")[0] == 200
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"pipeline_name": "p", "sql": "CREATE TABLE t (id NOTATYPE)"}, "table 't'"),
        ({"pipeline_name": "p", "sql": "CREATE VIEW v AS SELECT * FROM missing"}, "view 'v'"),
        (
            {
                "pipeline_name": "p",
                "sql": SQL,
                "connectors": [
                    {
                        "name": "c",
                        "relation": "nope",
                        "direction": "input",
                        "transport": {"name": "file_input"},
                        "format": {"name": "json"},
                    }
                ],
            },
            "unknown table 'nope'",
        ),
        ({"pipeline_name": "p"}, "sql"),
    ],
)
def test_invalid_config_exits_2_with_one_line(
    tmp_path: Path, document: dict[str, Any], message: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(document))
    result = subprocess.run(
        [str(SLUICE), "runtime", "--config", str(config), "--port", "0"],
        capture_output=True,
        timeout=40,
        env={**os.environ, "SLUICE_RUNTIME_HOST": "127.0.0.1"},
        check=False,
    )
    assert result.returncode == 2
    stderr = result.stderr.decode().strip()
    assert message in stderr
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1
