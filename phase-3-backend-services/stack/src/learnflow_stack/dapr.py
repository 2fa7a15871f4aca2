"""Dapr control plane (placement, scheduler) and sidecars (daprd), on explicit loopback ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import yaml
from learnflow_service_kit.app import connect_sidecar
from learnflow_service_kit.sidecar_client import SidecarClient
from pydantic import SecretStr

from learnflow_stack.paths import COMPONENTS_DIR
from learnflow_stack.ports import LOOPBACK, free_port
from learnflow_stack.private_network import PrivateNetwork
from learnflow_stack.process import ManagedProcess

CONFIG_FILE = "config.yaml"


class UnsafeNameResolution(ValueError):
    """A daprd would resolve names with mDNS, which multicasts off loopback."""


def require_sqlite_name_resolution(config_path: Path) -> None:
    """Refuse any Configuration that does not pin name resolution to sqlite."""
    document: dict[str, Any] = yaml.safe_load(config_path.read_text()) or {}
    component = ((document.get("spec") or {}).get("nameResolution") or {}).get("component")
    if component != "sqlite":
        raise UnsafeNameResolution(
            f"{config_path}: spec.nameResolution.component is {component!r}; every daprd must "
            "use 'sqlite' (the default, mDNS, multicasts off loopback)"
        )


@dataclass(frozen=True)
class TracingTarget:
    """Where daprd sends its spans (an OTLP gRPC receiver) and how many traces it starts."""

    otlp_grpc_address: str  # host:port
    sampling_rate: float = 1.0


def render_resources(
    run_dir: Path,
    kafka_bootstrap: str,
    tracing: TracingTarget | None = None,
    components_dir: Path = COMPONENTS_DIR,
) -> tuple[Path, Path]:
    """Copy components/ into the run, pointing it at this run's Kafka and name-resolution file,
    and, with ``tracing``, at its trace collector (else tracing stays off as committed).

    Returns (resources_dir, config_path).
    """
    resources_dir = run_dir / "resources"
    resources_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / CONFIG_FILE
    for source in sorted(components_dir.glob("*.yaml")):
        document = yaml.safe_load(source.read_text())
        if source.name == CONFIG_FILE:
            document["spec"]["nameResolution"]["configuration"]["connectionString"] = str(
                run_dir / "nameresolution.db"
            )
            if tracing is not None:
                document["spec"]["tracing"] = {
                    "samplingRate": f"{tracing.sampling_rate:g}",
                    "otel": {
                        "endpointAddress": tracing.otlp_grpc_address,
                        "isSecure": False,
                        "protocol": "grpc",
                    },
                }
            config_path.write_text(yaml.safe_dump(document, sort_keys=False))
            continue
        if document["kind"] == "Component" and document["spec"]["type"] == "pubsub.kafka":
            for item in document["spec"]["metadata"]:
                if item["name"] == "brokers":
                    item["value"] = kafka_bootstrap
        (resources_dir / source.name).write_text(yaml.safe_dump(document, sort_keys=False))
    return resources_dir, config_path


def _http_ok(url: str, status: int = 200) -> bool:
    return httpx.get(url, timeout=1.0).status_code == status


@dataclass
class _ControlPlaneService:
    """What placement and scheduler share: a gRPC port, healthz and metrics, each in a network
    namespace of its own (see ``private_network``), with the gRPC and healthz ports relayed to
    the same numbers on the host's loopback."""

    bin_dir: Path
    run_dir: Path
    port: int = field(default_factory=free_port)
    healthz_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None
    network: PrivateNetwork | None = None

    name: ClassVar[str] = ""

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def own_flags(self) -> list[str]:
        raise NotImplementedError

    def processes(self) -> list[ManagedProcess]:
        """The relay first: stopping in reverse order stops the service before its network."""
        pieces = [self.network.process if self.network else None, self.process]
        return [piece for piece in pieces if piece is not None]

    def start(self) -> None:
        """Start, or start again after a crash: the namespace and its relay outlive the service."""
        if self.network is None or not self.network.running():
            self.network = PrivateNetwork(
                name=f"{self.name}-net",
                relayed_ports=[self.port, self.healthz_port],
                log_path=self.run_dir / "logs" / f"{self.name}-net.log",
            )
            self.network.start()
        self.process = ManagedProcess(
            name=self.name,
            argv=self.network.enter(
                [
                    str(self.bin_dir / self.name),
                    f"--id={self.name}-0",
                    f"--port={self.port}",
                    f"--listen-address={LOOPBACK}",
                    f"--healthz-port={self.healthz_port}",
                    f"--healthz-listen-address={LOOPBACK}",  # ignored: see private_network
                    f"--metrics-port={self.metrics_port}",
                    f"--metrics-listen-address={LOOPBACK}",
                    "--tls-enabled=false",
                    "--log-level=info",
                    *self.own_flags(),
                ]
            ),
            log_path=self.run_dir / "logs" / f"{self.name}.log",
        )
        self.process.start()
        self.process.wait_ready(
            lambda: _http_ok(f"http://{LOOPBACK}:{self.healthz_port}/healthz"), 90, "/healthz 200"
        )


