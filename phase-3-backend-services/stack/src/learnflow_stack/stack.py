"""Start and stop the whole local stack in dependency order, with real readiness checks."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from learnflow_stack.dapr import Placement, Scheduler, Sidecar, TracingTarget, render_resources
from learnflow_stack.dev_auth import DevSigningKey
from learnflow_stack.jaeger import Jaeger
from learnflow_stack.kafka import KafkaBroker
from learnflow_stack.paths import COMPONENTS_DIR, installed_dir, runs_root
from learnflow_stack.ports import LOOPBACK, free_port
from learnflow_stack.postgres import PostgresServer
from learnflow_stack.process import ManagedProcess


@dataclass(frozen=True)
class AppSpec:
    app_id: str
    factory: str  # "package.module:create_app", served by uvicorn --factory
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    hosts_actors: bool = True


@dataclass
class AppInstance:
    spec: AppSpec
    replica: int
    port: int
    process: ManagedProcess
    sidecar: Sidecar

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


KEEP_RUNS = 8


def prune_old_runs(root: Path, keep: int = KEEP_RUNS) -> None:
    """Keep the most recently active runs' data and logs; older ones only fill the disk."""

    def last_written(logs: Path) -> float:
        return max((log.stat().st_mtime for log in logs.iterdir()), default=logs.stat().st_mtime)

    runs = sorted(root.glob("*/logs"), key=last_written, reverse=True)
    for logs in runs[keep:]:
        shutil.rmtree(logs.parent, ignore_errors=True)


