"""Answers only the Dapr sidecar's outbound health check, on loopback.

The Dapr Python SDK blocks app startup until ``/v1.0/healthz/outbound`` of its sidecar answers
2xx. The container checks prove the image (or the venv built like it) starts the real app
with the Dockerfile's CMD and serves /healthz; they need that one answer, not a sidecar.
Every other path answers 404, so /readyz truthfully reports the state store unreachable.
The real sidecar is proven on a cluster by the deploy steps (lib/deploy-steps.sh).
Usage: python sidecar_health_stub.py PORT
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SidecarHealthOnly(BaseHTTPRequestHandler):
    def answer(self) -> None:
        self.send_response(204 if self.path == "/v1.0/healthz/outbound" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the app's own log shows what it asked."""


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), SidecarHealthOnly).serve_forever()
