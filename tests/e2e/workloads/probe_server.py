"""Test workload (e2e): a tiny HTTP server the node-agent tests run inside a pod.

Shipped to the pod in a ConfigMap and run with the pod's Python. It listens on the pod IP and
reports what the process sees (environment, files named in argv), lets the test flip its
readiness, and exits on request, so the tests can observe the node agent from the outside.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

STATE = {"ready": os.environ.get("START_READY", "true") == "true"}


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/ready":
            self._send(200 if STATE["ready"] else 503, STATE)
        elif url.path == "/toggle":
            STATE["ready"] = not STATE["ready"]
            self._send(200, STATE)
        elif url.path == "/info":
            files = {}
            for name in sys.argv[1:]:
                path = Path(name)
                files[name] = path.read_text() if path.is_file() else None
            self._send(
                200,
                {"env": dict(os.environ), "argv": sys.argv, "cwd": str(Path.cwd()), "files": files},
            )
        elif url.path == "/exit":
            code = int(parse_qs(url.query).get("code", ["0"])[0])
            self._send(200, {"exiting": code})
            threading.Timer(0.1, os._exit, [code]).start()
        else:
            self._send(404, {"path": url.path})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the pod log only gets what the test prints."""


def main() -> None:
    host = os.environ["POD_IP"]
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer((host, port), Handler)
    marker = os.environ.get("SIGTERM_MARKER")

    def on_sigterm(signum: int, frame: object) -> None:
        del signum, frame
        if marker:
            Path(marker).write_text("terminated")
        if os.environ.get("IGNORE_SIGTERM") != "true":
            os._exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    server.serve_forever()


if __name__ == "__main__":
    main()