def _log(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def tracing_from_env() -> bool:
    """``LEARNFLOW_TRACING=1`` turns tracing on for stacks that do not say (off by default)."""
    return os.environ.get("LEARNFLOW_TRACING", "0").strip().lower() in {"1", "true", "yes", "on"}


class Stack:
    """PostgreSQL, Kafka, placement, scheduler, then each app + its daprd; with ``tracing``,
    Jaeger first, and every app and daprd sending it their spans.

    ``LEARNFLOW_PG_CONNECTION`` / ``LEARNFLOW_KAFKA_BROKERS`` point at existing servers instead
    of starting private ones; ``LEARNFLOW_DAPR_BIN_DIR`` at existing Dapr binaries.
    ``tracing``: None = ``LEARNFLOW_TRACING``; ``sampling_rate``: the share of new traces kept
    (``LEARNFLOW_TRACING_SAMPLING_RATE``, default 1; a caller's sampled flag always wins).
    """

    def __init__(
        self,
        apps: list[AppSpec],
        run_dir: Path | None = None,
        tracing: bool | None = None,
        sampling_rate: float | None = None,
        components_dir: Path = COMPONENTS_DIR,
    ) -> None:
        self.apps = apps
        # Another tree's components/: a service scaffolded into a scratch copy of the repo.
        self.components_dir = components_dir
        self.tracing = tracing_from_env() if tracing is None else tracing
        self.sampling_rate = (
            float(os.environ.get("LEARNFLOW_TRACING_SAMPLING_RATE", "1"))
            if sampling_rate is None
            else sampling_rate
        )
        self.jaeger: Jaeger | None = None
        self.run_dir = run_dir or runs_root() / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.postgres: PostgresServer | None = None
        self.kafka: KafkaBroker | None = None
        self.placement: Placement | None = None
        self.scheduler: Scheduler | None = None
        self.instances: list[AppInstance] = []
        self.pg_connection = os.environ.get("LEARNFLOW_PG_CONNECTION", "")
        self.kafka_bootstrap = os.environ.get("LEARNFLOW_KAFKA_BROKERS", "")
        # daprd sends it on every call to its app; the apps refuse Dapr-route calls without it.
        self.app_token = secrets.token_urlsafe(32)
        self.api_token = secrets.token_urlsafe(32)
        self.signing_key = DevSigningKey.generate()

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        prune_old_runs(self.run_dir.parent)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _log(f"run directory {self.run_dir} (logs in {self.run_dir / 'logs'})")
        bin_dir = (
            Path(os.environ["LEARNFLOW_DAPR_BIN_DIR"])
            if os.environ.get("LEARNFLOW_DAPR_BIN_DIR")
            else installed_dir("build-dapr.sh")
        )
        # Children are started from this thread only: they die with the thread that forked them.
        if self.tracing:
            self.jaeger = Jaeger(installed_dir("build-jaeger.sh"), self.run_dir)
            self.jaeger.start()
            _log(f"jaeger: UI and query API {self.jaeger.ui_url}")
        if not self.kafka_bootstrap:
            self.kafka = KafkaBroker(installed_dir("install-kafka.sh"), self.run_dir)
            self.kafka.launch()
        if not self.pg_connection:
            self.postgres = PostgresServer(installed_dir("install-postgres.sh"), self.run_dir)
            self.postgres.start()
            self.pg_connection = self.postgres.connection_string
            _log(f"postgres on {LOOPBACK}:{self.postgres.port}")
        if self.kafka:
            self.kafka.wait_ready()
            self.kafka_bootstrap = self.kafka.bootstrap
            _log(f"kafka on {self.kafka_bootstrap}")
        resources_dir, config_path = render_resources(
            self.run_dir, self.kafka_bootstrap, self._tracing_target(), self.components_dir
        )
        self.placement = Placement(bin_dir, self.run_dir)
        self.placement.start()
        self.scheduler = Scheduler(bin_dir, self.run_dir)
        self.scheduler.start()
        _log(f"placement {self.placement.address}, scheduler {self.scheduler.address}")
        for spec in self.apps:
            for replica in range(spec.replicas):
                self.instances.append(
                    self._start_app(spec, replica, bin_dir, resources_dir, config_path)
                )
        for instance in self.instances:
            if instance.spec.hosts_actors:
                instance.sidecar.process.wait_ready(  # type: ignore[union-attr]
                    instance.sidecar.placement_connected, 60, "placement: connected"
                )
        self.signing_key.save(self.signing_key_path)
        self.write_manifest()
        _log(f"stack ready in {time.monotonic() - started:.1f}s")

    def _tracing_target(self) -> TracingTarget | None:
        if self.jaeger is None:
            return None
        return TracingTarget(self.jaeger.otlp_grpc_address, self.sampling_rate)

    def _tracing_env(self, app_id: str) -> dict[str, str]:
        """What turns an app's tracing on (learnflow_service_kit.tracing reads it)."""
        if self.jaeger is None:
            return {}
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.jaeger.otlp_http_endpoint,
            "OTEL_TRACES_SAMPLER_ARG": f"{self.sampling_rate:g}",
            "OTEL_SERVICE_NAME": app_id,
            "OTEL_BSP_SCHEDULE_DELAY": "500",  # ms: spans reach Jaeger within a second
        }

    def _start_app(
        self, spec: AppSpec, replica: int, bin_dir: Path, resources_dir: Path, config_path: Path
    ) -> AppInstance:
        assert self.placement, "placement starts before apps"
        assert self.scheduler, "scheduler starts before apps"
        suffix = f"-{replica}" if spec.replicas > 1 else ""
        port = free_port()
        sidecar = Sidecar(
            bin_dir=bin_dir,
            run_dir=self.run_dir,
            app_id=spec.app_id,
            app_port=port,
            resources_dir=resources_dir,
            config_path=config_path,
            placement_address=self.placement.address,
            scheduler_address=self.scheduler.address,
            secrets_env={
                "LEARNFLOW_PG_CONNECTION": self.pg_connection,
                "APP_API_TOKEN": self.app_token,
                "DAPR_API_TOKEN": self.api_token,
            },
            replica=suffix,
        )
        process = ManagedProcess(
            name=f"{spec.app_id}{suffix}",
            argv=[
                sys.executable,
                "-m",
                "uvicorn",
                spec.factory,
                "--factory",
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--no-access-log",
            ],
            log_path=self.run_dir / "logs" / f"{spec.app_id}{suffix}.log",
            env={
                "DAPR_HTTP_PORT": str(sidecar.http_port),
                "DAPR_GRPC_PORT": str(sidecar.grpc_port),
                "APP_API_TOKEN": self.app_token,
                "DAPR_API_TOKEN": self.api_token,
                "AUTH_PUBLIC_KEY": self.signing_key.public_pem,
                "PYTHONUNBUFFERED": "1",
                **self._tracing_env(spec.app_id),
                **spec.env,
            },
        )
        # The app and its sidecar wait for each other at start-up (the Dapr SDK waits for the
        # sidecar before registering actors; daprd waits for the app), so launch both, then wait.
        process.start()
        sidecar.launch()
        sidecar.wait_ready()
        process.wait_ready(
            lambda: httpx.get(f"http://{LOOPBACK}:{port}/healthz", timeout=1).is_success,
            60,
            "/healthz 200",
        )
        _log(f"{spec.app_id}{suffix}: app {LOOPBACK}:{port}, daprd http {sidecar.http_port}")
        return AppInstance(spec, replica, port, process, sidecar)

    def processes(self) -> list[ManagedProcess]:
        pieces: list[Any] = [self.jaeger, self.postgres, self.kafka]
        found = [p.process for p in pieces if p is not None and p.process is not None]
        for control_plane in (self.placement, self.scheduler):
            if control_plane is not None:
                found.extend(control_plane.processes())
        for instance in self.instances:
            found.append(instance.process)
            if instance.sidecar.process:
                found.append(instance.sidecar.process)
        return found

    def stop(self) -> None:
        # Reverse dependency order: sidecars and apps first, infrastructure last.
        for process in reversed(self.processes()):
            try:
                process.stop()
            except Exception as error:  # keep stopping the rest
                _log(f"stopping {process.name}: {error}")

    # -- lookups ---------------------------------------------------------------------------

    def app(self, app_id: str, replica: int = 0) -> AppInstance:
        matches = [i for i in self.instances if i.spec.app_id == app_id]
        return matches[replica]

    @property
    def signing_key_path(self) -> Path:
        return self.run_dir / "auth" / "dev-signing-key.pem"

    def auth_headers(self, learner_id: str | None = None, *roles: str) -> dict[str, str]:
        """A bearer token for ``learner_id``; without one, a teacher's (acts for anyone)."""
        if learner_id is None:
            learner_id, roles = "stack-teacher", ("teacher",)
        return {"Authorization": f"Bearer {self.signing_key.token(learner_id, roles)}"}

    def write_manifest(self) -> Path:
        """Ports of everything, for the demo and benchmark commands to find the running stack."""
        manifest = {
            "run_dir": str(self.run_dir),
            "postgres": self.pg_connection,
            "kafka": self.kafka_bootstrap,
            "placement_healthz": self.placement.healthz_port if self.placement else None,
            "jaeger_ui": self.jaeger.ui_url if self.jaeger else None,
            "apps": {
                f"{i.spec.app_id}{i.sidecar.replica}": {
                    "url": i.url,
                    "dapr_http": i.sidecar.http_url,
                    "pid": i.process.pid,
                }
                for i in self.instances
            },
            "pids": {p.name: p.pid for p in self.processes()},
            "signing_key": str(self.signing_key_path),
        }
        path = self.run_dir / "stack.json"
        path.write_text(json.dumps(manifest, indent=2))
        latest = runs_root() / "latest.json"
        latest.write_text(json.dumps(manifest, indent=2))
        return path