@dataclass
class Placement(_ControlPlaneService):
    raft_port: int = field(default_factory=free_port)

    name: ClassVar[str] = "placement"

    def own_flags(self) -> list[str]:
        return [
            "--metadata-enabled=true",  # serves /placement/state, the proof of registration
            f"--initial-cluster=placement-0={LOOPBACK}:{self.raft_port}",
        ]

    def table(self) -> dict[str, Any]:
        url = f"http://{LOOPBACK}:{self.healthz_port}/placement/state"
        response = httpx.get(url, timeout=2.0)
        response.raise_for_status()
        table: dict[str, Any] = response.json()
        return table


@dataclass
class Scheduler(_ControlPlaneService):
    etcd_client_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)

    name: ClassVar[str] = "scheduler"

    def own_flags(self) -> list[str]:
        return [
            f"--etcd-data-dir={self.run_dir / 'scheduler-etcd'}",
            f"--etcd-client-port={self.etcd_client_port}",
            f"--etcd-client-listen-address={LOOPBACK}",
            f"--etcd-initial-cluster=scheduler-0=http://{LOOPBACK}:{self.etcd_peer_port}",
        ]


@dataclass
class Sidecar:
    """One daprd next to one app process."""

    bin_dir: Path
    run_dir: Path
    app_id: str
    app_port: int
    resources_dir: Path
    config_path: Path
    placement_address: str
    scheduler_address: str
    secrets_env: dict[str, str]
    replica: str = ""
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    internal_grpc_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{LOOPBACK}:{self.metrics_port}/metrics"

    @property
    def api_headers(self) -> dict[str, str]:
        """What a call to this daprd's API must carry: its DAPR_API_TOKEN."""
        token = self.secrets_env.get("DAPR_API_TOKEN")
        return {"dapr-api-token": token} if token else {}

    def client(self) -> SidecarClient:
        """The services' own sidecar client on this daprd (with its API token); close it."""
        token = self.secrets_env.get("DAPR_API_TOKEN")
        return connect_sidecar(self.http_port, SecretStr(token) if token else None)

    def argv(self) -> list[str]:
        require_sqlite_name_resolution(self.config_path)
        return [
            str(self.bin_dir / "daprd"),
            "--mode=standalone",
            f"--app-id={self.app_id}",
            f"--app-port={self.app_port}",
            "--app-protocol=http",
            f"--app-channel-address={LOOPBACK}",
            f"--dapr-http-port={self.http_port}",
            f"--dapr-grpc-port={self.grpc_port}",
            f"--dapr-internal-grpc-port={self.internal_grpc_port}",
            f"--dapr-internal-grpc-listen-address={LOOPBACK}",
            f"--dapr-listen-addresses={LOOPBACK}",
            f"--metrics-port={self.metrics_port}",
            f"--metrics-listen-address={LOOPBACK}",
            f"--placement-host-address={self.placement_address}",
            f"--scheduler-host-address={self.scheduler_address}",
            f"--resources-path={self.resources_dir}",
            f"--config={self.config_path}",
            "--log-level=info",
            "--enable-app-health-check=false",
        ]

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        self.process = ManagedProcess(
            name=f"daprd[{self.app_id}{self.replica}]",
            argv=self.argv(),
            log_path=self.run_dir / "logs" / f"daprd-{self.app_id}{self.replica}.log",
            env=self.secrets_env,
        )
        self.process.start()

    def wait_ready(self) -> None:
        assert self.process is not None, "launch() first"
        self.process.wait_ready(
            lambda: _http_ok(f"{self.http_url}/v1.0/healthz", 204), 90, "/v1.0/healthz 204"
        )

    def metadata(self) -> dict[str, Any]:
        response = httpx.get(
            f"{self.http_url}/v1.0/metadata", headers=self.api_headers, timeout=2.0
        )
        response.raise_for_status()
        metadata: dict[str, Any] = response.json()
        return metadata

    def placement_connected(self) -> bool:
        runtime = self.metadata().get("actorRuntime") or {}
        return bool(runtime.get("placement") == "placement: connected" and runtime.get("hostReady"))
