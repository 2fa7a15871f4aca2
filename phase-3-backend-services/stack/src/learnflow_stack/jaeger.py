"""Jaeger all-in-one (built by scripts/build-jaeger.sh): the local stack's trace backend.

OTLP receiver (gRPC for the sidecars, HTTP for the apps), in-memory storage, the query API and
UI. Every listener it opens is given an explicit 127.0.0.1 port: OTLP gRPC/HTTP, the legacy
collector gRPC/HTTP, the query HTTP (API + UI) and gRPC servers, the admin server (health).
Zipkin stays off (it is off unless given a port).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from learnflow_stack.ports import LOOPBACK, free_port
from learnflow_stack.process import ManagedProcess

MAX_TRACES = 50_000  # in-memory storage: the oldest traces go first past this


@dataclass
class Jaeger:
    binary: Path
    run_dir: Path
    otlp_grpc_port: int = field(default_factory=free_port)
    otlp_http_port: int = field(default_factory=free_port)
    collector_grpc_port: int = field(default_factory=free_port)
    collector_http_port: int = field(default_factory=free_port)
    query_http_port: int = field(default_factory=free_port)
    query_grpc_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def ui_url(self) -> str:
        """The UI and the query API (``/api/traces/<trace id>``, ``/api/services``)."""
        return f"http://{LOOPBACK}:{self.query_http_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """What the apps export to (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"http://{LOOPBACK}:{self.otlp_http_port}"

    @property
    def otlp_grpc_address(self) -> str:
        """What daprd exports to (Configuration ``spec.tracing.otel.endpointAddress``)."""
        return f"{LOOPBACK}:{self.otlp_grpc_port}"

    def argv(self) -> list[str]:
        def at(port: int) -> str:
            return f"{LOOPBACK}:{port}"

        return [
            str(self.binary),
            f"--collector.otlp.grpc.host-port={at(self.otlp_grpc_port)}",
            f"--collector.otlp.http.host-port={at(self.otlp_http_port)}",
            f"--collector.grpc-server.host-port={at(self.collector_grpc_port)}",
            f"--collector.http-server.host-port={at(self.collector_http_port)}",
            f"--query.http-server.host-port={at(self.query_http_port)}",
            f"--query.grpc-server.host-port={at(self.query_grpc_port)}",
            f"--admin.http.host-port={at(self.admin_port)}",
            f"--memory.max-traces={MAX_TRACES}",
            "--log-level=info",
        ]

    def start(self) -> None:
        self.process = ManagedProcess(
            name="jaeger",
            argv=self.argv(),
            log_path=self.run_dir / "logs" / "jaeger.log",
            env={
                "SPAN_STORAGE_TYPE": "memory",
                # Jaeger does not trace itself: its own spans would only bury the lessons'.
                "OTEL_TRACES_SAMPLER": "always_off",
                "OTEL_SDK_DISABLED": "true",
            },
        )
        self.process.start()
        self.process.wait_ready(self._ready, 60, "admin / 200 and OTLP/HTTP up")

    def _ready(self) -> bool:
        admin = httpx.get(f"http://{LOOPBACK}:{self.admin_port}/", timeout=1.0)
        if admin.status_code != 200:
            return False
        # The OTLP receiver answers an empty export once it is up.
        otlp = httpx.post(f"{self.otlp_http_endpoint}/v1/traces", json={}, timeout=1.0)
        return otlp.status_code == 200

    # -- the query API ---------------------------------------------------------------------

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace as the query API gives it (``spans``, ``processes``); None if unknown."""
        response = httpx.get(f"{self.ui_url}/api/traces/{trace_id}", timeout=5.0)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json().get("data") or []
        return data[0] if data else None

    def services(self) -> list[str]:
        response = httpx.get(f"{self.ui_url}/api/services", timeout=5.0)
        response.raise_for_status()
        names: list[str] = response.json().get("data") or []
        return names
